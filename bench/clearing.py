"""Gate-closure clearing benchmark: N offers x 96 PTUs over 50 zones.

Part 1 prints, per size, the pure engine (build, solve, prices, trades) against HiGHS alone on the same model, and
the PuLP backend on small sizes; Part 2 the full clearing through the service (load from the database, build,
solve, write contracts) against HiGHS alone, and their ratio. Targets: full within 2x of HiGHS alone; 10,000 offers
cleared in under 60 s on a 2-core machine.

    python bench/clearing.py                 # 100, 1000, 10000 offers on a throwaway SQLite database
    DATABASE_URL=postgres://... python bench/clearing.py --sizes 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
N_ZONES, N_PTUS = 50, 96


def synthetic_orders(n_offers: int, seed: int = 7):
    """Offers cover 4-32 PTU windows; ~20% carry a minimum, ~5% are blocks; a few requests per zone."""
    rng = np.random.default_rng(seed)
    offer_zone = rng.integers(0, N_ZONES, n_offers)
    offer_qty = np.zeros((n_offers, N_PTUS))
    starts = rng.integers(0, N_PTUS - 4, n_offers)
    lengths = rng.integers(4, 33, n_offers)
    sizes = rng.choice([20, 50, 100, 200, 500], n_offers)
    for i in range(n_offers):
        offer_qty[i, starts[i] : min(N_PTUS, starts[i] + lengths[i])] = sizes[i]
    offer_min = np.where(rng.random(n_offers) < 0.2, sizes * 0.5, 0.0)
    offer_block = rng.random(n_offers) < 0.05
    offer_price = np.round(rng.uniform(20, 200, n_offers), 2)
    n_requests = N_ZONES * 3
    request_zone = np.repeat(np.arange(N_ZONES), 3)
    request_qty = np.zeros((n_requests, N_PTUS))
    per_zone_volume = max(1.0, n_offers / N_ZONES) * 40
    for j in range(n_requests):
        start = rng.integers(28, 72)
        request_qty[j, start : start + rng.integers(8, 24)] = round(per_zone_volume * rng.uniform(0.2, 0.6))
    request_price = np.round(rng.uniform(60, 250, n_requests), 2)
    return (
        offer_zone,
        offer_qty,
        offer_min,
        offer_price,
        offer_block,
        request_zone,
        request_qty,
        request_price,
    )


def setup_django(database_url: str | None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='fm-bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load_session(n_offers: int, arrays, tag: str):
    """Insert a market, 50 zones, one asset per offer, the orders, and a closed session; returns the session."""
    from decimal import Decimal

    from accounts.models import Organisation, OrganisationRole
    from flexmarket import ptu
    from grid.models import FlexAsset, GridLocation
    from trading.models import FlexOffer, FlexRequest, Market, MarketSession, Product

    offer_zone, offer_qty, offer_min, offer_price, offer_block, request_zone, request_qty, request_price = (
        arrays
    )
    dso = Organisation.objects.create(
        legal_name=f"Bench DSO {tag}", country="NL", code=f"99{tag:0>11}"[:13], status="approved"
    )
    esp = Organisation.objects.create(
        legal_name=f"Bench ESP {tag}", country="NL", code=f"98{tag:0>11}"[:13], status="approved"
    )
    OrganisationRole.objects.bulk_create(
        [OrganisationRole(organisation=dso, role="DSO"), OrganisationRole(organisation=esp, role="ESP")]
    )
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    zones = GridLocation.objects.bulk_create(
        [
            GridLocation(dso=dso, name=f"Z{z}", code=f"bench-{tag}-{z}", geometry=square)
            for z in range(N_ZONES)
        ]
    )
    assets = FlexAsset.objects.bulk_create(
        [
            FlexAsset(
                owner=esp,
                name=f"A{i}",
                asset_type="battery",
                connection_ean=f"{i:018d}",
                latitude=0.5,
                longitude=0.5,
                grid_location=zones[offer_zone[i]],
                max_up_kw=Decimal("1000"),
                max_down_kw=Decimal("1000"),
                prequalification="approved",
            )
            for i in range(n_offers)
        ],
        batch_size=2000,
    )
    market = Market.objects.create(name=f"Bench {tag}", code=f"bench-{tag}")
    product = Product.objects.create(market=market, name="Up", code="up")
    day = date(2027, 1, 12)
    start, end = ptu.day_bounds_utc(day, market.time_zone)
    session = MarketSession.objects.create(
        product=product,
        delivery_day=day,
        delivery_start=start,
        delivery_end=end,
        gate_closure=start - timedelta(hours=12),
        state=MarketSession.State.CLOSED,
    )
    FlexOffer.objects.bulk_create(
        [
            FlexOffer(
                owner=esp,
                grid_location=zones[offer_zone[i]],
                product=product,
                session=session,
                direction="up",
                ptu_start=start,
                quantities_kw=offer_qty[i].tolist(),
                remaining_kw=offer_qty[i].tolist(),
                price=Decimal(str(offer_price[i])),
                min_quantity_kw=Decimal(str(offer_min[i])),
                all_or_nothing=bool(offer_block[i]),
                asset=assets[i],
            )
            for i in range(n_offers)
        ],
        batch_size=2000,
    )
    FlexRequest.objects.bulk_create(
        [
            FlexRequest(
                owner=dso,
                grid_location=zones[request_zone[j]],
                product=product,
                session=session,
                direction="up",
                ptu_start=start,
                quantities_kw=request_qty[j].tolist(),
                remaining_kw=request_qty[j].tolist(),
                price=Decimal(str(request_price[j])),
            )
            for j in range(len(request_zone))
        ],
        batch_size=2000,
    )
    return session


def highs_alone(session) -> float:
    """Rebuild the same model from the stored orders and time HiGHS's run() alone."""
    from trading.clearing.auction import AuctionOrders, build_model
    from trading.models import FlexOffer, FlexRequest

    n = int((session.delivery_end - session.delivery_start).total_seconds() // 900)
    offers = list(
        FlexOffer.objects.filter(session=session)
        .order_by("created_at", "pk")
        .values_list("grid_location_id", "quantities_kw", "min_quantity_kw", "price", "all_or_nothing")
    )
    requests = list(
        FlexRequest.objects.filter(session=session)
        .order_by("created_at", "pk")
        .values_list("grid_location_id", "quantities_kw", "price")
    )
    zones = {z: i for i, z in enumerate(sorted({o[0] for o in offers} | {r[0] for r in requests}))}
    orders = AuctionOrders(
        n_ptus=n,
        n_zones=len(zones),
        offer_zone=np.array([zones[o[0]] for o in offers]),
        offer_qty=np.array([o[1] for o in offers], dtype=float),
        offer_min=np.array([float(o[2]) for o in offers]),
        offer_price=np.array([float(o[3]) for o in offers]),
        offer_block=np.array([o[4] for o in offers], dtype=bool),
        request_zone=np.array([zones[r[0]] for r in requests]),
        request_qty=np.array([r[1] for r in requests], dtype=float),
        request_price=np.array([float(r[2]) for r in requests]),
    )
    lp, _ = build_model(orders)
    return time_highs_run(lp)


def time_highs_run(lp) -> float:
    """HiGHS alone: run() on an already passed model, same options as the engine."""
    import highspy

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    highs.setOptionValue("mip_rel_gap", 1e-6)
    highs.passModel(lp)
    started = time.perf_counter()
    highs.run()
    return time.perf_counter() - started


def engine_part(sizes: list[int], pulp_max: int) -> None:
    """Part 1: the pure engine (build, solve, prices, trades) against HiGHS alone; PuLP backend for small sizes."""
    from trading.clearing.auction import AuctionOrders, build_model, clear_auction

    print(f"Part 1 - engine alone; {N_ZONES} zones x {N_PTUS} PTUs")
    print(
        f"{'offers':>7} {'cols':>8} {'rows':>8} {'ints':>6} {'build':>7} {'solve':>7} {'engine s':>9} "
        f"{'HiGHS s':>8} {'ratio':>6} {'status':>8} {'via PuLP s':>10}"
    )
    for size in sizes:
        orders = AuctionOrders(N_PTUS, N_ZONES, *synthetic_orders(size))
        started = time.perf_counter()
        result = clear_auction(orders)
        engine = time.perf_counter() - started
        lp, _ = build_model(orders)
        alone = time_highs_run(lp)
        n_int = sum(1 for v in lp.integrality_ if int(v)) if len(lp.integrality_) else 0
        via_pulp = "-"
        if size <= pulp_max:
            started = time.perf_counter()
            pulp_result = clear_auction(orders, backend="pulp")
            via_pulp = f"{time.perf_counter() - started:.2f}"
            assert abs(pulp_result.objective - result.objective) <= 1e-6 * max(1.0, abs(result.objective))
        t = result.timings
        print(
            f"{size:>7} {lp.num_col_:>8} {lp.num_row_:>8} {n_int:>6} {t['build']:>7.2f} {t['solve']:>7.2f} "
            f"{engine:>9.2f} {alone:>8.2f} {engine / alone:>6.2f} {result.status:>8} {via_pulp:>10}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--pulp-max", type=int, default=1000, help="largest size also solved through PuLP")
    parser.add_argument("--engine-only", action="store_true", help="skip Part 2 (the database round trip)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engine_part(sizes, args.pulp_max)
    if args.engine_only:
        return
    print()
    print("Part 2 - full gate-closure clearing through trading.services.session_clear")
    setup_django(os.environ.get("BENCH_DATABASE_URL"))
    from django.db import connection

    from accounts.context import SYSTEM
    from trading.services import session_clear

    print(f"database: {connection.vendor}; {N_ZONES} zones x {N_PTUS} PTUs")
    header = f"{'offers':>7} {'load':>7} {'build':>7} {'solve':>7} {'write':>7} {'full s':>8} {'HiGHS s':>8} {'ratio':>6} {'status':>9} {'contracts':>9} {'cleared MWh':>11}"
    print(header)
    for size in sizes:
        session = load_session(size, synthetic_orders(size), tag=str(size))
        started = time.perf_counter()
        run = session_clear(session=session, actor=SYSTEM)
        full = time.perf_counter() - started
        alone = highs_alone(session)
        t = run.timings
        print(
            f"{size:>7} {t.get('load', 0):>7.2f} {t.get('build', 0):>7.2f} {t.get('solve', 0):>7.2f} {t.get('write', 0):>7.2f} "
            f"{full:>8.2f} {alone:>8.2f} {full / alone if alone else float('nan'):>6.2f} {run.solver_status or run.state:>9} "
            f"{run.contracts.count():>9} {float(run.cleared_volume_kwh) / 1000:>11.1f}",
            flush=True,
        )
        if run.state == "failed":
            print("  error:", run.error)


if __name__ == "__main__":
    main()
