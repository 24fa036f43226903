"""Demo market: an auction product, a continuous product and an availability product in Europe/Amsterdam;
cleared sessions with contracts for yesterday and today (and tomorrow after its gate closure), and the next
session whose gate is still open with resting orders. A network-aware product's session for tomorrow is cleared
on Zuidnet's SimBench grid at its forecast evening peak: feeder 1's supply line binds, so the D-LMPs differ on its
two sides (docs/network.md, "Network-aware sessions")."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.context import SYSTEM, Actor
from flexmarket import ptu
from grid.models import FlexAsset, GridLocation
from trading import services
from trading.models import Market, MarketSession, Product


def seed(cast) -> None:
    if Market.objects.filter(code="nl-local").exists():
        return
    market = Market.objects.create(name="NL local flex", code="nl-local", time_zone="Europe/Amsterdam")
    market.grid_locations.set(GridLocation.objects.filter(archived_at__isnull=True))
    auction = Product.objects.create(
        market=market,
        name="Congestion relief (up)",
        code="cm-up",
        baseline_method="high_x_of_y",
        baseline_params={"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
    )
    Product.objects.create(
        market=market,
        name="Intraday congestion (continuous)",
        code="cm-intraday",
        clearing_rule=Product.ClearingRule.CONTINUOUS,
        gate_closure_rule=Product.GateClosureRule.BEFORE_DELIVERY,
        gate_closure_minutes_before=30,
        # NODES-style order rules (docs/trading.md, "Product rules").
        min_quantity_kw=Decimal("1"),
        quantity_step_kw=Decimal("10"),
        price_cap=Decimal("1000"),
        max_duration_ptus=16,
    )
    Product.objects.create(
        market=market,
        name="Evening availability",
        code="avail-evening",
        kind=Product.Kind.AVAILABILITY,
        clearing_rule=Product.ClearingRule.AUCTION_PAY_AS_BID,
    )
    now = timezone.now()
    today = ptu.local_day_of(now, market.time_zone)
    services.sessions_open_ahead(now=now)
    dso_actors = {
        key: Actor(user=cast.users[key], organisation=cast.organisations[key])
        for key in ("dso_north", "dso_south")
    }
    esp_actors = {
        key: Actor(user=cast.users[key], organisation=cast.organisations[key])
        for key in ("esp_flexy", "esp_volt", "esp_heat")
    }
    # Yesterday (delivered: verified and settled by the settlement demo), today, and each later day whose gate
    # has closed were traded before their gate closure and cleared at it; the first day whose gate is still
    # open gets resting orders. Works at any clock time, on DST days too.
    day = today - timedelta(days=1)
    while True:
        session = services.market_session_open(product=auction, day=day)
        if session.gate_closure > now:
            _orders(session, dso_actors, esp_actors, start_hour=18, now=now)
            break
        _orders(session, dso_actors, esp_actors, start_hour=17, now=session.gate_closure - timedelta(hours=2))
        day += timedelta(days=1)
    _network_session(market, cast, now=now)
    for session_id in services.sessions_close_due(now=now):
        services.session_clear(session=MarketSession.objects.get(pk=session_id), actor=SYSTEM, now=now)


def _orders(session, dso_actors, esp_actors, *, start_hour: int, now) -> None:
    start = session.delivery_start + timedelta(hours=start_hour)
    for actor in dso_actors.values():
        for zone in GridLocation.objects.filter(dso=actor.organisation, archived_at__isnull=True).order_by(
            "name"
        )[:2]:
            services.request_submit(
                actor=actor,
                grid_location=zone,
                product=session.product,
                ptu_start=start,
                quantities_kw=[300] * 8,
                price=Decimal("180"),
                now=now,
            )
    for actor in esp_actors.values():
        for index, asset in enumerate(
            FlexAsset.objects.filter(
                owner=actor.organisation, prequalification="approved", max_up_kw__gt=0
            ).order_by("pk")[:6]
        ):
            capability = float(asset.max_up_kw)
            services.offer_submit(
                actor=actor,
                asset=asset,
                product=session.product,
                ptu_start=start,
                quantities_kw=[round(capability * 0.6, 1)] * 8,
                price=Decimal(60 + 15 * index),
                now=now,
            )


# Zuidnet's session on its grid: feeder 1 (the EV evening peak of grid.demo) asks for relief; its one approved asset
# offers dear, feeder 2's assets cheap, and the line feeding feeder 1 limits what can flow in from feeder 2.
NETWORK_HOURS = (20, 22)  # local, within the forecast's evening peak and after the other sessions' orders
NETWORK_REQUEST = ("ean.zuid.f1", 150, Decimal("250"))  # zone, kW per PTU, EUR/MWh
NETWORK_OFFERS = {"ean.zuid.f1": Decimal("150"), "ean.zuid.f2": Decimal("60")}  # zone: price of its offers
# The offers on feeder 1 also offer reactive power: +/- this share of their kW as kVAr, at this EUR/Mvarh.
NETWORK_REACTIVE = {"ean.zuid.f1": (Decimal("0.3"), Decimal("15"))}


def _network_session(market, cast, *, now) -> None:
    """A network-aware product and its session for tomorrow, closed since the start of today (gate closure at
    00:00 on D-1) so it is cleared at every hour, on the day grid.demo forecasts."""
    product = Product.objects.create(
        market=market,
        name="Grid-safe congestion relief (up)",
        code="cm-network",
        network_aware=True,
        gate_closure_local_time=time(0, 0),
        baseline_method="high_x_of_y",
        baseline_params={"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
    )
    day = ptu.local_day_of(now, market.time_zone) + timedelta(days=1)
    session = services.market_session_open(product=product, day=day)
    before_gate = session.gate_closure - timedelta(hours=2)
    local = ZoneInfo(market.time_zone)
    first, last = NETWORK_HOURS
    window = [s for s in ptu.ptu_starts(day, market.time_zone) if first <= s.astimezone(local).hour < last]
    actors = {
        organisation.pk: Actor(user=cast.users[key], organisation=organisation)
        for key, organisation in cast.organisations.items()
    }
    zone_code, kw, price = NETWORK_REQUEST
    zone = GridLocation.objects.get(code=zone_code)
    services.request_submit(
        actor=actors[zone.dso_id],
        grid_location=zone,
        product=product,
        ptu_start=window[0],
        quantities_kw=[kw] * len(window),
        price=price,
        now=before_gate,
    )
    for zone_code, offer_price in NETWORK_OFFERS.items():
        for asset in FlexAsset.objects.filter(
            grid_location__code=zone_code, prequalification="approved", max_up_kw__gt=0
        ).order_by("pk"):
            kw = round(float(asset.max_up_kw) * 0.3, 1)
            reactive = {}
            if zone_code in NETWORK_REACTIVE:
                share, q_price = NETWORK_REACTIVE[zone_code]
                kvar = (Decimal(repr(kw)) * share).quantize(Decimal("0.1"))
                reactive = {"q_min_kvar": -kvar, "q_max_kvar": kvar, "q_price": q_price}
            services.offer_submit(
                actor=actors[asset.owner_id],
                asset=asset,
                product=product,
                ptu_start=window[0],
                quantities_kw=[kw] * len(window),
                price=offer_price,
                now=before_gate,
                **reactive,
            )
