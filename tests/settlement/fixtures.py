"""A cleared contract for 100 kW up at 17:00–18:00 local on a weekday, traded two days before delivery."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from accounts.context import SYSTEM
from flexmarket import ptu
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory
from trading import services as trading
from trading.models import Contract, MarketSession

DELIVERY_DAY = date(2026, 6, 10)  # a Wednesday
TZ = "Europe/Amsterdam"


def meter_csv(asset, day: date, kw_for_index, days=1) -> bytes:
    lines = ["asset_ean,ptu_start,kw"]
    for d in range(days):
        current = day + timedelta(days=d)
        for index, start in enumerate(ptu.ptu_starts(current, TZ)):
            lines.append(f"{asset.connection_ean},{start.isoformat()},{kw_for_index(current, index)}")
    return ("\n".join(lines) + "\n").encode()


TRADED_AT = datetime(2026, 6, 8, 10, 0, tzinfo=ZoneInfo(TZ))  # before the gate closure of DELIVERY_DAY


@pytest.fixture
def settled_setup(dso_org, esp_org, actor_dso, actor_esp, fmo_org):
    with time_machine.travel(TRADED_AT, tick=False):
        return _cleared_contract(dso_org, esp_org, actor_dso, actor_esp)


def _cleared_contract(dso_org, esp_org, actor_dso, actor_esp):
    zone = GridLocationFactory(dso=dso_org)
    asset = FlexAssetFactory(
        owner=esp_org, grid_location=zone, max_up_kw=Decimal("300"), max_down_kw=Decimal("300")
    )
    product = ProductFactory(
        baseline_method="high_x_of_y",
        baseline_params={"x": 5, "y": 10},
        delivery_tolerance=Decimal("0.10"),
        penalty_factor=Decimal("0.5"),
        fee_eur_per_mwh=Decimal("1.00"),
    )
    start, end = ptu.day_bounds_utc(DELIVERY_DAY, TZ)
    session = MarketSession.objects.create(
        product=product,
        delivery_day=DELIVERY_DAY,
        delivery_start=start,
        delivery_end=end,
        gate_closure=timezone.now() + timedelta(days=1),
    )
    first = start + timedelta(hours=17)
    trading.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=product,
        ptu_start=first,
        quantities_kw=[100] * 4,
        price=200,
    )
    trading.offer_submit(
        actor=actor_esp, asset=asset, product=product, ptu_start=first, quantities_kw=[100] * 4, price=80
    )
    MarketSession.objects.filter(pk=session.pk).update(state="closed", gate_closure=timezone.now())
    trading.session_clear(session=session, actor=SYSTEM)
    return {"asset": asset, "contract": Contract.objects.get(), "product": product, "session": session}


def make_contract(
    *,
    product,
    day: date,
    seller_asset=None,
    portfolio=None,
    buyer,
    start_index: int = 68,
    quantities_kw=(100, 100, 100, 100),
    price="80",
    state=Contract.State.ACTIVE,
):
    """A contract written directly (as a clearing would), so settlement tests do not depend on the order book."""
    from trading.models import FlexOffer, FlexRequest

    tz = product.market.time_zone
    start, end = ptu.day_bounds_utc(day, tz)
    session, _ = MarketSession.objects.get_or_create(
        product=product,
        delivery_day=day,
        defaults={
            "delivery_start": start,
            "delivery_end": end,
            "gate_closure": start - timedelta(hours=12),
            "state": MarketSession.State.CLEARED,
        },
    )
    backing = seller_asset or portfolio
    first = start + start_index * ptu.PTU
    common = {
        "grid_location": backing.grid_location,
        "product": product,
        "session": session,
        "direction": product.direction,
        "ptu_start": first,
        "quantities_kw": list(quantities_kw),
        "remaining_kw": [0] * len(quantities_kw),
        "price": Decimal(price),
        "state": "filled",
    }
    request = FlexRequest.objects.create(owner=buyer, **common)
    offer = FlexOffer.objects.create(owner=backing.owner, asset=seller_asset, portfolio=portfolio, **common)
    return Contract.objects.create(
        reference=f"T-{day:%Y%m%d}-{Contract.objects.count() + 1:05d}",
        session=session,
        request=request,
        offer=offer,
        buyer=buyer,
        seller=backing.owner,
        grid_location=backing.grid_location,
        product=product,
        direction=product.direction,
        ptu_start=first,
        quantities_kw=list(quantities_kw),
        prices=[str(price)] * len(quantities_kw),
        state=state,
    )


def readings_csv(asset, first_day: date, days: int, kw_for) -> bytes:
    """Readings of `days` local days from `first_day`; kw_for(day, index) gives the kW (None: no reading)."""
    lines = ["asset_ean,ptu_start,kw"]
    for d in range(days):
        current = first_day + timedelta(days=d)
        for index, start in enumerate(ptu.ptu_starts(current, TZ)):
            kw = kw_for(current, index)
            if kw is not None:
                lines.append(f"{asset.connection_ean},{start.isoformat()},{kw}")
    return ("\n".join(lines) + "\n").encode()
