"""The clearing's write, built from the result arrays, against a row-by-row reference on random results.

The references are the per-trade and per-order loops the write used before it was vectorised: contracts summed
per (request, offer) pair and PTU in trade order, a pair's price on a PTU its last trade's there, references
numbered in (request, offer) order; each order's remaining what the clearing left of its gate-closure
quantities (three decimals), filled when nothing is left, else expired with a reason.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.clearing.auction import AuctionResult, Trades
from trading.models import Contract, OrderState
from trading.services.auction import _contracts, _order_updates

START = datetime(2027, 1, 12, 23, 0, tzinfo=UTC)
N_PTUS = 8
PTU = timedelta(minutes=15)


def fake_session():
    return SimpleNamespace(
        pk=3,
        product_id=5,
        product=SimpleNamespace(direction="up"),
        delivery_start=START,
        delivery_end=START + N_PTUS * PTU,
    )


def fake_order(pk, offset, gate, state=OrderState.ACTIVE):
    return SimpleNamespace(
        pk=pk,
        owner_id=100 + pk,
        grid_location_id=200 + pk % 3,
        ptu_start=START + offset * PTU,
        gate_remaining_kw=gate,
        remaining_kw=gate,
        state=state,
    )


def reference_contracts(run, session, trades, offers, requests, now):
    pairs = {}
    for r, o, t, kw, price in zip(
        trades.request_idx.tolist(),
        trades.offer_idx.tolist(),
        trades.ptu.tolist(),
        trades.kw.tolist(),
        trades.price.tolist(),
        strict=True,
    ):
        quantities, prices = pairs.setdefault((r, o), (np.zeros(N_PTUS), ["0"] * N_PTUS))
        quantities[t] += kw
        prices[t] = f"{Decimal(repr(price)).quantize(Decimal('0.0001'))}"
    rows = []
    for number, ((r, o), (quantities, prices)) in enumerate(sorted(pairs.items()), start=1):
        request, offer = requests[r], offers[o]
        rows.append(
            (
                f"FM-{now:%Y%m%d}-R{run.pk}-{number:05d}",
                session.pk,
                run.pk,
                request.pk,
                offer.pk,
                request.owner_id,
                offer.owner_id,
                request.grid_location_id,
                session.product_id,
                "up",
                session.delivery_start,
                np.round(quantities, 3).tolist(),
                prices,
                [],  # no reactive power in a plain clearing
                [],
                Contract.State.ACTIVE,
                now,
            )
        )
    return rows


def reference_updates(orders, session, alloc):
    updates = []
    for i, order in enumerate(orders):
        offset = int((order.ptu_start - session.delivery_start) / PTU)
        gate = np.asarray(order.gate_remaining_kw, dtype=float)
        cleared = alloc[i, offset : offset + gate.size]
        remaining = np.round(np.maximum(gate - cleared, 0), 3)
        if remaining.sum() <= 1e-6:
            state, reason = OrderState.FILLED, ""
        elif cleared.sum() > 1e-6:
            state, reason = (
                OrderState.EXPIRED,
                f"Partly cleared ({cleared.sum() / 4:g} kWh); the rest expired at gate closure",
            )
        else:
            state, reason = OrderState.EXPIRED, "Not cleared at gate closure"
        updates.append((order.pk, order.state, remaining.tolist(), state, reason))
    return updates


kw_values = st.sampled_from([0.0, 0.0004, 0.0005, 1.0, 2.5, 10.1235, 33.3333, 100.0])
prices = st.sampled_from([0.0, 12.5, 40.00005, 55.12345, 60.0, 1e-05])


@st.composite
def cleared_sessions(draw):
    n_offers, n_requests = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    trade_rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_requests - 1),
                st.integers(0, n_offers - 1),
                st.integers(0, N_PTUS - 1),
                kw_values,
                prices,
            ),
            max_size=25,
        )
    )
    offers = []
    alloc = np.zeros((n_offers, N_PTUS))
    for o in range(n_offers):
        offset = draw(st.integers(0, N_PTUS - 1))
        gate = draw(st.lists(kw_values, min_size=1, max_size=N_PTUS - offset))
        offers.append(fake_order(10 + o, offset, gate))
        cleared = draw(
            st.lists(st.sampled_from([0.0, 0.25, 1.0, 1.0000004]), min_size=len(gate), max_size=len(gate))
        )
        alloc[o, offset : offset + len(gate)] = np.minimum(np.array(cleared) * np.array(gate), gate)
    requests = [fake_order(50 + r, 0, [1.0] * N_PTUS) for r in range(n_requests)]
    columns = list(zip(*trade_rows, strict=True)) if trade_rows else [[], [], [], [], []]
    trades = Trades(
        np.array(columns[0], dtype=int),
        np.array(columns[1], dtype=int),
        np.array(columns[2], dtype=int),
        np.array(columns[3], dtype=float),
        np.array(columns[4], dtype=float),
    )
    result = AuctionResult(
        "optimal", 0.0, alloc, np.zeros((n_requests, N_PTUS)), np.zeros((1, N_PTUS)), trades
    )
    return offers, requests, result


@settings(max_examples=200, deadline=None)
@given(cleared_sessions())
def test_contract_rows_equal_the_per_trade_reference(cleared):
    offers, requests, result = cleared
    run, session = SimpleNamespace(pk=9), fake_session()
    rows, pair_offer, bought = _contracts(
        run=run, session=session, result=result, offers=offers, requests=requests
    )
    now = rows[0][-1] if rows else None
    assert rows == reference_contracts(run, session, result.trades, offers, requests, now)
    assert [offers[o].pk for o in pair_offer.tolist()] == [row[4] for row in rows]
    assert bought.tolist() == [row[11] for row in rows]


@settings(max_examples=200, deadline=None)
@given(cleared_sessions())
def test_order_updates_equal_the_per_order_reference(cleared):
    offers, _requests, result = cleared
    session = fake_session()
    assert _order_updates(offers, session, N_PTUS, result.offer_alloc) == reference_updates(
        offers, session, result.offer_alloc
    )


def test_a_pair_trading_twice_on_a_ptu_sums_its_kw_and_keeps_the_last_price():
    offers = [fake_order(10, 0, [5.0] * N_PTUS)]
    requests = [fake_order(50, 0, [5.0] * N_PTUS)]
    trades = Trades(
        np.array([0, 0, 0]),
        np.array([0, 0, 0]),
        np.array([2, 2, 3]),
        np.array([1.0, 2.5, 4.0]),
        np.array([40.0, 41.23456, 50.0]),
    )
    result = AuctionResult(
        "optimal", 0.0, np.zeros((1, N_PTUS)), np.zeros((1, N_PTUS)), np.zeros((1, N_PTUS)), trades
    )
    (row,), _, _ = _contracts(
        run=SimpleNamespace(pk=9), session=fake_session(), result=result, offers=offers, requests=requests
    )
    assert row[11] == [0.0, 0.0, 3.5, 4.0, 0.0, 0.0, 0.0, 0.0]
    assert row[12] == ["0", "0", "41.2346", "50.0000", "0", "0", "0", "0"]


@pytest.mark.django_db
def test_capacity_ledger_pages_keep_room_for_heap_only_updates():
    """Migration trading 0013: on PostgreSQL the ledger's pages are filled to 70 %, so a clearing's many
    changes to reserved kW can stay on their page without new index entries."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL storage parameter")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'trading_capacityreservation'")
        assert cursor.fetchone()[0] == ["fillfactor=70"]


def test_loaded_order_parses_its_remaining_once_and_its_quantities_only_when_read():
    from trading.services.auction import _row

    order = _row(
        {"pk": 1, "gate_text": "[1.5, 2]", "remaining_text": "[1.5, 2]", "quantities_text": "[3, 4]"}
    )
    assert order.gate_remaining_kw == [1.5, 2] and order.remaining_kw == [1.5, 2]
    assert order.remaining_kw is not order.gate_remaining_kw
    assert "quantities_kw" not in vars(order)
    assert order.quantities_kw == [3, 4] and vars(order)["quantities_kw"] == [3, 4]
    changed = _row({"pk": 2, "gate_text": "[1.5]", "remaining_text": "[0.5]", "quantities_text": "[2]"})
    assert changed.gate_remaining_kw == [1.5] and changed.remaining_kw == [0.5]
