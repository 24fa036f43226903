"""CSV upload of FlexRequests and FlexOffers (all or nothing)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from accounts.context import Actor
from flexmarket import ptu as ptus
from flexmarket import validation
from flexmarket.csvio import CsvReader, ImportErrors
from flexmarket.errors import DomainError
from grid.models import FlexAsset, GridLocation
from trading.errors import TradingErrorCode as Code
from trading.models import (
    OrderMode,
    Product,
)
from trading.services.limits import REACTIVE_FIELDS
from trading.services.orders import offer_submit, request_submit

# --- CSV upload of orders ---------------------------------------------------------------------------

ORDER_CSV_COLUMNS = [
    "grid_location_code",
    "product_code",
    "ptu_start",
    "quantities_kw",
    "price",
    "order_mode",
]
OFFER_CSV_COLUMNS = [
    "asset_ean",
    "product_code",
    "ptu_start",
    "quantities_kw",
    "price",
    "min_quantity_kw",
    "all_or_nothing",
    "tso_eligible",
    *REACTIVE_FIELDS,
]


def orders_import_csv(*, actor: Actor, kind: str, file, now: datetime | None = None, progress=None) -> list:
    """Post many requests ("request") or offers ("offer") from CSV; one bad row → nothing is posted.

    `quantities_kw` is a space- or semicolon-separated list of kW per PTU; `ptu_start` is ISO 8601 with offset.
    Every bad row is counted; the first FLEXMARKET_IMPORT_ERRORS_LISTED are listed.
    """
    columns = ORDER_CSV_COLUMNS if kind == "request" else OFFER_CSV_COLUMNS
    errors = ImportErrors(Code.INVALID_IMPORT)
    reader = CsvReader(
        file, code=Code.INVALID_IMPORT, required=columns[:5], errors=errors, header_hint=",".join(columns)
    )
    created = []
    with transaction.atomic():
        for number, row in reader:
            try:
                with transaction.atomic():
                    created.append(_order_from_row(actor=actor, kind=kind, row=row, now=now))
            except DomainError as error:
                errors.add_error(number, error)
            if progress is not None:
                progress(reader.rows_read, errors.count)
        if errors:
            transaction.set_rollback(True)
    errors.raise_if_any()
    if not created:
        raise DomainError(Code.INVALID_IMPORT, "The file has no rows.", field="file")
    return created


def _order_from_row(*, actor: Actor, kind: str, row: dict, now: datetime | None):
    product_code = (row.get("product_code") or "").strip()
    product = Product.objects.select_related("market").filter(code=product_code, is_active=True).first()
    if product is None:
        raise DomainError(
            Code.INVALID_IMPORT, f"No active product {product_code[:40]!r}.", field="product_code"
        )
    start = validation.parse_moment(row.get("ptu_start") or "", field="ptu_start", code=Code.INVALID_PTU)
    quantities = [q for q in (row.get("quantities_kw") or "").replace(";", " ").split() if q]
    common = {
        "product": product,
        "ptu_start": start.astimezone(ptus.UTC),
        "quantities_kw": quantities,
        "price": row.get("price"),
        "now": now,
    }
    if kind == "request":
        zone_code = (row.get("grid_location_code") or "").strip()
        zone = GridLocation.objects.filter(code=zone_code).first()
        if zone is None:
            raise DomainError(
                Code.INVALID_IMPORT, f"No grid location {zone_code[:64]!r}.", field="grid_location_code"
            )
        mode = (row.get("order_mode") or OrderMode.INITIATOR).strip()
        if mode not in OrderMode.values:
            raise DomainError(
                Code.INVALID_IMPORT,
                f"order_mode is one of {', '.join(OrderMode.values)}.",
                field="order_mode",
            )
        return request_submit(actor=actor, grid_location=zone, order_mode=mode, **common)
    ean = (row.get("asset_ean") or "").strip()
    asset = FlexAsset.objects.filter(connection_ean=ean, owner=actor.organisation).first()
    if asset is None:
        raise DomainError(Code.INVALID_IMPORT, f"You have no asset with EAN {ean[:18]!r}.", field="asset_ean")
    flag = lambda name: (row.get(name) or "").strip().lower() in {"1", "true", "yes"}  # noqa: E731
    return offer_submit(
        actor=actor,
        asset=asset,
        min_quantity_kw=row.get("min_quantity_kw") or 0,
        all_or_nothing=flag("all_or_nothing"),
        tso_eligible=flag("tso_eligible"),
        # Optional reactive range (network-aware products): empty cells mean none.
        **{name: (row.get(name) or "").strip() or None for name in REACTIVE_FIELDS},
        **common,
    )


# --- background imports (flexmarket.imports) --------------------------------------------------------


def requests_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    return {"count": len(orders_import_csv(actor=actor, kind="request", file=file, progress=progress))}


def offers_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    return {"count": len(orders_import_csv(actor=actor, kind="offer", file=file, progress=progress))}
