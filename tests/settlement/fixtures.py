"""Shared settlement fixtures: a contract cleared through trading (`settled_setup`), a zone, asset and product
(`world`) with contracts written directly (`make_contract`), and meter data and settlement helpers."""

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from accounts.context import SYSTEM
from flexmarket import ptu
from settlement import services
from settlement.models import SettlementStatement
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


@pytest.fixture
def world(dso_org, esp_org):
    zone = GridLocationFactory(dso=dso_org)
    asset = FlexAssetFactory(
        owner=esp_org,
        grid_location=zone,
        max_up_kw=Decimal("3000"),
        max_down_kw=Decimal("3000"),
        created_at=datetime(2026, 1, 5, tzinfo=ZoneInfo(TZ)),
    )
    product = ProductFactory(
        baseline_method="high_x_of_y",
        baseline_params={"x": 5, "y": 10},
        delivery_tolerance=Decimal("0.10"),
        penalty_factor=Decimal("0.5"),
        fee_eur_per_mwh=Decimal("1.00"),
    )
    return {"zone": zone, "asset": asset, "product": product, "dso": dso_org, "esp": esp_org}


def upload(actor, data: bytes):
    return services.meter_upload_csv(actor=actor, file=io.BytesIO(data), filename="m.csv")


def flat_history_and_day(actor, asset, day: date, delivered_kw: float, *, days=30, event=range(68, 72)):
    """`days` days of flat 200 kW before `day`, then `day` at 200 kW except the event PTUs at 200 − delivered."""
    upload(actor, readings_csv(asset, day - timedelta(days=days), days, lambda d, i: 200))
    upload(actor, readings_csv(asset, day, 1, lambda d, i: 200 - delivered_kw if i in event else 200))


def settle(actor_fmo, start: date, end: date, *, name="P", reason=""):
    period = services.period_create(actor=actor_fmo, name=name, start=start, end=end)
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    return services.period_lock(actor=actor_fmo, period=period, override_reason=reason)


def totals(period) -> dict[int, Decimal]:
    result: dict[int, Decimal] = {}
    for statement in SettlementStatement.objects.filter(period=period):
        result[statement.organisation_id] = (
            result.get(statement.organisation_id, Decimal(0)) + statement.total_eur
        )
    return result
