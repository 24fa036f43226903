"""CSV upload of FlexRequests and FlexOffers (all or nothing)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from accounts.context import Actor
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from grid.models import FlexAsset, GridLocation
from trading.errors import TradingErrorCode as Code
from trading.models import (
    OrderMode,
    Product,
)
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
]


def orders_import_csv(*, actor: Actor, kind: str, file, now: datetime | None = None) -> list:
    """Post many requests ("request") or offers ("offer") from CSV; one bad row → nothing is posted.

    `quantities_kw` is a space- or semicolon-separated list of kW per PTU; `ptu_start` is ISO 8601 with offset.
    """
    import csv
    import io

    from flexmarket.errors import ValidationErrors

    text = (
        io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        if not isinstance(file, io.StringIO)
        else file
    )
    reader = csv.DictReader(text)
    columns = ORDER_CSV_COLUMNS if kind == "request" else OFFER_CSV_COLUMNS
    missing = [c for c in columns[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise DomainError(Code.INVALID_IMPORT, f"Missing columns: {', '.join(missing)}.", field="file")
    created, errors = [], []
    with transaction.atomic():
        for number, row in enumerate(reader, start=2):
            try:
                with transaction.atomic():
                    created.append(_order_from_row(actor=actor, kind=kind, row=row, now=now))
            except DomainError as error:
                errors.append({"row": number, "field": error.field, "message": error.message})
            except (
                ValueError,
                Product.DoesNotExist,
                GridLocation.DoesNotExist,
                FlexAsset.DoesNotExist,
            ) as error:
                errors.append({"row": number, "field": None, "message": str(error) or "Unknown reference."})
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise ValidationErrors(
            Code.INVALID_IMPORT, f"{len(errors)} row(s) are invalid; nothing was posted.", errors
        )
    if not created:
        raise DomainError(Code.INVALID_IMPORT, "The file has no rows.", field="file")
    return created


def _order_from_row(*, actor: Actor, kind: str, row: dict, now: datetime | None):
    product = Product.objects.select_related("market").get(
        code=(row.get("product_code") or "").strip(), is_active=True
    )
    try:
        start = datetime.fromisoformat((row.get("ptu_start") or "").strip())
    except ValueError:
        raise DomainError(
            Code.INVALID_PTU,
            "ptu_start must be ISO 8601 with an offset, e.g. 2026-11-24T17:00+01:00.",
            field="ptu_start",
        )
    if start.tzinfo is None:
        raise DomainError(Code.INVALID_PTU, "ptu_start needs a UTC offset.", field="ptu_start")
    quantities = [q for q in (row.get("quantities_kw") or "").replace(";", " ").split() if q]
    common = {
        "product": product,
        "ptu_start": start.astimezone(ptus.UTC),
        "quantities_kw": quantities,
        "price": row.get("price"),
        "now": now,
    }
    if kind == "request":
        zone = GridLocation.objects.get(code=(row.get("grid_location_code") or "").strip())
        return request_submit(
            actor=actor,
            grid_location=zone,
            order_mode=(row.get("order_mode") or OrderMode.INITIATOR).strip(),
            **common,
        )
    asset = FlexAsset.objects.get(
        connection_ean=(row.get("asset_ean") or "").strip(), owner=actor.organisation
    )
    flag = lambda name: (row.get(name) or "").strip().lower() in {"1", "true", "yes"}  # noqa: E731
    return offer_submit(
        actor=actor,
        asset=asset,
        min_quantity_kw=row.get("min_quantity_kw") or 0,
        all_or_nothing=flag("all_or_nothing"),
        tso_eligible=flag("tso_eligible"),
        **common,
    )
