"""Meter storage benchmark: upload rows/s through the production path and bytes per reading on disk.

Uploads --assets x 96 PTUs x --days readings as one CSV file per UTC day through `meter_upload_csv` (the service the
CSV page, its background import job and the API call), then the first file once more (the same file again changes
nothing), and prints rows/s. Then bytes per reading: PostgreSQL's pg_total_relation_size of the meter table (heap,
indexes and TOAST) over the current readings it holds; on SQLite the dbstat table's pages of the table and its
indexes when SQLite was built with it, else n/a. Target: under 40 bytes per reading on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_meterbench python bench/meter_storage.py [--assets 1000 --days 10]

Point DATABASE_URL at a scratch database: each run adds its own organisation, assets and readings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Clock, ean18, setup_django  # noqa: E402

TARGET_BYTES = 40


def _world(n_assets: int):
    from decimal import Decimal

    from accounts.context import Actor
    from accounts.models import Organisation, OrganisationRole
    from grid.models import FlexAsset, GridLocation

    tag = uuid.uuid4().hex[:8]
    dso = Organisation.objects.create(
        legal_name=f"Meter bench DSO {tag}",
        country="NL",
        code=f"MBD{tag}",
        status=Organisation.Status.APPROVED,
    )
    esp = Organisation.objects.create(
        legal_name=f"Meter bench ESP {tag}",
        country="NL",
        code=f"MBE{tag}",
        status=Organisation.Status.APPROVED,
    )
    OrganisationRole.objects.create(organisation=dso, role="DSO")
    OrganisationRole.objects.create(organisation=esp, role="ESP")
    ring = [[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.0]]
    zone = GridLocation.objects.create(
        dso=dso,
        name=f"Meter bench zone {tag}",
        code=f"bench.meter.{tag}",
        geometry={"type": "Polygon", "coordinates": [ring]},
        min_lon=5.0,
        min_lat=52.0,
        max_lon=5.1,
        max_lat=52.1,
    )
    base = int(tag, 16) % 10**9 * 10**6
    assets = FlexAsset.objects.bulk_create(
        FlexAsset(
            owner=esp,
            name=f"Meter bench asset {i}",
            asset_type="battery",
            connection_ean=ean18(base + i),
            latitude=52.05,
            longitude=5.05,
            grid_location=zone,
            max_up_kw=Decimal("500"),
            max_down_kw=Decimal("500"),
            prequalification="approved",
        )
        for i in range(n_assets)
    )
    return Actor(user=None, organisation=esp), assets


def _day_file(file, assets, day, seed: int):
    """Write one UTC day of readings for every asset as a CSV (kW with three decimals) and rewind."""
    file.write(b"asset_ean,ptu_start,kw\n")
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    stamps = [(start + timedelta(minutes=15 * k)).isoformat() for k in range(96)]
    for number, asset in enumerate(assets):
        ean = asset.connection_ean
        lines = [
            f"{ean},{stamp},{(number * 7919 + k * 104729 + seed) % 200000 / 1000:.3f}\n"
            for k, stamp in enumerate(stamps)
        ]
        file.write("".join(lines).encode())
    file.seek(0)
    return file


def _bytes_on_disk() -> tuple[str, int | None]:
    from django.db import connection

    from settlement.models import MeterDay

    table = MeterDay._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            return "pg_total_relation_size (heap + indexes + TOAST)", cursor.fetchone()[0]
        try:
            cursor.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = %s OR name IN "
                "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s)",
                [table, table],
            )
        except Exception:  # SQLite without the dbstat virtual table
            return "dbstat not available in this SQLite", None
        return "SQLite dbstat pages of the table and its indexes", cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--days", type=int, default=10)
    args = parser.parse_args()
    database = setup_django()
    print(f"meter storage on {database}")

    from django.db.models import Count, Sum

    from settlement.models import MeterDay
    from settlement.services import meter_upload_csv

    actor, assets = _world(args.assets)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=args.days - k) for k in range(args.days)]
    readings = changed = 0
    upload_wall = 0.0
    for number, day in enumerate(days):
        with tempfile.TemporaryFile() as file:
            _day_file(file, assets, day, number)
            with Clock() as clock:
                upload = meter_upload_csv(actor=actor, file=file, filename=f"bench-{day}.csv")
            upload_wall += clock.wall
            readings += upload.row_count
            changed += upload.changed_count
    print(
        f"upload: {readings:,} readings ({args.assets} assets x 96 PTUs x {args.days} days, one file per day) "
        f"in {upload_wall:.1f} s: {readings / upload_wall:,.0f} rows/s; {changed:,} written"
    )
    with tempfile.TemporaryFile() as file:
        _day_file(file, assets, days[0], 0)
        with Clock() as clock:
            again = meter_upload_csv(actor=actor, file=file, filename="bench-again.csv")
    print(
        f"the first file again: {again.row_count:,} rows in {clock.wall:.1f} s "
        f"({again.row_count / clock.wall:,.0f} rows/s), {again.changed_count} changed"
    )
    stored = MeterDay.objects.filter(superseded_at__isnull=True).aggregate(
        readings=Sum("readings"), rows=Count("pk")
    )
    versions = MeterDay.objects.count()
    how, size = _bytes_on_disk()
    print(
        f"table {MeterDay._meta.db_table}: {stored['readings']:,} current readings in {stored['rows']:,} day rows "
        f"({versions:,} rows with history)"
    )
    if size is None:
        print(f"bytes per reading on disk: n/a ({how})")
    else:
        per_reading = size / stored["readings"]
        verdict = "meets" if per_reading < TARGET_BYTES else "misses"
        print(
            f"bytes per reading on disk: {per_reading:.1f} B ({size / 2**20:.1f} MiB, {how}); "
            f"target < {TARGET_BYTES} B: {verdict}"
        )


if __name__ == "__main__":
    main()
