import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.clearing.continuous import Aggressor, RestingOrder, match_aggressor


def resting(order_id, price, seq, qty, min_qty=0.0, aon=False):
    return RestingOrder(order_id, price, seq, np.array(qty, dtype=float), min_qty, aon)


def test_buy_aggressor_takes_cheapest_then_oldest_at_resting_prices():
    book = [resting(1, 60, 2, [50]), resting(2, 40, 3, [30]), resting(3, 60, 1, [50])]
    fills = match_aggressor(Aggressor("buy", 70, np.array([100.0])), book)
    assert [(f.order_id, f.kw, f.price) for f in fills] == [(2, 30, 40), (3, 50, 60), (1, 20, 60)]


def test_sell_aggressor_takes_highest_request_first():
    book = [resting(1, 80, 1, [10]), resting(2, 120, 2, [10]), resting(3, 50, 3, [10])]
    fills = match_aggressor(Aggressor("sell", 60, np.array([25.0])), book)
    assert [(f.order_id, f.kw) for f in fills] == [(2, 10), (1, 10)]


def test_price_limit_excludes_resting_orders():
    assert match_aggressor(Aggressor("buy", 30, np.array([10.0])), [resting(1, 40, 1, [10])]) == []


def test_resting_minimum_quantity_is_respected():
    fills = match_aggressor(
        Aggressor("buy", 100, np.array([20.0])),
        [resting(1, 10, 1, [100], min_qty=50), resting(2, 20, 2, [100])],
    )
    assert [(f.order_id, f.kw) for f in fills] == [(2, 20)]


def test_aggressor_minimum_per_ptu():
    fills = match_aggressor(
        Aggressor("buy", 100, np.array([50.0, 50.0]), min_qty=40), [resting(1, 10, 1, [30, 50])]
    )
    assert [(f.ptu, f.kw) for f in fills] == [(1, 50)]


def test_all_or_nothing_aggressor_fills_fully_or_not_at_all():
    book = [resting(1, 10, 1, [50, 20])]
    assert match_aggressor(Aggressor("buy", 100, np.array([50.0, 50.0]), all_or_nothing=True), book) == []
    assert len(match_aggressor(Aggressor("buy", 100, np.array([50.0, 20.0]), all_or_nothing=True), book)) == 2


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 100), st.lists(st.sampled_from([0, 5, 20, 50]), min_size=3, max_size=3)),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.sampled_from([0, 10, 30, 80]), min_size=3, max_size=3),
    st.integers(1, 100),
)
def test_never_over_allocates(book_spec, wanted, limit):
    book = [resting(i, price, i, qty) for i, (price, qty) in enumerate(book_spec)]
    fills = match_aggressor(Aggressor("buy", limit, np.array(wanted, dtype=float)), book)
    for ptu in range(3):
        assert sum(f.kw for f in fills if f.ptu == ptu) <= wanted[ptu] + 1e-9
    for order in book:
        for ptu in range(3):
            assert (
                sum(f.kw for f in fills if f.order_id == order.order_id and f.ptu == ptu)
                <= order.remaining[ptu] + 1e-9
            )
    assert all(f.price <= limit for f in fills)


def test_all_or_nothing_aggressor_below_its_own_minimum_in_a_ptu_gets_nothing():
    book = [resting(1, 10, 1, [50, 50])]
    aggressor = Aggressor("buy", 100, np.array([50.0, 10.0]), min_qty=20, all_or_nothing=True)
    assert match_aggressor(aggressor, book) == []


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 100),
            st.lists(st.sampled_from([0, 5, 20, 50]), min_size=2, max_size=2),
            st.sampled_from([0, 0, 10, 30]),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.sampled_from([0, 10, 30, 80]), min_size=2, max_size=2),
    st.sampled_from([0, 0, 15, 40]),
    st.booleans(),
    st.sampled_from(["buy", "sell"]),
)
def test_fills_respect_minimums_prices_and_all_or_nothing(book_spec, wanted, min_qty, aon, side):
    book = [resting(i, price, i, qty, m, a) for i, (price, qty, m, a) in enumerate(book_spec)]
    aggressor = Aggressor(side, 50, np.array(wanted, dtype=float), min_qty=min_qty, all_or_nothing=aon)
    fills = match_aggressor(aggressor, book)
    by_id = {order.order_id: order for order in book}
    for fill in fills:
        order = by_id[fill.order_id]
        assert fill.price == order.price
        assert fill.price <= 50 if side == "buy" else fill.price >= 50
        assert fill.kw >= order.min_qty - 1e-9
        if order.all_or_nothing:
            assert fill.kw == order.remaining[fill.ptu]
    for ptu in range(2):
        total = sum(f.kw for f in fills if f.ptu == ptu)
        assert total == 0 or total >= min_qty - 1e-9
        if aon and fills:
            assert total == wanted[ptu]
    assert match_aggressor(aggressor, book) == fills
