"""The auction engine alone: hand-computed cases, then properties."""

import numpy as np
import pytest

from trading.clearing import auction
from trading.clearing.auction import AuctionOrders, NetworkConstraints, clear_auction


def orders(offers, requests, n_ptus=1, n_zones=1, min_consecutive=None, max_consecutive=None):
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
        offer_min_consecutive=None if min_consecutive is None else np.array(min_consecutive),
        offer_max_consecutive=None if max_consecutive is None else np.array(max_consecutive),
    )


def trades_by_request(result):
    return {
        (int(r), int(o), int(t)): (float(kw), float(price), float(uplift))
        for r, o, t, kw, price, uplift in zip(
            result.trades.request_idx,
            result.trades.offer_idx,
            result.trades.ptu,
            result.trades.kw,
            result.trades.price,
            result.trades.uplift,
            strict=True,
        )
    }


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
    # Demand is short (80 of 100 kW), so the request's limit is the clearing price: at any lower price it would
    # want more than is offered. The rejected block at 10 is "paradoxically rejected" (allowed).
    assert result.zone_price[0, 0] == 100


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


def test_unknown_backend_or_pricing_is_refused():
    session = orders([(0, [10], 0, 10, False)], [(0, [10], 100)])
    with pytest.raises(ValueError):
        clear_auction(session, backend="cplex")
    with pytest.raises(ValueError):
        clear_auction(session, pricing="vickrey")


@pytest.mark.parametrize("backend", ["highspy", "pulp"])
def test_time_limit_is_reported_and_nothing_over_allocated(backend):
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
    result = clear_auction(session, time_limit=0.0, backend=backend)
    assert result.status == "time_limit"
    assert (result.offer_alloc <= session.offer_qty + 1e-6).all()


# --- ties (issue 8.1) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["highspy", "pulp"])
def test_equal_prices_prefer_the_older_offer_on_both_backends(backend):
    session = orders([(0, [100], 0, 50, False)] * 3, [(0, [150], 100)])
    result = clear_auction(session, backend=backend)
    assert result.offer_alloc[:, 0].tolist() == [100, 50, 0]


@pytest.mark.parametrize("backend", ["highspy", "pulp"])
def test_equal_limits_prefer_the_older_request(backend):
    session = orders([(0, [100], 0, 50, False)], [(0, [60], 80), (0, [60], 80), (0, [60], 80)])
    result = clear_auction(session, backend=backend)
    assert result.request_alloc[:, 0].tolist() == [60, 40, 0]


def test_equal_price_minimum_quantity_offers_prefer_the_older_one():
    # Two 30 kW offers at 50 with a 30 kW minimum; 40 kW wanted: only one fits, the older one.
    session = orders([(0, [30], 30, 50, False), (0, [30], 30, 50, False)], [(0, [40], 90)])
    assert clear_auction(session).offer_alloc[:, 0].tolist() == [30, 0]
    assert clear_auction(session, backend="pulp").offer_alloc[:, 0].tolist() == [30, 0]


def test_trade_at_zero_surplus_is_made():
    result = clear_auction(orders([(0, [40], 0, 50, False)], [(0, [40], 50)]))
    assert result.offer_alloc[0, 0] == 40 and result.zone_price[0, 0] == 50


def test_equal_block_offers_prefer_the_older_one():
    session = orders([(0, [50, 50], 0, 40, True), (0, [50, 50], 0, 40, True)], [(0, [60, 60], 90)], n_ptus=2)
    assert clear_auction(session).offer_alloc.tolist() == [[50, 50], [0, 0]]


def test_welfare_is_the_true_welfare_not_the_perturbed_objective():
    # 100 kW at 50 against 100 kW at 100: (100 − 50) EUR/MWh × 100 kW × 0.25 h = 1.25 EUR exactly.
    result = clear_auction(orders([(0, [100], 0, 50, False)], [(0, [100], 100)]))
    assert result.objective == 1.25


# --- the smallest stored price step decides (issue 8.12c) -------------------------------------------------------


def test_one_price_step_cheaper_newer_offer_wins():
    session = orders([(0, [100], 0, 50.0001, False), (0, [100], 0, 50.0, False)], [(0, [100], 100)])
    for backend in ("highspy", "pulp"):
        assert clear_auction(session, backend=backend).offer_alloc[:, 0].tolist() == [0, 100]


def test_one_price_step_higher_newer_request_wins():
    session = orders([(0, [100], 0, 50, False)], [(0, [100], 80.0), (0, [100], 80.0001)])
    assert clear_auction(session).request_alloc[:, 0].tolist() == [0, 100]


def test_offer_one_price_step_above_the_limit_does_not_clear():
    session = orders([(0, [100], 0, 50.0001, False)], [(0, [100], 50.0)])
    assert clear_auction(session).offer_alloc.sum() == 0


# --- no buyer above its limit, no seller below its bid (issue 8.12a) -------------------------------------------


@pytest.mark.parametrize("pricing", ["uniform", "pay_as_bid"])
def test_minimum_quantity_offer_is_not_accepted_when_a_buyer_would_pay_above_its_limit(pricing):
    # 20 kW at 60 with a 20 kW minimum could only be accepted by also selling 5 kW to the buyer whose limit is 50.
    result = clear_auction(
        orders([(0, [20], 20, 60, False)], [(0, [15], 100), (0, [5], 50)]), pricing=pricing
    )
    assert result.offer_alloc.sum() == 0 and len(result.trades) == 0


def test_block_offer_is_not_accepted_when_a_ptu_has_only_buyers_below_its_bid():
    session = orders([(0, [20, 20], 0, 60, True)], [(0, [20, 0], 100), (0, [0, 20], 50)], n_ptus=2)
    assert clear_auction(session).offer_alloc.sum() == 0


def test_cheaper_offer_serves_the_low_limit_buyer_when_a_block_is_accepted():
    # PTU 0: block B (10 kW at 60 over both PTUs) and a request of 10 kW at 100.
    # PTU 1: B, a divisible 10 kW at 30 (A), and requests of 10 kW at 40 (R2) and 10 kW at 70 (R3).
    # With B: 10 × (100 − 60) + 10 × (70 − 60) + 10 × (40 − 30) = 600 > without B: 10 × (70 − 30) = 400.
    session = orders(
        [(0, [10, 10], 0, 60, True), (0, [0, 10], 0, 30, False)],
        [(0, [10, 0], 100), (0, [0, 10], 40), (0, [0, 10], 70)],
        n_ptus=2,
    )
    uniform = clear_auction(session)
    assert uniform.offer_alloc.tolist() == [[10, 10], [0, 10]]
    assert uniform.request_alloc.tolist() == [[10, 0], [0, 10], [0, 10]]
    # PTU 0: any price in [60, 100] suits everyone; the buyer pays the lowest.
    assert (
        uniform.price_low[0, 0] == 60 and uniform.price_high[0, 0] == 100 and uniform.zone_price[0, 0] == 60
    )
    # PTU 1: A is fully accepted (≥ 30) and R2 too (≤ 40); no price reaches B's 60. The price that needs the least
    # make-whole is 40; B's trade with R3 is priced at its bid 60, and R3 (limit 70) pays the 20 uplift.
    assert uniform.zone_price[0, 1] == 40
    assert trades_by_request(uniform) == {
        (0, 0, 0): (10, 60, 0),
        (1, 1, 1): (10, 40, 0),
        (2, 0, 1): (10, 60, 20),
    }
    pay_as_bid = clear_auction(session, pricing="pay_as_bid")
    assert {k: v[1] for k, v in trades_by_request(pay_as_bid).items()} == {
        (0, 0, 0): 60,
        (1, 1, 1): 30,
        (2, 0, 1): 60,
    }


# --- the uniform price is the market-clearing price (issue 8.12b) ----------------------------------------------


def test_uniform_price_keeps_the_rejected_buyer_out():
    # 50 kW at 50 against 50 kW at 100 and 50 kW at 80: the 80 request is rejected, so the price is at least 80
    # (else it would rather trade) and at most 100 (else the accepted buyer would withdraw); the lowest is taken.
    result = clear_auction(orders([(0, [50], 0, 50, False)], [(0, [50], 100), (0, [50], 80)]))
    assert result.request_alloc[:, 0].tolist() == [50, 0]
    assert (result.price_low[0, 0], result.zone_price[0, 0], result.price_high[0, 0]) == (80, 80, 100)
    assert result.trades.price.tolist() == [80]


def test_uniform_price_is_the_lowest_that_clears_the_market():
    # Both fully accepted, nothing else: every price in [50, 100] clears the market; the buyer pays the least.
    result = clear_auction(orders([(0, [50], 0, 50, False)], [(0, [50], 100)]))
    assert (result.price_low[0, 0], result.zone_price[0, 0], result.price_high[0, 0]) == (50, 50, 100)


def test_uniform_price_lies_between_the_rejected_offer_and_the_accepted_request():
    # 50 kW at 50 (accepted), 50 kW at 70 (rejected) against 50 kW at 100: any price in [50, 70] clears.
    result = clear_auction(orders([(0, [50], 0, 50, False), (0, [50], 0, 70, False)], [(0, [50], 100)]))
    assert result.offer_alloc[:, 0].tolist() == [50, 0]
    assert (result.price_low[0, 0], result.zone_price[0, 0], result.price_high[0, 0]) == (50, 50, 70)


def test_uncleared_cells_have_no_price():
    result = clear_auction(orders([(0, [50, 0], 0, 50, False)], [(0, [50, 50], 100)], n_ptus=2))
    assert result.zone_price[0, 0] == 50 and np.isnan(result.zone_price[0, 1])


def test_network_congestion_sets_the_price_from_the_duals():
    # The line lets only 30 of 100 kW through: the request is partly served, so its limit (100) is the zone price;
    # the line's shadow price (90) is what separates it from the offer's bid (10).
    network = NetworkConstraints(
        sensitivity=np.array([[1.0]]), base_flow=np.zeros((1, 1)), limit=np.array([30.0])
    )
    result = clear_auction(orders([(0, [100], 0, 10, False)], [(0, [100], 100)]), network=network)
    assert result.zone_price[0, 0] == 100


def test_balance_duals_are_the_fallback_price(monkeypatch):
    # If no price supports the allocation, HiGHS's duals of the balance rows are used; here they lie in [80, 100].
    monkeypatch.setattr(auction, "_price_range", lambda *args: None)
    result = clear_auction(orders([(0, [50], 0, 50, False)], [(0, [50], 100), (0, [50], 80)]))
    assert 80 <= result.zone_price[0, 0] <= 100
    assert result.price_low[0, 0] == result.price_high[0, 0] == result.zone_price[0, 0]


# --- runs of consecutive PTUs (issue 8.12d) --------------------------------------------------------------------


def test_minimum_consecutive_ptus_reject_a_shorter_run():
    offer = [(0, [10, 10, 10, 10], 0, 20, False)]
    short = orders(offer, [(0, [10, 10, 0, 0], 100)], n_ptus=4, min_consecutive=[3])
    assert clear_auction(short).offer_alloc.sum() == 0
    long_enough = orders(offer, [(0, [10, 10, 10, 0], 100)], n_ptus=4, min_consecutive=[3])
    assert clear_auction(long_enough).offer_alloc[0].tolist() == [10, 10, 10, 0]


def test_maximum_consecutive_ptus_split_a_long_run():
    # At most 2 consecutive PTUs: of 4 wanted PTUs, 3 can be served (2 + 1); earlier PTUs go first.
    session = orders(
        [(0, [10, 10, 10, 10], 0, 20, False)], [(0, [10] * 4, 100)], n_ptus=4, max_consecutive=[2]
    )
    for backend in ("highspy", "pulp"):
        assert clear_auction(session, backend=backend).offer_alloc[0].tolist() == [10, 10, 0, 10]


def test_block_whose_profile_breaks_its_run_limits_never_clears():
    session = orders([(0, [10, 10, 10], 0, 20, True)], [(0, [10] * 3, 100)], n_ptus=3, max_consecutive=[2])
    assert clear_auction(session).offer_alloc.sum() == 0


def test_run_limits_are_optional_and_validated():
    plain = orders([(0, [10, 10], 0, 20, False)], [(0, [10, 10], 100)], n_ptus=2)
    assert clear_auction(plain).offer_alloc[0].tolist() == [10, 10]
    with pytest.raises(ValueError):
        clear_auction(orders([(0, [10], 0, 20, False)], [(0, [10], 100)], min_consecutive=[0]))
    with pytest.raises(ValueError):
        clear_auction(
            orders([(0, [10], 0, 20, False)], [(0, [10], 100)], min_consecutive=[3], max_consecutive=[2])
        )


def test_line_with_zero_limit_keeps_its_zone_out_but_prices_the_cleared_one():
    # Zone 0 sits behind a line with limit 0 (no injection possible); zone 1 is unconstrained and clears 40 kW.
    # The zero-width row needs a free shadow price, or no price supports this and the range collapses to a dual.
    network = NetworkConstraints(
        sensitivity=np.array([[1.0, 0.0]]), base_flow=np.zeros((1, 1)), limit=np.array([0.0])
    )
    session = orders(
        [(0, [50], 0, 10, False), (1, [40], 0, 30, False)], [(0, [50], 100), (1, [40], 100)], n_zones=2
    )
    result = clear_auction(session, network=network)
    assert result.offer_alloc[:, 0].tolist() == [0, 40]
    assert np.isnan(result.zone_price[0, 0])
    assert (result.price_low[1, 0], result.zone_price[1, 0], result.price_high[1, 0]) == (30, 30, 100)


def test_tso_request_is_served_only_by_an_eligible_offer():
    session = AuctionOrders(
        n_ptus=1,
        n_zones=1,
        offer_zone=np.array([0, 0]),
        offer_qty=np.array([[100.0], [100.0]]),
        offer_min=np.zeros(2),
        offer_price=np.array([30.0, 60.0]),
        offer_block=np.zeros(2, bool),
        request_zone=np.array([0]),
        request_qty=np.array([[100.0]]),
        request_price=np.array([90.0]),
        request_tso=np.array([True]),
        offer_tso_eligible=np.array([False, True]),
    )
    result = clear_auction(session)
    assert result.offer_alloc[:, 0].tolist() == [0.0, 100.0]
    assert result.trades.offer_idx.tolist() == [1]


def test_dso_takes_what_a_tso_cannot_use_so_both_are_served():
    """DSO limit 40 and TSO limit 100; an eligible offer at 30 and one at 35 that is not: the DSO takes the 35."""
    session = AuctionOrders(
        n_ptus=1,
        n_zones=1,
        offer_zone=np.array([0, 0]),
        offer_qty=np.array([[10.0], [10.0]]),
        offer_min=np.zeros(2),
        offer_price=np.array([30.0, 35.0]),
        offer_block=np.zeros(2, bool),
        request_zone=np.array([0, 0]),
        request_qty=np.array([[10.0], [10.0]]),
        request_price=np.array([40.0, 100.0]),
        request_tso=np.array([False, True]),
        offer_tso_eligible=np.array([True, False]),
    )
    result = clear_auction(session, pricing="pay_as_bid")
    pairs = sorted(zip(result.trades.request_idx.tolist(), result.trades.offer_idx.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 0)]
