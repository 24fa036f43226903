"""D-prognoses (nominated baselines), frozen at gate closure; by form, API and CSV."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket import validation
from flexmarket.csvio import CsvReader, ImportErrors
from flexmarket.errors import DomainError
from grid.models import FlexAsset, Portfolio
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    Prognosis,
)
from trading.models import MarketSession

PROGNOSIS_CSV_COLUMNS = ["asset_ean", "delivery_day", "values_kw"]

# --- D-prognosis ------------------------------------------------------------------------------------


@transaction.atomic
def prognosis_submit(
    *,
    actor: Actor,
    delivery_day: date,
    values_kw: list,
    asset: FlexAsset | None = None,
    portfolio: Portfolio | None = None,
    time_zone: str = "Europe/Amsterdam",
    now: datetime | None = None,
) -> Prognosis:
    """Nominate a baseline for a delivery day; frozen once the first gate closure of that day has passed."""
    now = now or timezone.now()
    backing = asset or portfolio
    if backing is None or backing.owner_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Submit prognoses for your own asset or portfolio.", field="asset")
    validation.check_date(delivery_day, field="delivery_day", code=Code.INVALID_PROGNOSIS)
    n = ptus.ptu_count(delivery_day, time_zone)
    if not isinstance(values_kw, list | tuple) or len(values_kw) != n:
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"{delivery_day} has {n} PTUs: give {n} kW values.", field="values_kw"
        )
    try:
        values = [float(v) for v in values_kw]
    except (TypeError, ValueError, OverflowError):
        raise DomainError(Code.INVALID_PROGNOSIS, "Values must be numbers (kW).", field="values_kw")
    ceiling = float(settings.FLEXMARKET_ASSET_MAX_KW)
    if not all(np.isfinite(values)) or any(abs(v) > ceiling for v in values):
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"Values must be numbers between ±{ceiling:,.0f} kW.", field="values_kw"
        )
    first_gate = (
        MarketSession.objects.filter(delivery_day=delivery_day)
        .order_by("gate_closure")
        .values_list("gate_closure", flat=True)
        .first()
    )
    if first_gate is not None and first_gate <= now:
        local = first_gate.astimezone(ZoneInfo(time_zone))
        raise DomainError(
            Code.PROGNOSIS_FROZEN,
            f"Prognoses for {delivery_day} froze at gate closure ({local:%Y-%m-%d %H:%M %Z}).",
            field="delivery_day",
        )
    start, _ = ptus.day_bounds_utc(delivery_day, time_zone)
    lookup = {"asset": asset} if asset else {"portfolio": portfolio}
    prognosis, created = Prognosis.objects.update_or_create(
        delivery_day=delivery_day,
        **lookup,
        defaults={
            "owner": actor.organisation,
            "ptu_start": start,
            "values_kw": values,
            "submitted_by": actor.user,
            "submitted_at": now,
        },
    )
    audit_record(
        actor=actor,
        action="prognosis.submit" if created else "prognosis.replace",
        target=prognosis,
        after={"day": str(delivery_day)},
    )
    return prognosis


def prognoses_import_csv(
    *, actor: Actor, file, time_zone: str = "Europe/Amsterdam", progress=None
) -> list[Prognosis]:
    """CSV `asset_ean,delivery_day,values_kw` (values separated by spaces or semicolons); all or nothing."""
    errors = ImportErrors(Code.INVALID_PROGNOSIS)
    reader = CsvReader(file, code=Code.INVALID_FILE, required=PROGNOSIS_CSV_COLUMNS, errors=errors)
    assets = {a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)}
    created = []
    with transaction.atomic():
        for number, row in reader:
            asset = assets.get((row.get("asset_ean") or "").strip())
            try:
                if asset is None:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "Unknown asset, or not yours.", field="asset_ean"
                    )
                day = validation.parse_date(
                    row.get("delivery_day") or "", field="delivery_day", code=Code.INVALID_PROGNOSIS
                )
                values = (row.get("values_kw") or "").replace(";", " ").split()
                with transaction.atomic():
                    created.append(
                        prognosis_submit(
                            actor=actor, asset=asset, delivery_day=day, values_kw=values, time_zone=time_zone
                        )
                    )
            except DomainError as error:
                errors.add_error(number, error)
            if progress is not None:
                progress(reader.rows_read, errors.count)
        if errors:
            transaction.set_rollback(True)
    errors.raise_if_any()
    return created


def prognoses_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    """Background run of prognoses_import_csv (flexmarket.imports)."""
    return {"count": len(prognoses_import_csv(actor=actor, file=file, progress=progress))}
