"""Order modes (issue 12 item 6): initiator (rests), aggressor = fill and kill (matches what it can now, the rest is
cancelled), fill or kill (every PTU in full now, or nothing at all)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from flexmarket.errors import DomainError
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading import services
from trading.models import Contract, FlexOffer, FlexRequest, OrderMode, OrderState, Product


@pytest.fixture
def start(continuous_session):
    return continuous_session.delivery_start + timedelta(hours=17)


def _rest_offer(actor_esp, asset, session, start, kw):
    return services.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=kw, price=50
    )


def _request(actor_dso, zone, session, start, kw, mode):
    return services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=kw,
        price=80,
        order_mode=mode,
    )


@pytest.mark.django_db
def test_fill_or_kill_fills_in_full_when_the_book_holds_enough(
    actor_esp, actor_dso, asset, zone, continuous_session, start
):
    offer = _rest_offer(actor_esp, asset, continuous_session, start, [60, 60])
    request = _request(actor_dso, zone, continuous_session, start, [50, 40], OrderMode.FILL_OR_KILL)
    request.refresh_from_db()
    assert request.state == OrderState.FILLED and request.remaining_kw == [0, 0]
    assert Contract.objects.get().quantities_kw == [50, 40]
    offer.refresh_from_db()
    assert offer.remaining_kw == [10, 20]


@pytest.mark.django_db
def test_fill_or_kill_trades_nothing_when_one_ptu_falls_short(
    actor_esp, actor_dso, asset, zone, continuous_session, start
):
    offer = _rest_offer(actor_esp, asset, continuous_session, start, [60, 30])
    request = _request(actor_dso, zone, continuous_session, start, [50, 40], OrderMode.FILL_OR_KILL)
    request.refresh_from_db()
    assert request.state == OrderState.CANCELLED and "Fill or kill" in request.state_reason
    assert not Contract.objects.exists()
    offer.refresh_from_db()
    assert offer.remaining_kw == [60, 30] and offer.state == OrderState.ACTIVE


@pytest.mark.django_db
def test_fill_and_kill_takes_what_is_there_and_cancels_the_rest(
    actor_esp, actor_dso, asset, zone, continuous_session, start
):
    _rest_offer(actor_esp, asset, continuous_session, start, [60, 30])
    request = _request(actor_dso, zone, continuous_session, start, [50, 40], OrderMode.AGGRESSOR)
    request.refresh_from_db()
    assert request.state == OrderState.CANCELLED and request.remaining_kw == [0, 10]
    assert Contract.objects.get().quantities_kw == [50, 30]


@pytest.mark.django_db
def test_a_fill_or_kill_offer_releases_its_capacity_when_killed(
    actor_esp, actor_dso, asset, zone, continuous_session, start
):
    from trading.services.capacity import ledger_reserved

    _request(actor_dso, zone, continuous_session, start, [20], OrderMode.INITIATOR)
    offer = services.offer_submit(
        actor=actor_esp,
        asset=asset,
        product=continuous_session.product,
        ptu_start=start,
        quantities_kw=[30],
        price=50,
        order_mode=OrderMode.FILL_OR_KILL,
    )
    offer.refresh_from_db()
    assert offer.state == OrderState.CANCELLED and not Contract.objects.exists()
    held = ledger_reserved(asset_ids=[asset.pk], direction=offer.direction, start=start, n=1)
    assert held[asset.pk].tolist() == [0.0]


@pytest.mark.django_db
def test_a_product_without_aggressor_orders_refuses_fill_or_kill(actor_dso, zone):
    product = ProductFactory(
        name="Resting only", clearing_rule=Product.ClearingRule.CONTINUOUS, accepts_aggressor_orders=False
    )
    session = session_for(product, tomorrow())
    with pytest.raises(DomainError) as refused:
        _request(actor_dso, zone, session, session.delivery_start, [10], OrderMode.FILL_OR_KILL)
    assert refused.value.code == "product_rule" and refused.value.field == "order_mode"
    assert not FlexRequest.objects.exists()


@pytest.mark.django_db
def test_the_api_takes_fill_or_kill(client_for, esp_user, actor_dso, zone, asset, continuous_session, start):
    _request(actor_dso, zone, continuous_session, start, [20], OrderMode.INITIATOR)
    body = {
        "asset": asset.pk,
        "product": continuous_session.product_id,
        "ptu_start": start.isoformat(),
        "quantities_kw": [20],
        "price": str(Decimal("45")),
        "order_mode": "fill_or_kill",
    }
    response = client_for(esp_user).post("/api/v1/flex-offers/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["order_mode"] == "fill_or_kill" and response.json()["state"] == "filled"
    assert FlexOffer.objects.get().state == OrderState.FILLED
