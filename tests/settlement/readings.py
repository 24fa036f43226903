"""Test helpers for meter readings in their stored layout (one packed row per asset, source and UTC day)."""

from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from settlement import meterdays
from settlement.models import MeterDay


def readings_store(rows, *, source="esp", version=1, superseded=False) -> int:
    """Write (asset, ptu_start, kw) readings as day rows directly (fixtures; uploads go through the services).
    Returns how many day rows were written."""
    days = defaultdict(meterdays.empty)
    for asset, moment, kw in rows:
        day, index = meterdays.position(moment)
        days[(asset.pk, day)][index] = meterdays.watts_of(Decimal(kw))
    MeterDay.objects.bulk_create(
        [
            MeterDay(
                asset_id=asset_id,
                source=source,
                day=day,
                watts=meterdays.pack(watts),
                readings=int((watts != meterdays.MISSING).sum()),
                version=version,
                superseded_at=timezone.now() if superseded else None,
            )
            for (asset_id, day), watts in days.items()
        ],
        batch_size=2000,
    )
    return len(days)


def readings_all(*, current=True) -> dict:
    """{(asset id, source, ptu_start): kw Decimal} of the current (or superseded) readings."""
    result = {}
    for row in MeterDay.objects.filter(superseded_at__isnull=current):
        values = meterdays.unpack(row.watts)
        for index in range(meterdays.PTUS_PER_DAY):
            if values[index] != meterdays.MISSING:
                result[(row.asset_id, row.source, meterdays.moment_of(row.day, index))] = meterdays.kw_of(
                    values[index]
                )
    return result


def readings_count() -> int:
    """Current readings stored."""
    return len(readings_all())
