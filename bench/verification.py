"""Verification benchmark: 10,000 assets x 96 PTUs with 30 days of history each.

Part 1 times High 5 of 10 baselines (additive same-day adjustment, capped at 20%) plus delivery verification for
all assets with the vectorised engine on arrays in memory, and reports peak memory. Target: under 30 s and under
2 GiB.

Part 2 measures the production path from PostgreSQL (DATABASE_URL, printed) for each size in --contracts: readings
stored in the database -> verification runs queued as a meter upload queues them (`verification_runs_request`)
-> executed by the batch task (Celery eager, in this process) -> results stored and audited. Beside it, in the
same run and on the same rows, a set-based floor written here: one binary COPY read, the project's `*_batch`
baseline functions on (contracts, days, PTUs) arrays, one COPY write of the same result rows. Medians of
--repeat runs (--repeat-large for sizes of 10,000 and more), wall and CPU time of this process (PostgreSQL's own
CPU is not counted in either). Target: 10,000 contracts under 60 s and within 3x of the floor.

The data (10,000 assets, one contract each on one day, 32 days of readings: 30.7 million rows) is written once
into the database and reused by later runs; point DATABASE_URL at a scratch database (fm_verifybench).

    python bench/verification.py [--assets 10000 --days 30] [--skip-arrays] [--contracts 1000,10000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_verifybench python bench/verification.py --skip-arrays
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Clock, median, setup_django  # noqa: E402
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


DAY = date(2026, 6, 10)  # a Wednesday; its 32-day window has no DST change
TZ = "Europe/Amsterdam"
EVENT = slice(68, 76)  # 17:00-19:00 local
TAG = "BENCHVERIFY"


def _dataset(n_assets: int, n_days: int):
    """The bench's organisations, product, assets and contracts, created once with their readings."""
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Organisation, OrganisationRole
    from flexmarket import ptu
    from grid.models import FlexAsset, GridLocation
    from settlement import meterdays
    from trading.models import Contract, FlexOffer, FlexRequest, Market, MarketSession, Product

    esp = Organisation.objects.filter(code=f"{TAG}ESP").first()
    if esp is not None:
        contracts = list(Contract.objects.filter(seller=esp).order_by("pk").values_list("pk", flat=True))
        if len(contracts) >= n_assets:
            print(f"reusing the bench data: {len(contracts)} contracts and their readings")
            return contracts
        raise SystemExit(
            f"The bench data in this database has {len(contracts)} contracts; use a fresh database."
        )
    started = time.perf_counter()
    history, _, today = synthetic(n_assets, n_days + 1)
    with transaction.atomic():
        dso = Organisation.objects.create(
            legal_name="Bench DSO", country="NL", code=f"{TAG}DSO", status=Organisation.Status.APPROVED
        )
        esp = Organisation.objects.create(
            legal_name="Bench ESP", country="NL", code=f"{TAG}ESP", status=Organisation.Status.APPROVED
        )
        OrganisationRole.objects.create(organisation=dso, role="DSO")
        OrganisationRole.objects.create(organisation=esp, role="ESP")
        ring = [[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.0]]
        zone = GridLocation.objects.create(
            dso=dso,
            name="Bench zone",
            code="bench.verify",
            geometry={"type": "Polygon", "coordinates": [ring]},
            min_lon=5.0,
            min_lat=52.0,
            max_lon=5.1,
            max_lat=52.1,
        )
        market = Market.objects.create(name="Bench verification", code="bench-verify", time_zone=TZ)
        product = Product.objects.create(
            market=market,
            name="Bench up",
            code="bench-up",
            baseline_method="high_x_of_y",
            baseline_params={"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
        )
        created = datetime(2026, 1, 5, tzinfo=ptu.UTC)
        assets = FlexAsset.objects.bulk_create(
            FlexAsset(
                owner=esp,
                name=f"Bench asset {i}",
                asset_type="battery",
                connection_ean=f"{TAG[:2]}{i:016d}",
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
        start, end = ptu.day_bounds_utc(DAY, TZ)
        session = MarketSession.objects.create(
            product=product,
            delivery_day=DAY,
            delivery_start=start,
            delivery_end=end,
            gate_closure=start - timedelta(hours=12),
            state="cleared",
        )
        first = start + EVENT.start * ptu.PTU
        quantities = [[round(float(v), 1) for v in today[i, EVENT] * 0.3] for i in range(n_assets)]
        common = {
            "grid_location": zone,
            "product": product,
            "session": session,
            "direction": "up",
            "ptu_start": first,
            "ptu_end": first + 8 * ptu.PTU,  # bulk_create skips save(), which sets it
            "remaining_kw": [0] * 8,
            "price": Decimal("80"),
            "state": "filled",
        }
        requests = FlexRequest.objects.bulk_create(
            FlexRequest(owner=dso, quantities_kw=quantities[i], **common) for i in range(n_assets)
        )
        offers = FlexOffer.objects.bulk_create(
            FlexOffer(owner=esp, asset=assets[i], quantities_kw=quantities[i], **common)
            for i in range(n_assets)
        )
        Contract.objects.bulk_create(
            Contract(
                reference=f"BENCH-{i:06d}",
                session=session,
                request=requests[i],
                offer=offers[i],
                buyer=dso,
                seller=esp,
                grid_location=zone,
                product=product,
                direction="up",
                ptu_start=first,
                quantities_kw=quantities[i],
                prices=["80"] * 8,
            )
            for i in range(n_assets)
        )
        # Readings: history days, then the delivery day with 90 % of the contracted kW delivered, packed into
        # day rows (settlement.meterdays) here and written with one COPY (30 million readings take minutes
        # through the upload service; bench/meter_storage.py times that path).
        days = [DAY - timedelta(days=n_days + 1 - k) for k in range(n_days + 1)] + [DAY]
        unix_epoch = datetime(1970, 1, 1, tzinfo=ptu.UTC)
        day_starts = np.array(
            [(ptu.day_bounds_utc(d, TZ)[0] - unix_epoch) // timedelta(microseconds=1) for d in days]
        )
        ptu_micros, day_micros = 900_000_000, 86_400_000_000
        offsets = np.arange(96, dtype=np.int64) * ptu_micros
        values = np.concatenate([history, today[:, None, :]], axis=1)  # (assets, days, 96)
        values[:, -1, EVENT] -= today[:, EVENT] * 0.3 * 0.9
        asset_ids = np.array([a.pk for a in assets], dtype=np.int64)
        rows, now = 0, timezone.now()
        columns = "asset_id, source, day, watts, readings, version, created_at"
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY settlement_meterday ({columns}) FROM STDIN") as copy,
        ):
            for first_asset in range(0, n_assets, 500):
                block = values[first_asset : first_asset + 500]
                present = np.isfinite(block)
                index = np.nonzero(present)
                moments = day_starts[index[1]] + offsets[index[2]]
                key = asset_ids[first_asset + index[0]] * 1_000_000 + moments // day_micros
                keys, row_of = np.unique(key, return_inverse=True)
                packed = np.full((keys.size, 96), meterdays.MISSING, dtype=np.int64)
                packed[row_of, (moments % day_micros) // ptu_micros] = np.round(block[present] * 1000)
                counts = np.bincount(row_of, minlength=keys.size)
                for k, key_value in enumerate(keys.tolist()):
                    copy.write_row(
                        [
                            key_value // 1_000_000,
                            "esp",
                            date(1970, 1, 1) + timedelta(days=key_value % 1_000_000),
                            meterdays.pack(packed[k]),
                            int(counts[k]),
                            1,
                            now,
                        ]
                    )
                rows += int(present.sum())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE settlement_meterday")
    print(
        f"bench data written: {n_assets} contracts, {rows} readings in {time.perf_counter() - started:.0f} s"
    )
    return list(Contract.objects.filter(seller=esp).order_by("pk").values_list("pk", flat=True))


def _clear(contract_ids) -> None:
    from settlement.models import DeliveryVerification, VerificationRun

    DeliveryVerification.objects.filter(contract_id__in=contract_ids).delete()
    VerificationRun.objects.filter(contract_id__in=contract_ids).delete()


def production(contract_ids) -> dict:
    """As after a meter upload: runs queued in one transaction, sent on commit, executed by the batch task."""
    from django.db import transaction

    from settlement.services import verification_runs_request

    # The transaction commits before the clock stops, and the batch tasks run on commit (eager): inside the clock.
    with Clock() as clock, transaction.atomic():
        verification_runs_request(contract_ids=contract_ids)
    return {"wall": clock.wall, "cpu": clock.cpu}


def floor(contract_ids) -> dict:
    """One COPY read, the `*_batch` functions on (contracts, days, PTUs) arrays, one COPY write of the results."""
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from flexmarket import ptu
    from settlement.services.verification_batch import _read_copy
    from trading.models import Contract

    with Clock() as clock, transaction.atomic():
        contracts = list(
            Contract.objects.filter(pk__in=contract_ids)
            .order_by("pk")
            .values_list("pk", "offer__asset_id", "quantities_kw")
        )
        assets = np.array([asset for _, asset, _ in contracts], dtype=np.int64)
        order = np.argsort(assets)
        first_day = DAY - timedelta(days=31)
        start = ptu.day_bounds_utc(first_day, TZ)[0]
        end = ptu.day_bounds_utc(DAY, TZ)[1]
        grid = np.full((len(contracts), 32 * 96), np.nan)
        origin = (start - datetime(1970, 1, 1, tzinfo=ptu.UTC)) // timedelta(microseconds=1)

        def scatter(asset, micros, kw, version):
            grid[order[np.searchsorted(assets[order], asset)], (micros - origin) // 900_000_000] = kw

        _read_copy(sorted(assets.tolist()), start, end, sink=scatter)
        days = grid.reshape(len(contracts), 32, 96)
        history, today = days[:, 1:31], days[:, 31]
        weekday = np.array([(first_day + timedelta(days=k)).weekday() < 5 for k in range(1, 31)])
        eligible = np.broadcast_to(weekday, history.shape[:2]).copy()
        window = np.zeros(96, dtype=bool)
        window[EVENT] = True
        baseline = baseline_x_of_y_batch(history, eligible, window, x=5, y=10, mode="high")
        baseline = adjust_same_day_batch(
            baseline, today, window, kind="additive", window_ptus=4, gap_ptus=1, cap=0.2
        )
        contracted = np.zeros((len(contracts), 96))
        contracted[:, EVENT] = np.array([q for _, _, q in contracts])
        result = verify_delivery_batch(
            "up", np.round(baseline, 3), np.round(today, 3), contracted, tolerance=0.1
        )
        delivered = np.round(result.delivered, 3)
        energy = np.where(contracted > 0, np.maximum(delivered, 0), 0).sum(axis=1) / 4
        now = timezone.now().isoformat()
        lines = io.StringIO()

        def listed(values):
            return json.dumps([None if not np.isfinite(v) else v for v in np.round(values, 3).tolist()])

        for i, (pk, _, quantities) in enumerate(contracts):
            awaiting = not np.isfinite(delivered[i][contracted[i] > 0]).all()
            lines.write(
                "\t".join(
                    [
                        str(pk),
                        "awaiting_data" if awaiting else "verified",
                        "high_x_of_y",
                        '{"x": 5, "y": 10}',
                        "[]",
                        listed(result.baseline[i]),
                        listed(result.metered[i]),
                        listed(delivered[i]),
                        listed(result.ratio[i]),
                        json.dumps(result.status[i].tolist()),
                        str((sum(Decimal(str(q)) for q in quantities) / 4).quantize(Decimal("0.001"))),
                        "\\N" if awaiting else f"{energy[i]:.3f}",
                        "",
                        "floor",
                        now,
                    ]
                )
                + "\n"
            )
        columns = (
            "contract_id, state, method, params, days_used, baseline_kw, metered_kw, delivered_kw, ratio, status,"
            " contracted_kwh, delivered_kwh, note, inputs_hash, computed_at"
        )
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY settlement_deliveryverification ({columns}) FROM STDIN") as copy,
        ):
            copy.write(lines.getvalue())
    return {"wall": clock.wall, "cpu": clock.cpu}


def from_the_database(sizes: list[int], n_days: int, repeat: int, repeat_large: int, data: int) -> None:
    database = setup_django()
    from decimal import Decimal

    from django.db import connection

    from settlement.models import DeliveryVerification
    from settlement.services.verification_batch import batch_size

    print(f"\nPart 2: from the database ({database})")
    if connection.vendor != "postgresql":
        raise SystemExit("Part 2 needs PostgreSQL (binary COPY): set DATABASE_URL.")
    contracts = _dataset(max(*sizes, data), n_days)
    print(
        f"history days {n_days} (+1 for midnight windows), PTUs {N_PTUS}, batch size {batch_size()} contracts"
    )
    for size in sizes:
        ids = contracts[:size]
        runs = repeat_large if size >= 10_000 else repeat
        measured = {"production": [], "floor": []}
        for _ in range(runs):
            _clear(ids)
            measured["production"].append(production(ids))
            produced = dict(
                DeliveryVerification.objects.filter(contract_id__in=ids).values_list(
                    "contract_id", "delivered_kwh"
                )
            )
            states = dict.fromkeys(["verified", "awaiting_data"], 0)
            for state in DeliveryVerification.objects.filter(contract_id__in=ids).values_list(
                "state", flat=True
            ):
                states[state] = states.get(state, 0) + 1
            _clear(ids)
            measured["floor"].append(floor(ids))
            floored = dict(
                DeliveryVerification.objects.filter(contract_id__in=ids).values_list(
                    "contract_id", "delivered_kwh"
                )
            )
        _clear(ids)
        agree = sum(
            produced.get(pk) is not None
            and floored.get(pk) is not None
            and abs(produced[pk] - floored[pk]) <= Decimal("0.001")
            for pk in ids
        )
        wall = {name: median([m["wall"] for m in runs_]) for name, runs_ in measured.items()}
        cpu = {name: median([m["cpu"] for m in runs_]) for name, runs_ in measured.items()}
        print(f"\n{size} contracts ({runs} run{'s' if runs > 1 else ''}, medians):")
        print(
            f"  production (runs -> batch task -> results stored, audited): wall {wall['production']:.1f} s,"
            f" CPU {cpu['production']:.1f} s"
        )
        print(
            f"  set-based floor (COPY read, *_batch functions, COPY write):  wall {wall['floor']:.1f} s, CPU {cpu['floor']:.1f} s"
        )
        print(
            f"  ratio production / floor: wall {wall['production'] / wall['floor']:.2f}x,"
            f" CPU {cpu['production'] / cpu['floor']:.2f}x (target < 3x; 10,000 under 60 s)"
        )
        print(
            f"  states {states}; delivered kWh of production and floor within 0.001 kWh"
            f" (the floor rounds in float) for {agree} of {size}"
        )
        if agree < size:
            print(
                f"  ERROR: {size - agree} contract(s) without matching results: the figures above are not valid"
            )


def main() -> None:
    if os.environ.pop("REDIS_URL", None):
        # The production path's batch tasks must run in this process, inside the clock (Celery eager): with a
        # broker they would be queued and nothing verified (an earlier run printed 0 results that way).
        print("REDIS_URL ignored: the verification batch tasks run in this process (Celery eager)")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--contracts", default="1000,10000", help="sizes for the database path (empty: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-large", type=int, default=1, help="runs for sizes of 10,000 and more")
    parser.add_argument("--skip-arrays", action="store_true", help="only the database path")
    parser.add_argument(
        "--data-contracts", type=int, default=10_000, help="contracts in the stored bench data"
    )
    args = parser.parse_args()
    if not args.skip_arrays:
        arrays_in_memory(args.assets, args.days)
    if args.contracts:
        sizes = [int(size) for size in args.contracts.split(",")]
        from_the_database(sizes, args.days, args.repeat, args.repeat_large, args.data_contracts)


if __name__ == "__main__":
    main()
