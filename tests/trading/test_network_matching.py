"""Continuous trading on a network-aware product: every match is checked against the DSO's network first (GOPACS'
grid-safety check, issue 11 items 4 and 6). The feeder of test_network_sessions: line 1 (bus 1 -> 2) has 20 kW of
room; the zone holds buses 1 and 2, so a request takes its kW half at each. An offer at bus 1 pushes half its kW
more over line 1 (refused above 40 kW); an offer at bus 2 relieves it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Notification
from tests.grid.factories import GridLocationFactory
from tests.trading import test_network_sessions as feeder_case
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_services import offer, request
from trading.models import Contract, FlexOffer, OrderMode, OrderState, Product

PTU = 68
# The feeder and its two offers' assets (bus 1, bus 2), as the network-aware sessions test builds them.
feeder = feeder_case.feeder
offers_at_buses = feeder_case.offers_at_buses


def continuous(network_aware: bool) -> Product:
    return ProductFactory(clearing_rule=Product.ClearingRule.CONTINUOUS, network_aware=network_aware)


def evening(product):
    session = session_for(product, tomorrow())
    return session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96


def book(product, actors, assets, start):
    """Resting: 100 kW at 50 EUR/MWh at bus 1 (cheap), 100 kW at 150 at bus 2 (dear)."""
    _, actor_esp, actor_esp2 = actors
    return (
        offer(actor_esp, assets[0], product, start, qty=(100,), price=50),
        offer(actor_esp2, assets[1], product, start, qty=(100,), price=150),
    )


@pytest.mark.django_db
def test_a_match_that_would_overload_a_line_is_refused_and_the_aggressor_takes_the_next_offer(
    actor_dso,
    actor_esp,
    actor_esp2,
    zone,
    feeder,
    offers_at_buses,
):
    actors = (actor_dso, actor_esp, actor_esp2)
    plain = continuous(False)
    start = evening(plain)
    book(plain, actors, offers_at_buses, start)
    taken = request(actor_dso, zone, plain, start, qty=(100,), price=200, order_mode=OrderMode.AGGRESSOR)
    assert [c.offer.price for c in Contract.objects.filter(request=taken)] == [Decimal("50.0000")]

    aware = continuous(True)
    start = evening(aware)
    cheap, dear = book(aware, actors, offers_at_buses, start)
    order = request(actor_dso, zone, aware, start, qty=(100,), price=200, order_mode=OrderMode.AGGRESSOR)
    contracts = list(Contract.objects.filter(request=order))
    assert [(c.offer_id, c.quantities_kw, c.prices) for c in contracts] == [(dear.pk, [100.0], ["150.0000"])]
    order.refresh_from_db()
    cheap.refresh_from_db()
    assert order.state == OrderState.FILLED
    assert (
        f"offer #{cheap.pk}: line 1 at 17:00 CE" in order.state_reason
        and "% of its limit" in order.state_reason
    )
    assert cheap.state == OrderState.ACTIVE and cheap.remaining_kw == [100.0]  # untouched, still in the book
    told = Notification.objects.get(organisation=actor_esp.organisation, title__contains="grid-safety check")
    assert f"offer #{cheap.pk} was not matched with request #{order.pk}" in told.title


@pytest.mark.django_db
def test_contracts_already_made_count_in_the_check(
    actor_dso,
    actor_esp,
    actor_esp2,
    zone,
    feeder,
    offers_at_buses,
):
    product = continuous(True)
    start = evening(product)
    cheap, dear = book(product, (actor_dso, actor_esp, actor_esp2), offers_at_buses, start)
    first = request(actor_dso, zone, product, start, qty=(30,), price=200, order_mode=OrderMode.AGGRESSOR)
    assert [c.offer_id for c in Contract.objects.filter(request=first)] == [
        cheap.pk
    ]  # +15 kW on line 1: safe
    second = request(actor_dso, zone, product, start, qty=(30,), price=200, order_mode=OrderMode.AGGRESSOR)
    # Another 15 kW from bus 1 would put line 1 10 kW over its limit: the second request goes to bus 2.
    assert [c.offer_id for c in Contract.objects.filter(request=second)] == [dear.pk]


@pytest.mark.django_db
def test_an_offer_hitting_a_request_is_checked_too_and_rests_with_the_reason(
    actor_dso,
    actor_esp,
    zone,
    feeder,
    offers_at_buses,
):
    product = continuous(True)
    start = evening(product)
    wanted = request(actor_dso, zone, product, start, qty=(100,), price=200)
    posted = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    posted.refresh_from_db()
    assert not Contract.objects.exists()
    assert posted.state == OrderState.ACTIVE and "Grid-safety check refused" in posted.state_reason
    assert Notification.objects.filter(
        organisation=actor_dso.organisation, title__contains=f"#{wanted.pk}"
    ).exists()


@pytest.mark.django_db
def test_without_a_network_for_the_zone_a_network_aware_product_does_not_trade(
    actor_dso,
    actor_esp,
    actor_esp2,
    dso_org,
    feeder,
    offers_at_buses,
):
    other_zone = GridLocationFactory(dso=dso_org)  # no buses mapped to it
    product = continuous(True)
    start = evening(product)
    from tests.grid.factories import FlexAssetFactory

    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=other_zone)
    offer(actor_esp, asset, product, start, qty=(100,), price=50)
    order = request(
        actor_dso, other_zone, product, start, qty=(50,), price=200, order_mode=OrderMode.AGGRESSOR
    )
    order.refresh_from_db()
    assert not Contract.objects.exists() and order.state == OrderState.CANCELLED
    assert (
        "no grid-safety check possible" in order.state_reason and "Zone and asset buses" in order.state_reason
    )
    assert FlexOffer.objects.get(asset=asset).remaining_kw == [100.0]


@pytest.mark.django_db
def test_fills_of_one_aggressor_add_up_in_the_check(
    actor_dso,
    actor_esp,
    actor_esp2,
    esp_org,
    zone,
    feeder,
    offers_at_buses,
):
    from grid import services as grid_services
    from tests.grid.factories import FlexAssetFactory

    second_cheap = FlexAssetFactory(owner=esp_org, grid_location=zone)
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=second_cheap, bus_index=1)
    product = continuous(True)
    start = evening(product)
    first = offer(actor_esp, offers_at_buses[0], product, start, qty=(30,), price=50)
    second = offer(actor_esp, second_cheap, product, start, qty=(30,), price=60)
    dear = offer(actor_esp2, offers_at_buses[1], product, start, qty=(100,), price=150)
    order = request(actor_dso, zone, product, start, qty=(60,), price=200, order_mode=OrderMode.AGGRESSOR)
    # 30 kW from bus 1 is +15 kW on line 1; the next 30 kW from bus 1 would make it +30 (limit +20): bus 2 instead.
    taken = {c.offer_id: c.quantities_kw for c in Contract.objects.filter(request=order)}
    assert taken == {first.pk: [30.0], dear.pk: [30.0]}
    order.refresh_from_db()
    assert f"offer #{second.pk}: line 1" in order.state_reason


@pytest.mark.django_db
def test_a_match_reads_and_linearises_the_network_once_however_many_orders_it_refuses(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses, monkeypatch
):
    from trading.services import network_clearing

    calls = []
    linearise = network_clearing.network_linearise_day

    def counted(**kwargs):
        calls.append(kwargs["ptu_starts"])
        return linearise(**kwargs)

    monkeypatch.setattr(network_clearing, "network_linearise_day", counted)
    product = continuous(True)
    start = evening(product)
    cheap, dear = book(product, (actor_dso, actor_esp, actor_esp2), offers_at_buses, start)
    order = request(actor_dso, zone, product, start, qty=(100,), price=200, order_mode=OrderMode.AGGRESSOR)
    # The cheap offer is refused, the match is redone and takes the dear one: one linearisation of the PTU.
    assert [c.offer_id for c in Contract.objects.filter(request=order)] == [dear.pk]
    assert calls == [[start]]
