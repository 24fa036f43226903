"""A cleared contract for 100 kW up at 17:00–18:00 local on a weekday, with 30 days of flat 200 kW history."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
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


@pytest.fixture
def settled_setup(dso_org, esp_org, actor_dso, actor_esp, fmo_org):
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
