"""Migration 0006 moves per-reading rows into day rows, keeping every correction as a version of the day."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from settlement import meterdays
from settlement.models import MeterDay
from tests.grid.factories import FlexAssetFactory, GridLocationFactory

BEFORE = [("settlement", "0005_zonetemperature")]
AFTER = [("settlement", "0006_meter_days")]
START = datetime(2026, 3, 1, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_readings_and_their_corrections_move_into_day_rows(esp_org, dso_org):
    asset = FlexAssetFactory(owner=esp_org, grid_location=GridLocationFactory(dso=dso_org))
    try:
        apps = migrate(BEFORE)
        MeterReading = apps.get_model("settlement", "MeterReading")
        first, second = START + timedelta(days=2), START + timedelta(days=3)
        rows = [
            # PTU 0 corrected once; PTU 1 only in the first version; PTU 2 added later; a DSO reading apart
            {
                "ptu_start": START,
                "kw": Decimal("1.500"),
                "version": 1,
                "created_at": first,
                "superseded_at": second,
            },
            {"ptu_start": START, "kw": Decimal("2.250"), "version": 2, "created_at": second},
            {
                "ptu_start": START + timedelta(minutes=15),
                "kw": Decimal("-0.001"),
                "version": 1,
                "created_at": first,
            },
            {
                "ptu_start": START + timedelta(minutes=30),
                "kw": Decimal("7"),
                "version": 1,
                "created_at": second,
            },
            {"ptu_start": START + timedelta(days=1), "kw": Decimal("9"), "version": 1, "created_at": first},
            {"ptu_start": START, "kw": Decimal("4"), "version": 1, "created_at": first, "source": "dso"},
            {
                "ptu_start": START + timedelta(minutes=7),
                "kw": Decimal("5"),
                "version": 1,
                "created_at": first,
            },  # off-PTU
        ]
        for row in rows:
            MeterReading.objects.create(asset_id=asset.pk, **{"source": "esp", **row})
        migrate(AFTER)
        days = {
            (d.source, d.day, d.version): (
                [
                    meterdays.kw_of(w) if w != meterdays.MISSING else None
                    for w in meterdays.unpack(d.watts)[:3]
                ],
                d.readings,
                d.created_at,
                d.superseded_at,
            )
            for d in MeterDay.objects.all()
        }
        assert days == {
            ("esp", date(2026, 3, 1), 1): ([Decimal("1.500"), Decimal("-0.001"), None], 2, first, second),
            ("esp", date(2026, 3, 1), 2): (
                [Decimal("2.250"), Decimal("-0.001"), Decimal("7.000")],
                3,
                second,
                None,
            ),
            ("esp", date(2026, 3, 2), 1): ([Decimal("9.000"), None, None], 1, first, None),
            ("dso", date(2026, 3, 1), 1): ([Decimal("4.000"), None, None], 1, first, None),
        }
        migrate(BEFORE)  # and back: every version's readings again
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        back = apps.get_model("settlement", "MeterReading").objects.filter(superseded_at__isnull=True)
        assert sorted((r.source, r.ptu_start, r.kw) for r in back) == [
            ("dso", START, Decimal("4.000")),
            ("esp", START, Decimal("2.250")),
            ("esp", START + timedelta(minutes=15), Decimal("-0.001")),
            ("esp", START + timedelta(minutes=30), Decimal("7.000")),
            ("esp", START + timedelta(days=1), Decimal("9.000")),
        ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
