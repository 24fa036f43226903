"""Demo M&V and settlement: simulated meter data for the contracted assets of the latest delivery day wholly in the
past (yesterday: 30 days of history and the day itself, with most contracts delivered), verification, baseline
accuracy, and a settlement period for that day: computed, approved, and locked with invoices once every contract
is verified.

Meter data are simulated only for PTUs that have passed (readings of the future are refused). The load heats:
it rises as the zone's outdoor temperature falls below 12 °C, using the shipped synthetic sample series
(settlement/data/sample_temperatures.csv) replayed on the demo's dates and uploaded for every demo zone, so the
accuracy page ranks the temperature baseline beside the others.
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from django.utils import timezone

from accounts.context import Actor
from flexmarket import ptu
from grid.models import GridLocation
from settlement import services
from settlement.models import SettlementPeriod
from trading.models import Contract

TZ = "Europe/Amsterdam"
SAMPLE_TEMPERATURES = Path(__file__).parent / "data" / "sample_temperatures.csv"
SAMPLE_FIRST_DAY = date(2026, 1, 2)  # the sample's second UTC day is the demo's first history day
HEATING_BALANCE_C, HEATING_KW_PER_DEGREE = 12.0, 9.0


def sample_temperatures(first_day: date) -> dict[datetime, float]:
    """The shipped hourly series (UTC), shifted by whole days so that its second day falls on `first_day`."""
    shift = first_day - SAMPLE_FIRST_DAY
    with SAMPLE_TEMPERATURES.open() as file:
        return {
            datetime.fromisoformat(row["start"].replace("Z", "+00:00")) + shift: float(row["celsius"])
            for row in csv.DictReader(file)
        }


def _load_temperatures(cast, temperatures: dict[datetime, float]) -> None:
    """Upload the series for every demo zone, as its DSO (the upload service checks the zone is theirs)."""
    keys = {organisation.pk: key for key, organisation in cast.organisations.items()}
    for dso_id in GridLocation.objects.values_list("dso_id", flat=True).distinct().order_by("dso_id"):
        key = keys.get(dso_id)
        if key is None:
            continue
        lines = ["grid_location_code,start,celsius"] + [
            f"{zone.code},{moment.isoformat()},{celsius}"
            for zone in GridLocation.objects.filter(dso_id=dso_id, archived_at__isnull=True).order_by("code")
            for moment, celsius in sorted(temperatures.items())
        ]
        services.temperatures_import_csv(
            actor=Actor(user=cast.users[key], organisation=cast.organisations[key]),
            file=io.BytesIO(("\n".join(lines) + "\n").encode()),
        )


def _profile(asset_id: int, index: int, rng: random.Random, celsius: float) -> float:
    hour = index / 4
    base = 120 + 60 * math.exp(-((hour - 8) ** 2) / 4) + 110 * math.exp(-((hour - 18.5) ** 2) / 3)
    base += HEATING_KW_PER_DEGREE * max(0.0, HEATING_BALANCE_C - celsius)
    return round(base * (0.6 + (asset_id % 5) * 0.15) * rng.uniform(0.97, 1.03), 1)


def seed(cast) -> None:
    """Meter data, verification and settlement for the latest delivery day that is wholly in the past."""
    if SettlementPeriod.objects.exists():
        return
    today = ptu.local_day_of(timezone.now(), TZ)
    day = (
        Contract.objects.filter(state=Contract.State.ACTIVE, session__delivery_day__lt=today)
        .order_by("-session__delivery_day")
        .values_list("session__delivery_day", flat=True)
        .first()
    )
    if day is None:
        return
    contracts = list(
        Contract.objects.filter(state=Contract.State.ACTIVE, session__delivery_day=day).select_related(
            "offer__asset", "session"
        )
    )
    now = timezone.now()
    temperatures = sample_temperatures(day - timedelta(days=30))
    _load_temperatures(cast, temperatures)
    rng = random.Random(11)
    by_esp: dict[int, list[str]] = {}
    delivery: dict[int, dict[int, float]] = {}
    for number, contract in enumerate(contracts):
        offset = int((contract.ptu_start - contract.session.delivery_start) / ptu.PTU)
        share = 0.6 if number % 4 == 3 else rng.uniform(0.95, 1.05)  # every fourth contract under-delivers
        for i, kw in enumerate(contract.quantities_kw):
            if kw:
                delivery.setdefault(contract.offer.asset_id, {})[offset + i] = kw * share
    written: set[int] = set()
    for contract in contracts:
        asset = contract.offer.asset
        if asset is None or asset.pk in written:
            continue
        written.add(asset.pk)
        lines = by_esp.setdefault(asset.owner_id, ["asset_ean,ptu_start,kw"])
        for back in range(30, -1, -1):
            current = day - timedelta(days=back)
            for index, start in enumerate(ptu.ptu_starts(current, TZ)):
                hour = start.astimezone(ptu.UTC).replace(minute=0)
                kw = _profile(asset.pk, index, rng, temperatures[hour])
                if start + ptu.PTU > now:
                    continue
                if back == 0:
                    kw = round(kw - delivery.get(asset.pk, {}).get(index, 0.0), 1)
                lines.append(f"{asset.connection_ean},{start.isoformat()},{kw}")
    organisations = {organisation.pk: key for key, organisation in cast.organisations.items()}
    for owner_id, lines in by_esp.items():
        key = organisations[owner_id]
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        services.meter_upload_csv(
            actor=actor,
            file=io.BytesIO(("\n".join(lines) + "\n").encode()),
            filename="demo-meter-data.csv",
            now=now,
        )
    for contract in contracts:
        services.verification_run(contract=contract, now=now)
    for asset_id in delivery:
        contract = next(c for c in contracts if c.offer.asset_id == asset_id)
        services.accuracy_compute(asset=contract.offer.asset, until=day)
    fmo = Actor(user=cast.users["fmo"], organisation=cast.organisations["fmo"])
    period = services.period_create(actor=fmo, name=f"Demo {day}", start=day, end=day)
    services.period_compute(actor=fmo, period=period)
    services.period_approve(actor=fmo, period=period)
    blockers = services.period_lock_blockers(period=period, now=now)
    if not (blockers["override"] or blockers["stale"]):
        services.period_lock(actor=fmo, period=period, now=now)
