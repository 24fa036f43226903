"""Continuous matching through the services, compared with a simple reference book on random order sequences.

The reference keeps each order's remaining kW per absolute PTU time in a dict and applies the published rules
(price-time priority, resting price, resting minimum quantity, resting all-or-nothing blocks taken whole,
aggressors cancel their rest, no self-trade, TSO eligibility) with plain loops: it shares no code with
trading/clearing/continuous.py or trading/services/matching.py.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.context import Actor
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading import services
from trading.models import Contract, OrderMode, OrderState, Product
from trading.services.capacity import ledger_actual, ledger_expected

EPS = 1e-6


@dataclass
class RefOrder:
    key: int
    side: str  # "buy" (request) or "sell" (offer)
    owner: str
    price: float
    remaining: dict[int, float]
    aggressor: bool
    min_qty: float = 0.0
    aon: bool = False
    tso: bool = False  # request by a TSO, or offer that is TSO-eligible
    state: str = "active"
    fills: dict = field(default_factory=dict)


class ReferenceBook:
    def __init__(self):
        self.orders: list[RefOrder] = []
        self.trades: dict[tuple[int, int], dict[int, tuple[float, float]]] = {}

    def _eligible(self, order: RefOrder) -> list[RefOrder]:
        opposite = [
            o
            for o in self.orders
            if o.side != order.side
            and o.state in ("active", "partially_filled")
            and o.owner != order.owner
            and (o.price <= order.price + EPS if order.side == "buy" else o.price >= order.price - EPS)
            and (o.tso if (order.side == "buy" and order.tso) else True)
            and (not o.tso if (order.side == "sell" and not order.tso) else True)
        ]
        if order.side == "buy":
            return sorted(opposite, key=lambda o: (o.price, o.key))
        return sorted(opposite, key=lambda o: (-o.price, o.key))

    def _plan(self, order: RefOrder, opposite: list[RefOrder], skip: set[int]) -> list[tuple]:
        """(resting, t, kw) fills on a copy of what the order still wants."""
        left = dict(order.remaining)
        plan = []
        for resting in opposite:
            if resting.key in skip:
                continue
            if resting.aon:
                held = {t: kw for t, kw in resting.remaining.items() if kw > EPS}
                if held and all(
                    left.get(t, 0) + EPS >= kw and kw >= resting.min_qty - EPS for t, kw in held.items()
                ):
                    for t, kw in held.items():
                        plan.append((resting, t, kw))
                        left[t] -= kw
                continue
            for t in sorted(left):
                take = min(left[t], resting.remaining.get(t, 0.0))
                if take > EPS and take >= resting.min_qty - EPS:
                    plan.append((resting, t, take))
                    left[t] -= take
        return plan

    def submit(self, order: RefOrder) -> None:
        opposite = self._eligible(order)
        skip: set[int] = set()
        while True:
            plan = self._plan(order, opposite, skip)
            filled: dict[int, float] = {}
            for _, t, kw in plan:
                filled[t] = filled.get(t, 0) + kw
            short = {t for t, kw in filled.items() if kw < order.min_qty - EPS}
            cut = {resting.key for resting, t, _ in plan if resting.aon and t in short}
            if not cut:
                break
            skip |= cut
        kept = [(resting, t, kw) for resting, t, kw in plan if t not in short]
        unfilled = {t: want - sum(kw for _, u, kw in kept if u == t) for t, want in order.remaining.items()}
        if order.aon and any(left > EPS for left in unfilled.values()):
            kept = []  # a block arrives whole or trades nothing
        for resting, t, kw in kept:
            self._fill(order, resting, t, kw)
        for o in (order, *opposite):
            left = sum(o.remaining.values())
            if left <= EPS:
                o.state = "filled"
            elif o.fills:
                o.state = "partially_filled"
        if order.aggressor and sum(order.remaining.values()) > EPS:
            order.state = "cancelled"
        self.orders.append(order)

    def _fill(self, order, resting, t, kw):
        order.remaining[t] = round(order.remaining[t] - kw, 3)
        resting.remaining[t] = round(resting.remaining[t] - kw, 3)
        for o in (order, resting):
            o.fills[t] = o.fills.get(t, 0) + kw
        request, offer = (order, resting) if order.side == "buy" else (resting, order)
        pair = self.trades.setdefault((request.key, offer.key), {})
        previous = pair.get(t, (0.0, resting.price))[0]
        pair[t] = (round(previous + kw, 3), resting.price)


order_spec = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["buy", "sell"]),
        "owner": st.integers(0, 1),
        "start": st.integers(0, 3),
        "quantities": st.lists(st.sampled_from([0, 10, 20, 35, 50]), min_size=1, max_size=3).filter(any),
        "price": st.sampled_from([30, 40, 40, 50, 60]),
        "aggressor": st.booleans(),
        "min_qty": st.sampled_from([0, 0, 0, 15]),
        "aon": st.sampled_from([False, False, True]),
        "tso": st.booleans(),
    }
)


@pytest.fixture
def market(db, dso_org, esp_org, esp2_org, tso_org, dso_user, esp_user, esp2_user, tso_user):
    zone = GridLocationFactory(dso=dso_org)
    product = ProductFactory(clearing_rule=Product.ClearingRule.CONTINUOUS, code="ref", name="Reference")
    session = session_for(product, tomorrow())
    assets = [
        FlexAssetFactory(owner=org, grid_location=zone, max_up_kw=Decimal("100000"))
        for org in (esp_org, esp2_org)
    ]
    sellers = [Actor(user=esp_user, organisation=esp_org), Actor(user=esp2_user, organisation=esp2_org)]
    buyers = [Actor(user=dso_user, organisation=dso_org), Actor(user=tso_user, organisation=tso_org)]
    return {
        "zone": zone,
        "product": product,
        "session": session,
        "assets": assets,
        "sellers": sellers,
        "buyers": buyers,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(order_spec, min_size=1, max_size=10))
def test_service_matches_like_the_reference_book(market, specs):
    session, product, zone = market["session"], market["product"], market["zone"]
    base = session.delivery_start + timedelta(hours=17)
    with transaction.atomic():
        reference = ReferenceBook()
        placed = []
        for key, spec in enumerate(specs):
            start = base + spec["start"] * timedelta(minutes=15)
            mode = OrderMode.AGGRESSOR if spec["aggressor"] else OrderMode.INITIATOR
            if spec["side"] == "buy":
                actor = market["buyers"][spec["owner"]]  # owner 1 is the TSO
                order = services.request_submit(
                    actor=actor,
                    grid_location=zone,
                    product=product,
                    ptu_start=start,
                    quantities_kw=spec["quantities"],
                    price=spec["price"],
                    order_mode=mode,
                )
                tso, min_qty, aon = spec["owner"] == 1, 0.0, False
            else:
                actor = market["sellers"][spec["owner"]]
                min_qty = min(spec["min_qty"], max(spec["quantities"]))
                order = services.offer_submit(
                    actor=actor,
                    asset=market["assets"][spec["owner"]],
                    product=product,
                    ptu_start=start,
                    quantities_kw=spec["quantities"],
                    price=spec["price"],
                    order_mode=mode,
                    min_quantity_kw=min_qty,
                    all_or_nothing=spec["aon"],
                    tso_eligible=spec["tso"],
                )
                tso, aon = spec["tso"], spec["aon"]
            placed.append(order)
            reference.submit(
                RefOrder(
                    key=key,
                    side=spec["side"],
                    owner=f"{spec['side']}{spec['owner']}",
                    price=float(spec["price"]),
                    remaining={spec["start"] + i: float(q) for i, q in enumerate(spec["quantities"])},
                    aggressor=spec["aggressor"],
                    min_qty=float(min_qty),
                    aon=aon,
                    tso=tso,
                )
            )
        keys = {(type(o).__name__, o.pk): i for i, o in enumerate(placed)}
        for order, expected in zip(placed, reference.orders, strict=True):
            order.refresh_from_db()
            start = round((order.ptu_start - base).total_seconds() / 900)
            got = {start + i: kw for i, kw in enumerate(order.remaining_kw)}
            assert got == pytest.approx(expected.remaining), (order, expected)
            state = {
                "partially_filled": "partially_filled",
                "filled": "filled",
                "cancelled": "cancelled",
            }.get(order.state, "active")
            assert state == expected.state
        trades = {}
        for contract in Contract.objects.all():
            request_key = keys[("FlexRequest", contract.request_id)]
            offer_key = keys[("FlexOffer", contract.offer_id)]
            start = round((contract.ptu_start - base).total_seconds() / 900)
            trades[(request_key, offer_key)] = {
                start + i: (kw, float(price))
                for i, (kw, price) in enumerate(zip(contract.quantities_kw, contract.prices, strict=True))
                if kw
            }
        assert trades == reference.trades
        for order in placed:
            assert order.state in (
                OrderState.ACTIVE,
                OrderState.PARTIALLY_FILLED,
                OrderState.FILLED,
                OrderState.CANCELLED,
            )
        assert ledger_actual() == ledger_expected()
        transaction.set_rollback(True)
