"""Factories for markets, products and sessions (delivery windows built with flexmarket.ptu)."""

from datetime import date, timedelta

import factory
from django.utils import timezone

from flexmarket import ptu
from trading.models import Market, MarketSession, Product


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market

    name = factory.Sequence(lambda n: f"Market {n}")
    code = factory.Sequence(lambda n: f"market-{n}")
    time_zone = "Europe/Amsterdam"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    market = factory.SubFactory(MarketFactory)
    name = factory.Sequence(lambda n: f"Congestion up {n}")
    code = factory.Sequence(lambda n: f"up-{n}")
    kind = Product.Kind.ACTIVATION
    direction = "up"
    clearing_rule = Product.ClearingRule.AUCTION_UNIFORM


def session_for(
    product: Product, day: date, *, gate_closure=None, state=MarketSession.State.OPEN
) -> MarketSession:
    start, end = ptu.day_bounds_utc(day, product.market.time_zone)
    return MarketSession.objects.create(
        product=product,
        delivery_day=day,
        delivery_start=start,
        delivery_end=end,
        gate_closure=gate_closure or timezone.now() + timedelta(hours=6),
        state=state,
    )


def tomorrow() -> date:
    return ptu.local_day_of(timezone.now(), "Europe/Amsterdam") + timedelta(days=1)
