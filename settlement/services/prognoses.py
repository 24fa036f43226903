"""D-prognoses (nominated baselines), frozen at gate closure; by form, API and CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError, ValidationErrors
from grid.models import FlexAsset, Portfolio
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    Prognosis,
)
from trading.models import MarketSession

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
    n = ptus.ptu_count(delivery_day, time_zone)
    try:
        values = [float(v) for v in values_kw]
    except (TypeError, ValueError):
        raise DomainError(Code.INVALID_PROGNOSIS, "Values must be numbers (kW).", field="values_kw")
    if len(values) != n or not all(np.isfinite(values)):
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"{delivery_day} has {n} PTUs: give {n} kW values.", field="values_kw"
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


def prognoses_import_csv(*, actor: Actor, file, time_zone: str = "Europe/Amsterdam") -> list[Prognosis]:
    """CSV `asset_ean,delivery_day,values_kw` (values separated by spaces or semicolons); all or nothing."""
    reader = csv.DictReader(io.TextIOWrapper(file, encoding="utf-8-sig", newline=""))
    if not {"asset_ean", "delivery_day", "values_kw"} <= set(reader.fieldnames or []):
        raise DomainError(
            Code.INVALID_FILE, "The first line must be: asset_ean,delivery_day,values_kw.", field="file"
        )
    assets = {a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)}
    created, errors = [], []
    with transaction.atomic():
        for number, row in enumerate(reader, start=2):
            asset = assets.get((row.get("asset_ean") or "").strip())
            try:
                if asset is None:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "Unknown asset, or not yours.", field="asset_ean"
                    )
                try:
                    day = date.fromisoformat((row.get("delivery_day") or "").strip())
                except ValueError:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "delivery_day is YYYY-MM-DD.", field="delivery_day"
                    )
                values = (row.get("values_kw") or "").replace(";", " ").split()
                with transaction.atomic():
                    created.append(
                        prognosis_submit(
                            actor=actor, asset=asset, delivery_day=day, values_kw=values, time_zone=time_zone
                        )
                    )
            except DomainError as error:
                errors.append({"row": number, "field": error.field, "message": error.message})
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise ValidationErrors(
            Code.INVALID_PROGNOSIS, f"{len(errors)} row(s) are invalid; nothing was saved.", errors
        )
    return created
