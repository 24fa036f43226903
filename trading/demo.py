"""Demo market: an auction product, a continuous product and an availability product in Europe/Amsterdam;
cleared sessions with contracts for yesterday and today (and tomorrow after its gate closure), and the next
session whose gate is still open with resting orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

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
