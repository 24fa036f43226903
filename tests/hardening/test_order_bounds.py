"""Every quantity and price is bounded at the door (issue 15, item 1): `quantities_kw: [1e308, 1e308]`
was accepted and then made the whole auction fail for everyone."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.context import SYSTEM
from flexmarket.errors import DomainError
from tests.grid.factories import FlexAssetFactory
from trading import services
from trading.models import ClearingRun, Contract, FlexRequest, MarketSession

pytestmark = pytest.mark.django_db


def request(actor, zone, session, start, quantities, price=150):
    return services.request_submit(
        actor=actor,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=quantities,
        price=price,
    )


@pytest.mark.parametrize("quantity", [1e308, float("inf"), float("nan"), -1, "1e400", "abc", None])
def test_absurd_quantities_are_refused(quantity, actor_dso, zone, session, ptu17):
    with pytest.raises(DomainError) as caught:
        request(actor_dso, zone, session, ptu17, [quantity, 10])
    assert caught.value.field == "quantities_kw"


def test_quantity_ceiling_is_a_setting(settings, actor_dso, zone, session, ptu17):
    settings.FLEXMARKET_ORDER_MAX_KW = "1000"
    assert request(actor_dso, zone, session, ptu17, [1000]).quantities_kw == [1000]
    with pytest.raises(DomainError) as caught:
        request(actor_dso, zone, session, ptu17, [1000.001])
    assert "1,000 kW" in caught.value.message


def test_an_order_spans_at_most_one_delivery_day(actor_dso, zone, session, ptu17):
    with pytest.raises(DomainError) as caught:
        request(actor_dso, zone, session, ptu17, [1] * 101)
    assert "At most 100 PTUs" in caught.value.message


def test_price_ceiling_is_a_setting(settings, actor_dso, zone, session, ptu17):
    settings.FLEXMARKET_ORDER_MAX_PRICE = "500"
    request(actor_dso, zone, session, ptu17, [10], price="500")
    with pytest.raises(DomainError) as caught:
        request(actor_dso, zone, session, ptu17, [10], price="500.01")
    assert caught.value.field == "price"


def test_a_buyer_requests_at_most_the_zone_ceiling_per_ptu(
    settings, actor_dso, actor_tso, zone, session, ptu17
):
    settings.FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU = "300"
    request(actor_dso, zone, session, ptu17, [200, 200])
    with pytest.raises(DomainError) as caught:
        request(actor_dso, zone, session, ptu17, [50, 150])
    assert caught.value.field == "quantities_kw" and "300 kW" in caught.value.message
    request(actor_dso, zone, session, ptu17 + timedelta(minutes=15), [100])  # 200 + 100 = 300: allowed
    request(actor_tso, zone, session, ptu17, [300])  # another buyer has its own ceiling
    assert FlexRequest.objects.count() == 3


def test_a_cancelled_request_frees_the_zone_ceiling(settings, actor_dso, zone, session, ptu17):
    settings.FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU = "300"
    first = request(actor_dso, zone, session, ptu17, [300])
    services.order_cancel(actor=actor_dso, order=first)
    request(actor_dso, zone, session, ptu17, [300])


def test_offer_minimum_is_bounded(actor_esp, asset, session, ptu17):
    with pytest.raises(DomainError) as caught:
        services.offer_submit(
            actor=actor_esp,
            asset=asset,
            product=session.product,
            ptu_start=ptu17,
            quantities_kw=[10],
            price=50,
            min_quantity_kw="1e308",
        )
    assert caught.value.field == "min_quantity_kw"


def test_the_largest_orders_the_door_accepts_still_clear(
    settings, actor_dso, actor_esp, esp_org, zone, session, ptu17
):
    """The worst case a participant can post (ceiling kW in every PTU of the day at the ceiling price) is a
    number the auction clears: the limits keep every order inside what the clearing and the columns hold."""
    ceiling = int(Decimal(settings.FLEXMARKET_ORDER_MAX_KW))
    big = FlexAssetFactory(
        owner=esp_org, grid_location=zone, max_up_kw=Decimal(ceiling), max_down_kw=Decimal(ceiling)
    )
    day = [ceiling] * int((session.delivery_end - session.delivery_start) / timedelta(minutes=15))
    services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=session.delivery_start,
        quantities_kw=day,
        price=settings.FLEXMARKET_ORDER_MAX_PRICE,
    )
    services.offer_submit(
        actor=actor_esp,
        asset=big,
        product=session.product,
        ptu_start=session.delivery_start,
        quantities_kw=day,
        price="0.0001",
    )
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLOSED)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == ClearingRun.State.SUCCEEDED
    assert Contract.objects.get().quantities_kw == day
