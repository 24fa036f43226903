"""Outdoor temperatures per grid location, for the temperature baseline: CSV and API uploads (all or nothing)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket import validation
from flexmarket.csvio import CsvReader, ImportErrors
from flexmarket.errors import DomainError
from grid.models import GridLocation
from settlement.errors import SettlementErrorCode as Code
from settlement.models import ZoneTemperature
from settlement.selectors import temperature_zones_get_writable

TEMPERATURE_CSV_COLUMNS = ["grid_location_code", "start", "celsius"]
CELSIUS_MIN, CELSIUS_MAX = (
    Decimal("-90"),
    Decimal("70"),
)  # the coldest and hottest air ever measured, rounded out


def _require_uploader(actor: Actor) -> None:
    if actor.organisation is None or not (actor.has_role(Role.DSO) or (actor.is_fmo and not actor.on_behalf)):
        raise DomainError(Code.ROLE, "Only a DSO (for its own zones) or the FMO uploads temperatures.")


def temperatures_import_csv(*, actor: Actor, file, progress=None) -> dict:
    """CSV `grid_location_code,start,celsius`: `start` ISO 8601 with offset on a PTU boundary (hourly or per
    PTU). A value for a zone and time already stored replaces it. One bad row → nothing is written; every bad
    row is counted and the first ones listed. Only the zone's DSO or the FMO may upload; any other zone is
    "unknown", exactly like a code that does not exist."""
    _require_uploader(actor)
    errors = ImportErrors(Code.INVALID_TEMPERATURE)
    reader = CsvReader(file, code=Code.INVALID_FILE, required=TEMPERATURE_CSV_COLUMNS, errors=errors)
    zones = {zone.code: zone for zone in temperature_zones_get_writable(actor=actor)}
    values: dict[tuple[int, datetime], Decimal] = {}
    for number, row in reader:
        try:
            zone = zones.get((row.get("grid_location_code") or "").strip())
            if zone is None:
                raise DomainError(
                    Code.INVALID_TEMPERATURE,
                    "Unknown grid location, or not yours.",
                    field="grid_location_code",
                )
            start = validation.parse_moment(
                row.get("start") or "", field="start", code=Code.INVALID_TEMPERATURE
            )
            if ptus.floor_to_ptu(start) != start:
                raise DomainError(
                    Code.INVALID_TEMPERATURE, "The time must be on a 15-minute boundary.", field="start"
                )
            start = start.astimezone(ptus.UTC)
            celsius = validation.bounded_decimal(
                row.get("celsius"),
                field="celsius",
                code=Code.INVALID_TEMPERATURE,
                minimum=CELSIUS_MIN,
                maximum=CELSIUS_MAX,
                unit="°C",
            ).quantize(Decimal("0.01"))
            if (zone.pk, start) in values:
                raise DomainError(
                    Code.INVALID_TEMPERATURE,
                    "The file already has a value for this zone and time.",
                    field="start",
                )
            values[(zone.pk, start)] = celsius
        except DomainError as error:
            errors.add_error(number, error)
        if progress is not None:
            progress(reader.rows_read, errors.count)
    errors.raise_if_any()
    if not values:
        raise DomainError(Code.INVALID_TEMPERATURE, "The file has no rows.", field="file")
    return _temperatures_write(actor=actor, values=values, zones={z.pk: z for z in zones.values()})


@transaction.atomic
def _temperatures_write(
    *, actor: Actor, values: dict[tuple[int, datetime], Decimal], zones: dict[int, GridLocation]
) -> dict:
    now = timezone.now()
    zone_ids = sorted({zone_id for zone_id, _ in values})
    starts = [start for _, start in values]
    existing = {
        (row.grid_location_id, row.start): row
        for row in ZoneTemperature.objects.select_for_update().filter(
            grid_location_id__in=zone_ids, start__gte=min(starts), start__lte=max(starts)
        )
    }
    new, changed = [], []
    for (zone_id, start), celsius in values.items():
        row = existing.get((zone_id, start))
        if row is None:
            new.append(
                ZoneTemperature(
                    grid_location_id=zone_id,
                    start=start,
                    celsius=celsius,
                    uploaded_by=actor.user,
                    updated_at=now,
                )
            )
        elif row.celsius != celsius:
            row.celsius, row.uploaded_by, row.updated_at = celsius, actor.user, now
            changed.append(row)
    # An upsert: a concurrent upload of the same zone and time replaces the value instead of failing.
    ZoneTemperature.objects.bulk_create(
        new,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["grid_location", "start"],
        update_fields=["celsius", "uploaded_by", "updated_at"],
    )
    ZoneTemperature.objects.bulk_update(changed, ["celsius", "uploaded_by", "updated_at"], batch_size=5000)
    result = {
        "count": len(values),
        "created": len(new),
        "updated": len(changed),
        "zones": [zones[zone_id].code for zone_id in zone_ids],
        "first": min(starts).isoformat().replace("+00:00", "Z"),
        "last": max(starts).isoformat().replace("+00:00", "Z"),
    }
    audit_record(actor=actor, action="temperatures.upload", after=result)
    if new or changed:
        touched = [*new, *changed]
        _queue_verifications(
            zone_ids=sorted({row.grid_location_id for row in touched}),
            first=min(row.start for row in touched),
            last=max(row.start for row in touched),
        )
    return result


def _queue_verifications(*, zone_ids: list[int], first: datetime, last: datetime) -> None:
    """Re-verify payable contracts of temperature-baseline products whose assets sit in a changed zone and whose
    delivery day or history window (HISTORY_DAYS) the changed values reach."""
    from settlement.services.verification import HISTORY_DAYS, VERIFIABLE_STATES
    from settlement.services.verification_runs import verification_runs_request
    from trading.models import Contract, Product

    contract_ids = (
        Contract.objects.filter(
            state__in=VERIFIABLE_STATES,
            product__baseline_method=Product.BaselineMethod.TEMPERATURE,
            ptu_start__gte=first - timedelta(days=2),
            ptu_start__lt=last + timedelta(days=HISTORY_DAYS + 3),
        )
        .filter(
            Q(offer__asset__grid_location_id__in=zone_ids)
            | Q(offer__portfolio__assets__grid_location_id__in=zone_ids)
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    verification_runs_request(contract_ids=sorted(contract_ids))


def temperatures_submit(*, actor: Actor, temperatures: list[dict]) -> dict:
    """API bulk submission: [{"grid_location_code", "start", "celsius"}, ...], validated like a CSV upload."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TEMPERATURE_CSV_COLUMNS)
    for item in temperatures:
        writer.writerow([item.get(column, "") for column in TEMPERATURE_CSV_COLUMNS])
    return temperatures_import_csv(actor=actor, file=io.BytesIO(buffer.getvalue().encode()))


def temperatures_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    """Background run of temperatures_import_csv (flexmarket.imports)."""
    return temperatures_import_csv(actor=actor, file=file, progress=progress)
