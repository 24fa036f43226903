"""Continuous matching and offer submission benchmark, through the production services (and the API).

Part 1 (service): a continuous session's zone holds N resting offers (1,000 and 10,000 by default); DSO aggressor
FlexRequests of 1-4 PTUs arrive through `trading.services.request_submit`, one client or several client processes
at once; it prints `N orders/s` per setting, median and p95 latency and CPU time per order, beside a floor
measured in the same run on the same database: the minimal transaction a fill needs (insert the order, update one
resting row, insert the contract) written in SQL here.
Part 2 (service): offer submission on an asset with 0 and with 5,000 open offers (the capability check is one
indexed read of the capacity ledger: the two should be within 1.2x).
Part 3 (API, `--api`): a gunicorn server with the project's WSGI app; 8 and 32 concurrent clients POST aggressor
FlexRequests and FlexOffers; p50/p95 beside the `/api/v1/me/` floor at the same concurrency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_bench python bench/matching.py [--resting 1000,10000] [--api]

The bench writes its market into the database it runs on (codes bench-...): use a scratch database.
Targets (issue 10): >= 300 aggressor orders/s through the service with 1,000 resting orders on PostgreSQL, rising
with concurrent clients; offer submission with 5,000 open offers within 1.2x of 0; offer POST p95 within 2x of
the /api/v1/me/ floor at 32 clients.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Clock, ean18, median, percentile, setup_django  # noqa: E402

AGGRESSORS = 300


def build_market(n_resting: int, tag: str) -> dict:
    """A continuous product, one zone, a DSO, an ESP with 20 large assets, and n resting offers in the book."""
    import numpy as np
    from django.utils import timezone

    from accounts.models import Membership, Organisation, OrganisationRole, Role, User
    from flexmarket import ptu
    from grid.models import FlexAsset, GridLocation
    from trading.models import FlexOffer, Market, MarketSession, OrderState, Product

    def organisation(name, role, code):
        org = Organisation.objects.create(
            legal_name=f"{name} {tag}", code=code, country="NL", status=Organisation.Status.APPROVED
        )
        OrganisationRole.objects.create(organisation=org, role=role)
        user = User.objects.create_user(email=f"{name.lower()}-{tag}@bench.example", password=None)
        Membership.objects.create(user=user, organisation=org, is_admin=True)
        return org, user

    serial = int(uuid.uuid4().int % 10**9)
    dso, dso_user = organisation("DSO", Role.DSO, f"87{serial:011d}"[:13])
    esp, esp_user = organisation("ESP", Role.ESP, f"88{serial:011d}"[:13])
    ring = [[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.0]]
    zone = GridLocation.objects.create(
        dso=dso,
        name=f"Bench zone {tag}",
        code=f"bench-{tag}",
        geometry={"type": "Polygon", "coordinates": [ring]},
        min_lon=5.0,
        min_lat=52.0,
        max_lon=5.1,
        max_lat=52.1,
    )
    assets = [
        FlexAsset.objects.create(
            owner=esp,
            name=f"Bench asset {i}",
            asset_type="battery",
            connection_ean=ean18(serial * 100 + i),
            latitude=52.05,
            longitude=5.05,
            grid_location=zone,
            max_up_kw=Decimal("1000000"),
            max_down_kw=Decimal("1000000"),
            energy_capacity_kwh=Decimal("1000000"),
            prequalification="approved",
        )
        for i in range(20)
    ]
    market = Market.objects.create(name=f"Bench {tag}", code=f"bench-{tag}")
    product = Product.objects.create(
        market=market, name="Continuous", code="cont", clearing_rule=Product.ClearingRule.CONTINUOUS
    )
    day = ptu.local_day_of(timezone.now(), market.time_zone) + timedelta(days=2)
    start, end = ptu.day_bounds_utc(day, market.time_zone)
    session = MarketSession.objects.create(
        product=product,
        delivery_day=day,
        delivery_start=start,
        delivery_end=end,
        gate_closure=start - timedelta(hours=1),
    )
    rng = np.random.default_rng(11)
    now = timezone.now()
    offers = []
    for i in range(n_resting):
        length = int(rng.integers(1, 9))
        first = int(rng.integers(60, 88 - length))
        quantities = [float(rng.choice([10, 20, 50, 100]))] * length
        offers.append(
            FlexOffer(
                owner=esp,
                created_by=esp_user,
                grid_location=zone,
                product=product,
                session=session,
                direction="up",
                ptu_start=start + first * ptu.PTU,
                ptu_end=start + (first + length) * ptu.PTU,
                quantities_kw=quantities,
                remaining_kw=list(quantities),
                price=Decimal(str(round(float(rng.uniform(20, 200)), 2))),
                asset=assets[i % len(assets)],
                state=OrderState.ACTIVE,
                created_at=now - timedelta(seconds=n_resting - i),
            )
        )
    FlexOffer.objects.bulk_create(offers, batch_size=2000)
    return {
        "session_id": session.pk,
        "zone_id": zone.pk,
        "product_id": product.pk,
        "dso_id": dso.pk,
        "dso_user_id": dso_user.pk,
        "esp_id": esp.pk,
        "esp_user_id": esp_user.pk,
        "asset_ids": [a.pk for a in assets],
        "start": start,
    }


def submit_aggressors(market: dict, count: int, seed: int) -> list[float]:
    """Submit `count` aggressor requests; returns the latency of each in seconds."""
    import numpy as np

    from accounts.context import Actor
    from accounts.models import Organisation, User
    from flexmarket import ptu
    from grid.models import GridLocation
    from trading import services
    from trading.models import OrderMode, Product

    actor = Actor(
        user=User.objects.get(pk=market["dso_user_id"]),
        organisation=Organisation.objects.get(pk=market["dso_id"]),
    )
    zone = GridLocation.objects.get(pk=market["zone_id"])
    product = Product.objects.select_related("market").get(pk=market["product_id"])
    rng = np.random.default_rng(seed)
    latencies = []
    for _ in range(count):
        length = int(rng.integers(1, 5))
        first = int(rng.integers(60, 88 - length))
        started = time.perf_counter()
        services.request_submit(
            actor=actor,
            grid_location=zone,
            product=product,
            ptu_start=market["start"] + first * ptu.PTU,
            quantities_kw=[float(rng.choice([5, 10, 20]))] * length,
            price=250,
            order_mode=OrderMode.AGGRESSOR,
        )
        latencies.append(time.perf_counter() - started)
    return latencies


def _client(args):
    market, count, seed, queue = args
    from django.db import connections

    connections.close_all()
    clock = Clock()
    with clock:
        latencies = submit_aggressors(market, count, seed)
    queue.put((latencies, clock.cpu))


def concurrent(market: dict, clients: int, per_client: int) -> tuple[float, list[float], float]:
    """`clients` processes submitting at once; returns (orders/s, latencies, CPU seconds of the clients)."""
    from django.db import connections

    connections.close_all()
    queue = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=_client, args=((market, per_client, 1000 + i, queue),))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    latencies = [latency for result in results for latency in result[0]]
    return len(latencies) / elapsed, latencies, sum(result[1] for result in results)


def floor_fills(market: dict, count: int) -> float:
    """The minimal fill, in SQL: insert an order, update a resting order's remaining, insert a contract; orders/s."""
    from django.db import connection, transaction

    from trading.models import Contract, FlexOffer, FlexRequest

    resting = list(
        FlexOffer.objects.filter(session_id=market["session_id"]).values_list("pk", flat=True)[:count]
    )
    requests, offers, contracts = (m._meta.db_table for m in (FlexRequest, FlexOffer, Contract))
    started = time.perf_counter()
    for offer_id in resting:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {requests} (owner_id, grid_location_id, product_id, session_id, direction, ptu_start, ptu_end, "
                f"quantities_kw, remaining_kw, price, order_mode, state, state_reason, external_id, created_at, "
                f"updated_at, is_tso) VALUES (%s, %s, %s, %s, 'up', %s, %s, '[10]', '[0]', 250, 'aggressor', 'filled', "
                f"'', '', now(), now(), false) RETURNING id",
                [
                    market["dso_id"],
                    market["zone_id"],
                    market["product_id"],
                    market["session_id"],
                    market["start"],
                    market["start"] + timedelta(minutes=15),
                ],
            )
            request_id = cursor.fetchone()[0]
            cursor.execute(f"UPDATE {offers} SET remaining_kw = remaining_kw WHERE id = %s", [offer_id])
            cursor.execute(
                f"INSERT INTO {contracts} (reference, session_id, request_id, offer_id, buyer_id, seller_id, "
                f"grid_location_id, product_id, direction, ptu_start, quantities_kw, prices, state, created_at) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'up', %s, '[10]', '[\"50\"]', 'cancelled', now())",
                [
                    f"floor-{uuid.uuid4().hex[:20]}",
                    market["session_id"],
                    request_id,
                    offer_id,
                    market["dso_id"],
                    market["esp_id"],
                    market["zone_id"],
                    market["product_id"],
                    market["start"],
                ],
            )
    return len(resting) / (time.perf_counter() - started)


def service_part(sizes: list[int], clients: list[int]) -> None:
    print("\nPart 1: aggressor FlexRequests through trading.services.request_submit")
    for n_resting in sizes:
        market = build_market(n_resting, f"m{n_resting}-{uuid.uuid4().hex[:6]}")
        submit_aggressors(market, 20, seed=1)  # warm up
        clock = Clock()
        with clock:
            latencies = submit_aggressors(market, AGGRESSORS, seed=2)
        rate = len(latencies) / clock.wall
        print(
            f"  {n_resting:>6} resting, 1 client : {rate:7.1f} orders/s  p50 {median(latencies) * 1000:6.1f} ms  "
            f"p95 {percentile(latencies, 0.95) * 1000:6.1f} ms  CPU {clock.cpu / len(latencies) * 1000:5.1f} ms/order"
        )
        for n_clients in clients:
            rate, latencies, cpu = concurrent(market, n_clients, max(10, AGGRESSORS // n_clients))
            print(
                f"  {n_resting:>6} resting, {n_clients:>2} clients: {rate:7.1f} orders/s  "
                f"p50 {median(latencies) * 1000:6.1f} ms  p95 {percentile(latencies, 0.95) * 1000:6.1f} ms  "
                f"CPU {cpu / len(latencies) * 1000:5.1f} ms/order"
            )
        floor = floor_fills(market, AGGRESSORS)
        print(f"  {n_resting:>6} resting, floor (SQL fill, 1 client): {floor:7.1f} orders/s")


def offer_part(open_offers: int) -> None:
    """Offer submission latency with 0 and with `open_offers` open offers on the same asset."""
    from accounts.context import Actor
    from accounts.models import Organisation, User
    from flexmarket import ptu
    from grid.models import FlexAsset
    from trading import services
    from trading.models import Product

    print("\nPart 2: offer submission with 0 and with many open offers on the asset (capacity ledger)")
    market = build_market(0, f"o-{uuid.uuid4().hex[:6]}")
    actor = Actor(
        user=User.objects.get(pk=market["esp_user_id"]),
        organisation=Organisation.objects.get(pk=market["esp_id"]),
    )
    product = Product.objects.select_related("market").get(pk=market["product_id"])
    empty_asset = FlexAsset.objects.get(pk=market["asset_ids"][0])
    loaded_asset = FlexAsset.objects.get(pk=market["asset_ids"][1])

    def submit(asset, count: int, offset: int) -> list[float]:
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            services.offer_submit(
                actor=actor,
                asset=asset,
                product=product,
                ptu_start=market["start"] + ((offset + i) % 80) * ptu.PTU,
                quantities_kw=[1.0, 1.0],
                price=1000 + i,
            )
            latencies.append(time.perf_counter() - started)
        return latencies

    submit(loaded_asset, open_offers, 7)
    submit(empty_asset, 20, 0)  # warm up
    # Interleaved, one offer on each asset in turn, so the machine's load drifts over both samples alike.
    empty, full = [], []
    for i in range(200):
        empty += submit(empty_asset, 1, 13 + i)
        full += submit(loaded_asset, 1, 13 + i)
    ratio = median(full) / median(empty)
    print(
        f"  asset with 0 open offers: p50 {median(empty) * 1000:6.1f} ms; asset with {open_offers} open offers: "
        f"p50 {median(full) * 1000:6.1f} ms  (ratio {ratio:.2f}, target <= 1.2; 200 interleaved submissions each)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resting", default="1000,10000", help="resting offers in the book, comma-separated")
    parser.add_argument("--clients", default="8,32", help="concurrent client processes, comma-separated")
    parser.add_argument("--open-offers", type=int, default=5000)
    parser.add_argument("--api", action="store_true", help="also measure through the API with gunicorn")
    args = parser.parse_args()
    print(f"Database: {setup_django()}")
    print(f"Machine: {os.cpu_count()} CPU(s)")
    service_part(
        [int(n) for n in args.resting.split(",") if n], [int(n) for n in args.clients.split(",") if n]
    )
    offer_part(args.open_offers)
    if args.api:
        from bench.api_load import api_part

        api_part()


if __name__ == "__main__":
    main()
