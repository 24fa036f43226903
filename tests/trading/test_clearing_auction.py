"""The auction engine alone: hand-computed cases, then properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.clearing.auction import AuctionOrders, NetworkConstraints, clear_auction


def orders(offers, requests, n_ptus=1, n_zones=1):
    """offers: (zone, [qty per PTU], min, price, block); requests: (zone, [qty per PTU], price)."""
    return AuctionOrders(
        n_ptus=n_ptus,
        n_zones=n_zones,
        offer_zone=np.array([o[0] for o in offers], dtype=int),
        offer_qty=np.array([o[1] for o in offers], dtype=float).reshape(len(offers), n_ptus),
        offer_min=np.array([o[2] for o in offers], dtype=float),
        offer_price=np.array([o[3] for o in offers], dtype=float),
        offer_block=np.array([o[4] for o in offers], dtype=bool),
        request_zone=np.array([r[0] for r in requests], dtype=int),
        request_qty=np.array([r[1] for r in requests], dtype=float).reshape(len(requests), n_ptus),
        request_price=np.array([r[2] for r in requests], dtype=float),
    )


def test_one_buyer_two_sellers_takes_cheapest_first_and_prices_at_the_marginal_offer():
    # Request 100 kW at ≤100 EUR/MWh; offers 60 kW at 50 and 80 kW at 70: take 60 + 40, price 70.
    result = clear_auction(orders([(0, [60], 0, 50, False), (0, [80], 0, 70, False)], [(0, [100], 100)]))
    assert result.status == "optimal"
    assert result.offer_alloc[:, 0].tolist() == [60, 40]
    assert result.request_alloc[0, 0] == 100
    assert result.zone_price[0, 0] == 70
    # Welfare: (100·100 − 50·60 − 70·40) kW × 0.25 h / 1000 = 1.05 EUR.
    assert result.objective == pytest.approx(1.05)
    assert sorted(zip(result.trades.offer_idx.tolist(), result.trades.kw.tolist(), strict=True)) == [
        (0, 60),
        (1, 40),
    ]
    assert set(result.trades.price.tolist()) == {70}


def test_pay_as_bid_prices_each_trade_at_its_offer():
    result = clear_auction(
        orders([(0, [60], 0, 50, False), (0, [80], 0, 70, False)], [(0, [100], 100)]), pricing="pay_as_bid"
    )
    prices = dict(zip(result.trades.offer_idx.tolist(), result.trades.price.tolist(), strict=True))
    assert prices == {0: 50, 1: 70}


def test_block_offer_is_rejected_when_it_does_not_fit():
    # A 150 kW all-or-nothing block cannot fit a 100 kW request; the divisible 80 kW offer clears instead.
    result = clear_auction(orders([(0, [150], 0, 10, True), (0, [80], 0, 60, False)], [(0, [100], 100)]))
    assert result.offer_alloc[:, 0].tolist() == [0, 80]
    assert result.zone_price[0, 0] == 60


def test_block_offer_clears_in_full_over_all_its_ptus():
    result = clear_auction(orders([(0, [50, 50], 0, 40, True)], [(0, [50, 50], 90)], n_ptus=2))
    assert result.offer_alloc[0].tolist() == [50, 50]


def test_minimum_quantity_is_respected():
    # Offer of 100 kW with minimum 60 kW; the request wants only 40 kW: nothing clears from it.
    result = clear_auction(orders([(0, [100], 60, 20, False)], [(0, [40], 100)]))
    assert result.offer_alloc[0, 0] == 0
    assert np.isnan(result.zone_price[0, 0])


def test_zones_do_not_exchange_flexibility():
    result = clear_auction(orders([(1, [100], 0, 10, False)], [(0, [100], 100)], n_zones=2))
    assert result.offer_alloc.sum() == 0 and len(result.trades) == 0


def test_offer_above_request_limit_does_not_clear():
    result = clear_auction(orders([(0, [100], 0, 120, False)], [(0, [100], 100)]))
    assert result.offer_alloc.sum() == 0


def test_equal_prices_prefer_the_older_offer():
    result = clear_auction(orders([(0, [100], 0, 50, False), (0, [100], 0, 50, False)], [(0, [100], 100)]))
    assert result.offer_alloc[:, 0].tolist() == [100, 0]


def test_network_limit_caps_cleared_volume():
    # One line, sensitivity 1 to zone 0, base flow 0, limit 30 kW: only 30 kW may clear.
    network = NetworkConstraints(
        sensitivity=np.array([[1.0]]), base_flow=np.zeros((1, 1)), limit=np.array([30.0])
    )
    result = clear_auction(orders([(0, [100], 0, 10, False)], [(0, [100], 100)]), network=network)
    assert result.offer_alloc[0, 0] == pytest.approx(30)


def test_empty_session_is_optimal_with_nothing_cleared():
    result = clear_auction(orders([(0, [0], 0, 10, False)], [(0, [0], 100)]))
    assert result.status == "optimal" and len(result.trades) == 0


def test_bad_shapes_are_refused():
    bad = AuctionOrders(
        1,
        1,
        np.array([0]),
        np.array([[1.0, 2.0]]),
        np.zeros(1),
        np.ones(1),
        np.zeros(1, bool),
        np.array([0]),
        np.array([[1.0]]),
        np.ones(1),
    )
    with pytest.raises(ValueError):
        clear_auction(bad)


@st.composite
def divisible_sessions(draw):
    n_ptus, n_zones = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    n_offers, n_requests = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    qty = st.lists(st.sampled_from([0, 10, 25, 40, 100]), min_size=n_ptus, max_size=n_ptus)
    price = st.integers(1, 200)
    offers = [(draw(st.integers(0, n_zones - 1)), draw(qty), 0, draw(price), False) for _ in range(n_offers)]
    requests = [(draw(st.integers(0, n_zones - 1)), draw(qty), draw(price)) for _ in range(n_requests)]
    return orders(offers, requests, n_ptus=n_ptus, n_zones=n_zones)


@settings(max_examples=40, deadline=None)
@given(divisible_sessions())
def test_properties_of_uniform_clearing(session):
    result = clear_auction(session)
    # Never over-allocated; zones balance.
    assert (result.offer_alloc <= session.offer_qty + 1e-6).all()
    assert (result.request_alloc <= session.request_qty + 1e-6).all()
    for zone in range(session.n_zones):
        supplied = result.offer_alloc[session.offer_zone == zone].sum(axis=0)
        demanded = result.request_alloc[session.request_zone == zone].sum(axis=0)
        assert np.allclose(supplied, demanded, atol=1e-6)
    # offer price ≤ zone-PTU price ≤ request limit for everything cleared.
    for o, t in zip(*np.nonzero(result.offer_alloc > 1e-6), strict=True):
        assert session.offer_price[o] <= result.zone_price[session.offer_zone[o], t] + 1e-9
    for r, t in zip(*np.nonzero(result.request_alloc > 1e-6), strict=True):
        assert result.zone_price[session.request_zone[r], t] <= session.request_price[r] + 1e-9
    # Trades add up to the allocations.
    assert np.isclose(result.trades.kw.sum(), result.offer_alloc.sum())
    # Re-running gives the same result.
    again = clear_auction(session)
    assert np.array_equal(again.offer_alloc, result.offer_alloc)
    assert np.array_equal(np.nan_to_num(again.zone_price), np.nan_to_num(result.zone_price))


@st.composite
def mixed_sessions(draw):
    """Sessions with minimum quantities and blocks as well as divisible offers."""
    n_ptus, n_zones = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    qty = st.lists(st.sampled_from([0, 10, 25, 40, 100]), min_size=n_ptus, max_size=n_ptus)
    offers = [
        (
            draw(st.integers(0, n_zones - 1)),
            draw(qty),
            draw(st.sampled_from([0, 0, 15, 30])),
            draw(st.integers(1, 200)),
            draw(st.booleans()),
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    requests = [
        (draw(st.integers(0, n_zones - 1)), draw(qty), draw(st.integers(1, 200)))
        for _ in range(draw(st.integers(1, 3)))
    ]
    return orders(offers, requests, n_ptus=n_ptus, n_zones=n_zones)


@settings(max_examples=30, deadline=None)
@given(mixed_sessions())
def test_properties_with_blocks_and_minimums(session):
    result = clear_auction(session)
    assert result.status == "optimal"
    assert (result.offer_alloc <= session.offer_qty + 1e-6).all()
    assert (result.request_alloc <= session.request_qty + 1e-6).all()
    for o in range(session.n_offers):
        accepted = result.offer_alloc[o]
        if session.offer_block[o]:
            # All or nothing over every offered PTU.
            assert np.allclose(accepted, 0) or np.allclose(accepted, session.offer_qty[o])
        else:
            cleared = accepted > 1e-6
            assert (accepted[cleared] >= session.offer_min[o] - 1e-6).all()
    assert result.objective >= -1e-9
    assert np.isclose(result.trades.kw.sum(), result.offer_alloc.sum())
    again = clear_auction(session)
    assert np.array_equal(again.offer_alloc, result.offer_alloc)
    assert np.array_equal(again.request_alloc, result.request_alloc)


@settings(max_examples=15, deadline=None)
@given(mixed_sessions())
def test_pulp_backend_reaches_the_same_welfare(session):
    direct = clear_auction(session)
    via_pulp = clear_auction(session, backend="pulp")
    assert via_pulp.status == "optimal"
    assert via_pulp.objective == pytest.approx(direct.objective, abs=1e-6)
    assert len(direct.trades) == 0 or "PuLP" in via_pulp.solver


def test_unknown_backend_or_pricing_is_refused():
    session = orders([(0, [10], 0, 10, False)], [(0, [10], 100)])
    with pytest.raises(ValueError):
        clear_auction(session, backend="cplex")
    with pytest.raises(ValueError):
        clear_auction(session, pricing="vickrey")


def test_minimum_quantity_offer_above_a_buyers_limit_never_charges_that_buyer_more():
    # 20 kW at 60 with minimum 20 kW serves requests of 15 kW (≤100) and 5 kW (≤50): welfare positive, so it clears.
    # Uniform price: marginal offer 60 capped at the lowest accepted limit 50; make-whole pays 60 to the 15 kW buyer
    # and at most 50 to the 5 kW one.
    result = clear_auction(orders([(0, [20], 20, 60, False)], [(0, [15], 100), (0, [5], 50)]))
    assert result.offer_alloc[0, 0] == 20 and result.zone_price[0, 0] == 50
    prices = dict(zip(result.trades.request_idx.tolist(), result.trades.price.tolist(), strict=True))
    assert prices == {0: 60, 1: 50}


@settings(max_examples=30, deadline=None)
@given(mixed_sessions())
def test_no_trade_is_priced_above_its_request_limit_under_uniform_pricing(session):
    result = clear_auction(session)
    limits = session.request_price[result.trades.request_idx]
    assert (result.trades.price <= limits + 1e-9).all()
    zone_prices = result.zone_price[session.offer_zone[result.trades.offer_idx], result.trades.ptu]
    assert (result.trades.price >= zone_prices - 1e-9).all()


def test_time_limit_is_reported_and_nothing_over_allocated():
    rng = np.random.default_rng(1)
    n_offers, n_ptus = 200, 24
    session = AuctionOrders(
        n_ptus=n_ptus,
        n_zones=2,
        offer_zone=rng.integers(0, 2, n_offers),
        offer_qty=rng.choice([0.0, 20.0, 50.0], (n_offers, n_ptus)),
        offer_min=np.where(rng.random(n_offers) < 0.5, 15.0, 0.0),
        offer_price=rng.uniform(20, 200, n_offers).round(2),
        offer_block=rng.random(n_offers) < 0.2,
        request_zone=np.array([0, 1]),
        request_qty=np.full((2, n_ptus), 900.0),
        request_price=np.array([150.0, 120.0]),
    )
    result = clear_auction(session, time_limit=0.0)
    assert result.status == "time_limit"
    assert (result.offer_alloc <= session.offer_qty + 1e-6).all()
