"""Verification benchmark: 10,000 assets x 96 PTUs with 30 days of history each.

Part 1 times High 5 of 10 baselines (additive same-day adjustment, capped at 20%) plus delivery verification for
all assets with the vectorised engine on arrays in memory, and reports peak memory. Target: under 30 s and under
2 GiB. Part 2 measures the path from the database: readings stored in the database (DATABASE_URL; a throwaway
SQLite file when unset) -> `settlement.services.verification_run` per contract -> verification results stored, and
prints per-contract figures. Part 2 runs inside one transaction that is rolled back, so it leaves the database as
it found it (it migrates an empty one first).

    python bench/verification.py [--assets 10000 --days 30] [--db-assets 100] [--skip-arrays]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_bench python bench/verification.py --db-assets 200
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from settlement.baselines import (  # noqa: E402
    adjust_same_day_batch,
    baseline_x_of_y_batch,
    verify_delivery_batch,
)

N_PTUS = 96


def synthetic(n_assets: int, n_days: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    hours = np.arange(N_PTUS) / 4
    shape = 40 + 30 * np.exp(-((hours - 8) ** 2) / 4) + 50 * np.exp(-((hours - 18.5) ** 2) / 3)
    scale = rng.uniform(0.2, 5.0, (n_assets, 1, 1))
    history = (shape[None, None, :] * scale * rng.normal(1.0, 0.08, (n_assets, n_days, N_PTUS))).astype(
        np.float64
    )
    gaps = rng.random((n_assets, n_days)) < 0.02
    history[gaps, :5] = np.nan
    events = rng.random((n_assets, n_days)) < 0.05
    weekend = (np.arange(n_days) % 7) >= 5
    eligible = ~gaps & ~events & ~weekend[None, :]
    today = shape[None, :] * scale[:, 0, :] * rng.normal(1.0, 0.05, (n_assets, N_PTUS))
    return history, eligible, today


def arrays_in_memory(n_assets: int, n_days: int) -> None:
    tracemalloc.start()
    history, eligible, today = synthetic(n_assets, n_days)
    window = np.zeros(N_PTUS, dtype=bool)
    window[68:76] = True
    contracted = np.zeros((n_assets, N_PTUS))
    contracted[:, 68:76] = today[:, 68:76] * 0.3
    metered = today - contracted * np.random.default_rng(5).uniform(0.6, 1.1, (n_assets, 1))

    _, data_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    baseline = baseline_x_of_y_batch(history, eligible, window, x=5, y=10, mode="high")
    # Additive same-day adjustment from the 4 PTUs ending one PTU before the event, capped at 20 %.
    baseline = adjust_same_day_batch(
        baseline, today, window, kind="additive", window_ptus=4, gap_ptus=1, cap=0.2
    )
    baseline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = verify_delivery_batch("up", baseline, metered, contracted, tolerance=0.1)
    verify_seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statuses, counts = np.unique(result.status[:, window], return_counts=True)
    print("Part 1: arrays in memory (vectorised engine)")
    print(f"assets {n_assets}, PTUs {N_PTUS}, history days {n_days}")
    print(f"baseline (High 5 of 10 + additive adjustment): {baseline_seconds:.2f} s")
    print(f"verification:                                  {verify_seconds:.2f} s")
    print(
        f"total:                                         {baseline_seconds + verify_seconds:.2f} s (target < 30 s)"
    )
    print(f"peak traced memory while generating data: {data_peak / 2**20:.0f} MiB")
    print(f"peak traced memory during baseline + verification (data included): {peak / 2**20:.0f} MiB")
    print(f"peak RSS of the whole process: {rss:.0f} MiB (target < 2048 MiB)")
    print("statuses in the event window:", dict(zip(statuses.tolist(), counts.tolist(), strict=True)))


def setup_django() -> str:
    """Django on DATABASE_URL (a throwaway SQLite file when unset), migrated; returns a printable name."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='fm-bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    settings = connection.settings_dict
    return f"{connection.vendor} {settings.get('HOST') or ''}{':' if settings.get('PORT') else ''}{settings.get('PORT') or ''} {settings['NAME']}".strip()


def _market_and_assets(n_assets: int, day: date):
    """Two organisations, a zone, an approved asset per contract, a High 5 of 10 + additive product."""
    from decimal import Decimal

    from accounts.models import Organisation, OrganisationRole
    from grid.models import FlexAsset, GridLocation
    from trading.models import Market, Product

    tag = datetime.now().strftime("%H%M%S%f")
    dso = Organisation.objects.create(
        legal_name=f"Bench DSO {tag}", country="NL", code=f"BD{tag}", status=Organisation.Status.APPROVED
    )
    esp = Organisation.objects.create(
        legal_name=f"Bench ESP {tag}", country="NL", code=f"BE{tag}", status=Organisation.Status.APPROVED
    )
    OrganisationRole.objects.create(organisation=dso, role="DSO")
    OrganisationRole.objects.create(organisation=esp, role="ESP")
    ring = [[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.0]]
    zone = GridLocation.objects.create(
        dso=dso,
        name=f"Bench zone {tag}",
        code=f"bench.{tag}",
        geometry={"type": "Polygon", "coordinates": [ring]},
        min_lon=5.0,
        min_lat=52.0,
        max_lon=5.1,
        max_lat=52.1,
    )
    market = Market.objects.create(name=f"Bench {tag}", code=f"bench-{tag}")
    product = Product.objects.create(
        market=market,
        name="Bench up",
        code="bench-up",
        baseline_method="high_x_of_y",
        baseline_params={"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
    )
    created = datetime.combine(day - timedelta(days=60), datetime.min.time()).astimezone()
    assets = FlexAsset.objects.bulk_create(
        FlexAsset(
            owner=esp,
            name=f"Bench asset {i}",
            asset_type="battery",
            connection_ean=f"87{tag[-10:]}{i:06d}"[:18],
            latitude=52.05,
            longitude=5.05,
            grid_location=zone,
            max_up_kw=Decimal("5000"),
            max_down_kw=Decimal("5000"),
            prequalification="approved",
            created_at=created,
        )
        for i in range(n_assets)
    )
    return dso, esp, zone, product, assets


def _contracts(dso, esp, zone, product, assets, day: date, today_kw: np.ndarray):
    from decimal import Decimal

    from flexmarket import ptu
    from trading.models import Contract, FlexOffer, FlexRequest, MarketSession

    start, end = ptu.day_bounds_utc(day, "Europe/Amsterdam")
    session = MarketSession.objects.create(
        product=product,
        delivery_day=day,
        delivery_start=start,
        delivery_end=end,
        gate_closure=start - timedelta(hours=12),
        state="cleared",
    )
    first = start + 68 * ptu.PTU
    contracts = []
    for i, asset in enumerate(assets):
        quantities = [round(float(v), 1) for v in today_kw[i, 68:76] * 0.3]
        common = {
            "grid_location": zone,
            "product": product,
            "session": session,
            "direction": "up",
            "ptu_start": first,
            "quantities_kw": quantities,
            "remaining_kw": [0] * 8,
            "price": Decimal("80"),
            "state": "filled",
        }
        request = FlexRequest.objects.create(owner=dso, **common)
        offer = FlexOffer.objects.create(owner=esp, asset=asset, **common)
        contracts.append(
            Contract(
                reference=f"BENCH-{session.pk}-{i:06d}",
                session=session,
                request=request,
                offer=offer,
                buyer=dso,
                seller=esp,
                grid_location=zone,
                product=product,
                direction="up",
                ptu_start=first,
                quantities_kw=quantities,
                prices=["80"] * 8,
            )
        )
    return Contract.objects.bulk_create(contracts)


def from_the_database(n_assets: int, n_days: int) -> None:
    """Readings in the database -> verification_run per contract -> results stored; rolled back at the end."""
    database = setup_django()
    from decimal import Decimal

    from django.db import connection, transaction
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from flexmarket import ptu
    from settlement.models import DeliveryVerification, MeterReading
    from settlement.services import verification_run

    day = date.today() - timedelta(days=2)
    history, _, today = synthetic(n_assets, n_days + 1)
    print(f"\nPart 2: from the database ({database})")
    print(f"assets/contracts {n_assets}, PTUs {N_PTUS}, history days {n_days} (+1 for midnight windows)")
    with transaction.atomic():
        started = time.perf_counter()
        dso, esp, zone, product, assets = _market_and_assets(n_assets, day)
        contracts = _contracts(dso, esp, zone, product, assets, day, today)
        setup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rows = 0
        batch = []
        days = [day - timedelta(days=n_days + 1 - k) for k in range(n_days + 1)] + [day]
        for i, asset in enumerate(assets):
            for k, current in enumerate(days):
                values = today[i] if current == day else history[i, k]
                if current == day:
                    values = values.copy()
                    values[68:76] -= today[i, 68:76] * 0.3 * 0.9  # 90 % delivered
                for index, start in enumerate(ptu.ptu_starts(current, "Europe/Amsterdam")):
                    value = values[min(index, N_PTUS - 1)]
                    if np.isfinite(value):
                        batch.append(
                            MeterReading(
                                asset=asset, ptu_start=start, kw=Decimal(f"{value:.3f}"), source="esp"
                            )
                        )
                if len(batch) >= 20000:
                    MeterReading.objects.bulk_create(batch, batch_size=5000)
                    rows += len(batch)
                    batch = []
        MeterReading.objects.bulk_create(batch, batch_size=5000)
        rows += len(batch)
        insert_seconds = time.perf_counter() - started
        timings = []
        with CaptureQueriesContext(connection) as queries:
            for contract in contracts:
                started = time.perf_counter()
                verification_run(contract=contract)
                timings.append(time.perf_counter() - started)
        states = dict(
            DeliveryVerification.objects.filter(contract__in=contracts)
            .values_list("state")
            .annotate(n=Count("id"))
        )
        transaction.set_rollback(True)
    total = sum(timings)
    print(f"setup (organisations, zone, assets, contracts): {setup_seconds:.2f} s")
    print(f"readings inserted: {rows} in {insert_seconds:.2f} s")
    print(f"verification from the database, total: {total:.2f} s for {len(contracts)} contracts")
    print(
        f"per contract: mean {1000 * total / len(timings):.1f} ms, median {1000 * statistics.median(timings):.1f} ms,"
        f" p95 {1000 * sorted(timings)[int(0.95 * (len(timings) - 1))]:.1f} ms,"
        f" {len(queries) / len(timings):.1f} queries"
    )
    print(
        f"extrapolated to 10,000 contracts at this rate: {10_000 * total / len(timings) / 60:.1f} min (one process)"
    )
    print("verification states:", states)
    print("(rolled back: the database is left as it was)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--db-assets", type=int, default=100, help="contracts for the database path (0: skip)"
    )
    parser.add_argument("--skip-arrays", action="store_true", help="only the database path")
    args = parser.parse_args()
    if not args.skip_arrays:
        arrays_in_memory(args.assets, args.days)
    if args.db_assets:
        from_the_database(args.db_assets, args.days)


if __name__ == "__main__":
    main()
