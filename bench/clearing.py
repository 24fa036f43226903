"""Gate-closure clearing benchmark: N offers x 96 PTUs over 50 zones, against an independently built HiGHS model.

The floor is a HiGHS model of the same market written here, not imported from the engine: welfare in EUR, one
balance row per zone and PTU, a binary per block offer and per minimum-quantity cell, built row by row from
Python dicts. It leaves out what the engine adds on purpose (compatibility rows, tie-breaking, the LP re-solve
and the price LPs), so the ratio shows what those and the database cost.

Part 1: the pure engine `clear_auction` against the floor on the same orders (and the PuLP back-end on small
sizes). Part 2: the full gate closure through `trading.services.session_clear` (load from the database, build,
solve, write contracts) on a freshly loaded session each repetition, against the floor rebuilt from the stored
orders. Every figure is the median of --repeat runs, wall time and this process's CPU time (the database
server's CPU is not included). Target (issue 10): full clearing of 10,000 offers within 1.3x of HiGHS alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_bench python bench/clearing.py --sizes 1000,10000
    python bench/clearing.py --sizes 100,1000   # no DATABASE_URL: a throwaway SQLite database

The bench writes its sessions into the database it runs on (codes bench-<run>-...): use a scratch database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ean18, setup_django  # noqa: E402

N_ZONES, N_PTUS = 50, 96
MWH_PER_KW_PTU = 0.25 / 1000


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


# --- the floor: an independent HiGHS model of the same market ---------------------------------------------------


def floor_clear(offers: list[dict], requests: list[dict]) -> dict:
    """Build and solve the market with highspy's own row-by-row interface; returns times and welfare (EUR).

    offers: {"zone", "ptu_qty": {ptu: kW}, "min", "price", "block"}; requests: {"zone", "ptu_qty", "price"}.
    """
    import highspy

    wall, cpu = time.perf_counter(), time.process_time()
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("mip_rel_gap", 1e-6)
    inf = highspy.kHighsInf
    costs, lowers, uppers, integer = [], [], [], []
    balance = defaultdict(list)  # (zone, ptu) -> [(column, coefficient)]
    rows = []  # (lower, upper, [(column, coefficient)])

    def column(cost, upper, is_integer=False):
        costs.append(cost)
        lowers.append(0.0)
        uppers.append(upper)
        integer.append(is_integer)
        return len(costs) - 1

    for offer in offers:
        cost = -offer["price"] * MWH_PER_KW_PTU
        block = column(0.0, 1.0, True) if offer["block"] else None
        for ptu, kw in offer["ptu_qty"].items():
            x = column(cost, kw)
            balance[offer["zone"], ptu].append((x, 1.0))
            if block is not None:
                rows.append((0.0, 0.0, [(x, 1.0), (block, -kw)]))
            elif offer["min"] > 0:
                on = column(0.0, 1.0, True)
                rows.append((0.0, inf, [(x, 1.0), (on, -offer["min"])]))
                rows.append((-inf, 0.0, [(x, 1.0), (on, -kw)]))
    for request in requests:
        for ptu, kw in request["ptu_qty"].items():
            y = column(request["price"] * MWH_PER_KW_PTU, kw)
            balance[request["zone"], ptu].append((y, -1.0))
    rows += [(0.0, 0.0, terms) for terms in balance.values()]
    highs.addVars(len(costs), np.array(lowers), np.array(uppers))
    highs.changeColsCost(len(costs), np.arange(len(costs), dtype=np.int32), np.array(costs))
    integers = np.nonzero(integer)[0].astype(np.int32)
    if integers.size:
        highs.changeColsIntegrality(
            integers.size, integers, np.array([highspy.HighsVarType.kInteger] * integers.size)
        )
    starts, index, value = [], [], []
    for _, _, terms in rows:
        starts.append(len(index))
        index += [c for c, _ in terms]
        value += [v for _, v in terms]
    highs.addRows(
        len(rows),
        np.array([lo for lo, _, _ in rows]),
        np.array([hi for _, hi, _ in rows]),
        len(index),
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value),
    )
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    build_wall, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    highs.run()
    solve_wall, solve_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "build_wall": build_wall,
        "build_cpu": build_cpu,
        "solve_wall": solve_wall,
        "solve_cpu": solve_cpu,
        "wall": build_wall + solve_wall,
        "cpu": build_cpu + solve_cpu,
        "status": highs.modelStatusToString(highs.getModelStatus()),
        "welfare": highs.getInfo().objective_function_value,
        "columns": len(costs),
        "rows": len(rows),
    }


def floor_inputs(arrays) -> tuple[list[dict], list[dict]]:
    offer_zone, offer_qty, offer_min, offer_price, offer_block, request_zone, request_qty, request_price = (
        arrays
    )
    offers = [
        {
            "zone": int(offer_zone[i]),
            "ptu_qty": {int(t): float(offer_qty[i, t]) for t in np.nonzero(offer_qty[i])[0]},
            "min": float(offer_min[i]),
            "price": float(offer_price[i]),
            "block": bool(offer_block[i]),
        }
        for i in range(len(offer_zone))
    ]
    requests = [
        {
            "zone": int(request_zone[j]),
            "ptu_qty": {int(t): float(request_qty[j, t]) for t in np.nonzero(request_qty[j])[0]},
            "price": float(request_price[j]),
        }
        for j in range(len(request_zone))
    ]
    return offers, requests


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def median(values) -> float:
    return statistics.median(values)


# --- Part 1: the engine alone -----------------------------------------------------------------------------------


def engine_part(sizes: list[int], pulp_max: int, repeat: int) -> None:
    from trading.clearing.auction import AuctionOrders, clear_auction

    print(
        f"Part 1 - engine alone vs the independent HiGHS model; {N_ZONES} zones x {N_PTUS} PTUs; median of {repeat}"
    )
    print(
        f"{'offers':>7} {'engine wall':>11} {'engine cpu':>10} {'solve':>7} {'prices':>7} "
        f"{'floor wall':>10} {'floor cpu':>9} {'ratio wall':>10} {'ratio cpu':>9} "
        f"{'welfare engine':>14} {'welfare floor':>13} {'via PuLP s':>10}"
    )
    for size in sizes:
        arrays = synthetic_orders(size)
        orders = AuctionOrders(N_PTUS, N_ZONES, *arrays)
        offers, requests = floor_inputs(arrays)
        engine_runs = [timed(clear_auction, orders) for _ in range(repeat)]
        floor_runs = [floor_clear(offers, requests) for _ in range(repeat)]
        result = engine_runs[-1][0]
        e_wall, e_cpu = median(r[1] for r in engine_runs), median(r[2] for r in engine_runs)
        f_wall, f_cpu = median(r["wall"] for r in floor_runs), median(r["cpu"] for r in floor_runs)
        via_pulp = "-"
        if size <= pulp_max:
            _, pulp_wall, _ = timed(clear_auction, orders, backend="pulp")
            via_pulp = f"{pulp_wall:.2f}"
        print(
            f"{size:>7} {e_wall:>11.2f} {e_cpu:>10.2f} {median(r[0].timings['solve'] for r in engine_runs):>7.2f} "
            f"{median(r[0].timings['prices'] for r in engine_runs):>7.2f} {f_wall:>10.2f} {f_cpu:>9.2f} "
            f"{e_wall / f_wall:>10.2f} {e_cpu / f_cpu:>9.2f} {result.objective:>14.2f} "
            f"{floor_runs[-1]['welfare']:>13.2f} {via_pulp:>10}",
            flush=True,
        )


# --- Part 2: the full gate closure through the service ----------------------------------------------------------


def load_session(n_offers: int, arrays, tag: str, serial: int):
    """Insert a market, 50 zones, one asset per offer, the orders, and a closed session; returns the session."""
    from decimal import Decimal

    from accounts.models import Organisation, OrganisationRole
    from flexmarket import ptu
    from flexmarket.bulk import insert_rows
    from grid.models import FlexAsset, GridLocation
    from trading.models import CapacityReservation, FlexOffer, FlexRequest, Market, MarketSession, Product

    offer_zone, offer_qty, offer_min, offer_price, offer_block, request_zone, request_qty, request_price = (
        arrays
    )
    dso = Organisation.objects.create(
        legal_name=f"Bench DSO {tag}", country="NL", code=f"99{serial:011d}", status="approved"
    )
    esp = Organisation.objects.create(
        legal_name=f"Bench ESP {tag}", country="NL", code=f"98{serial:011d}", status="approved"
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
                connection_ean=ean18(serial * 100_000 + i),
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
                ptu_end=end,
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
    # Each offer holds its capacity in the ledger, as offer_submit leaves it: the clearing releases what it
    # does not sell (without these rows the release would insert negative rows instead of updating).
    held = np.nonzero(offer_qty)
    insert_rows(
        CapacityReservation,
        ["asset_id", "direction", "ptu_start", "reserved_kw"],
        [
            (assets[i].pk, "up", start + int(t) * ptu.PTU, float(offer_qty[i, t]))
            for i, t in zip(held[0].tolist(), held[1].tolist(), strict=True)
        ],
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
                ptu_end=end,
                quantities_kw=request_qty[j].tolist(),
                remaining_kw=request_qty[j].tolist(),
                price=Decimal(str(request_price[j])),
            )
            for j in range(len(request_zone))
        ],
        batch_size=2000,
    )
    return session


def stored_floor_inputs(session) -> tuple[list[dict], list[dict]]:
    """The floor's inputs read back from the stored orders (as the service would see them)."""
    from trading.models import FlexOffer, FlexRequest

    def cells(row):
        offset = int((row["ptu_start"] - session.delivery_start).total_seconds() // 900)
        return {offset + t: float(kw) for t, kw in enumerate(row["quantities_kw"]) if kw}

    offers = [
        {
            "zone": row["grid_location_id"],
            "ptu_qty": cells(row),
            "min": float(row["min_quantity_kw"]),
            "price": float(row["price"]),
            "block": row["all_or_nothing"],
        }
        for row in FlexOffer.objects.filter(session=session).values(
            "grid_location_id", "ptu_start", "quantities_kw", "min_quantity_kw", "price", "all_or_nothing"
        )
    ]
    requests = [
        {"zone": row["grid_location_id"], "ptu_qty": cells(row), "price": float(row["price"])}
        for row in FlexRequest.objects.filter(session=session).values(
            "grid_location_id", "ptu_start", "quantities_kw", "price"
        )
    ]
    return offers, requests


def service_part(sizes: list[int], repeat: int) -> None:
    where = setup_django()
    from accounts.context import SYSTEM
    from trading.services import session_clear

    print("Part 2 - full gate-closure clearing through trading.services.session_clear")
    print(f"database: {where}; {N_ZONES} zones x {N_PTUS} PTUs; median of {repeat}")
    print(
        f"{'offers':>7} {'load':>6} {'build':>6} {'solve':>6} {'write':>6} {'full wall':>9} {'full cpu':>8} "
        f"{'floor wall':>10} {'floor cpu':>9} {'ratio wall':>10} {'ratio cpu':>9} {'status':>8} {'contracts':>9}"
    )
    run_id = int(time.time())
    for size in sizes:
        arrays = synthetic_orders(size)
        fulls, floors, runs = [], [], []
        for attempt in range(repeat):
            serial = (run_id % 10_000_000) * 100 + attempt * 10 + sizes.index(size)
            session = load_session(size, arrays, tag=f"{run_id}-{size}-{attempt}", serial=serial)
            run, wall, cpu = timed(session_clear, session=session, actor=SYSTEM)
            fulls.append((wall, cpu))
            runs.append(run)
            floors.append(floor_clear(*stored_floor_inputs(session)))
            if run.state == "failed":
                print("  error:", run.error)
        f_wall, f_cpu = median(w for w, _ in fulls), median(c for _, c in fulls)
        fl_wall, fl_cpu = median(f["wall"] for f in floors), median(f["cpu"] for f in floors)

        load, build, solve, write = (
            median(r.timings.get(name, 0.0) for r in runs) for name in ("load", "build", "solve", "write")
        )
        print(
            f"{size:>7} {load:>6.2f} {build:>6.2f} {solve:>6.2f} {write:>6.2f} "
            f"{f_wall:>9.2f} {f_cpu:>8.2f} {fl_wall:>10.2f} {fl_cpu:>9.2f} {f_wall / fl_wall:>10.2f} "
            f"{f_cpu / fl_cpu:>9.2f} {runs[-1].solver_status or runs[-1].state:>8} {runs[-1].contracts.count():>9}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; medians are printed")
    parser.add_argument("--pulp-max", type=int, default=100, help="largest size also solved through PuLP")
    parser.add_argument("--engine-only", action="store_true", help="skip Part 2 (the database round trip)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engine_part(sizes, args.pulp_max, args.repeat)
    if not args.engine_only:
        print()
        service_part(sizes, args.repeat)


if __name__ == "__main__":
    main()
