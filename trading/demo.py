"""Demo market: an auction product, a continuous product and an availability product in Europe/Amsterdam;
open sessions for the next days with resting orders, and a cleared session (today) with contracts."""

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

    # A session for today, traded "yesterday" and cleared at its gate closure.
    cleared = services.market_session_open(product=auction, day=today)
    MarketSession.objects.filter(pk=cleared.pk).update(
        gate_closure=now + timedelta(hours=1), state=MarketSession.State.OPEN
    )
    cleared.refresh_from_db()
    _orders(cleared, dso_actors, esp_actors, cast, start_hour=17, now=now)
    MarketSession.objects.filter(pk=cleared.pk).update(
        gate_closure=now - timedelta(minutes=1), state=MarketSession.State.CLOSED
    )
    services.session_clear(session=cleared, actor=SYSTEM)

    # Tomorrow: resting requests and offers waiting for gate closure.
    tomorrow = MarketSession.objects.get(product=auction, delivery_day=today + timedelta(days=1))
    _orders(tomorrow, dso_actors, esp_actors, cast, start_hour=18, now=now)


def _orders(session, dso_actors, esp_actors, cast, *, start_hour: int, now) -> None:
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
