"""Network-aware clearing: D-LMPs against pandapower's rundcopp, hand-checked Q-LMPs, properties against a
scipy linprog reference on random small networks, and AC validation by successive linear programming."""

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from grid.sensitivity import bus_injections, linearise, power_flow_model
from trading.clearing.network import (
    PRICE_STEP,
    NetworkOrders,
    NetworkPoint,
    clear_network,
    network_point,
)
from trading.clearing.network_ac import clear_with_ac_validation

pytestmark = pytest.mark.filterwarnings("ignore")
VALUE_OF_LOAD = 5000.0  # EUR/MWh: loads in the rundcopp set-up are always served


# --- helpers -------------------------------------------------------------------------------------------------


def point(ptdf, *, base_flow=None, limit=None, n_t=1, dv_dp=None, dv_dq=None, base_vm=None, vm_min=None,
          vm_max=None, qtdf=None) -> NetworkPoint:  # fmt: skip
    n_l, n_b = ptdf.shape
    return NetworkPoint(
        ptdf=ptdf,
        qtdf=np.zeros((n_l, n_b)) if qtdf is None else qtdf,
        dv_dp=np.zeros((n_b, n_b)) if dv_dp is None else dv_dp,
        dv_dq=np.zeros((n_b, n_b)) if dv_dq is None else dv_dq,
        base_flow_mw=np.zeros((n_l, n_t)) if base_flow is None else base_flow,
        base_vm_pu=np.ones((n_b, n_t)) if base_vm is None else base_vm,
        flow_limit_mw=np.full(n_l, 1e6) if limit is None else np.asarray(limit, float),
        vm_min=np.full(n_b, -np.inf) if vm_min is None else vm_min,
        vm_max=np.full(n_b, np.inf) if vm_max is None else vm_max,
    )


def orders(*, n_t=1, n_b, offers=(), requests=(), reactive=None) -> NetworkOrders:
    """offers: (bus, direction, kW, price); requests: (bus, direction, kW, price)."""
    offers, requests = list(offers), list(requests)
    weights = np.zeros((len(requests), n_b))
    for i, (bus, *_rest) in enumerate(requests):
        weights[i, bus] = 1.0
    kwargs = {}
    if reactive is not None:
        kwargs = {"offer_q_min": reactive[0], "offer_q_max": reactive[1], "offer_q_price": reactive[2]}
    return NetworkOrders(
        n_ptus=n_t,
        offer_bus=np.array([o[0] for o in offers], dtype=int),
        offer_direction=np.array([o[1] for o in offers], dtype=int),
        offer_qty=np.array([[o[2]] * n_t for o in offers], dtype=float).reshape(len(offers), n_t),
        offer_price=np.array([o[3] for o in offers], dtype=float),
        request_weights=weights,
        request_direction=np.array([r[1] for r in requests], dtype=int),
        request_qty=np.array([[r[2]] * n_t for r in requests], dtype=float).reshape(len(requests), n_t),
        request_price=np.array([r[3] for r in requests], dtype=float),
        **kwargs,
    )


# Two buses, slack at bus 0, one line 0 -> 1: injecting at bus 1 pushes flow 1 -> 0, so PTDF = [0, -1].
TWO_BUS = np.array([[0.0, -1.0]])


def test_uncongested_single_price_is_the_lowest_dual_optimal_one():
    # 10 kW offered at 30, 10 kW wanted at 50: any price in [30, 50] clears; the rule picks the lowest.
    cleared = clear_network(
        orders(n_b=2, offers=[(0, 1, 10, 30.0)], requests=[(1, 1, 10, 50.0)]), point(TWO_BUS)
    )
    assert cleared.offer_alloc[0, 0] == pytest.approx(10)
    assert cleared.request_alloc[0, 0] == pytest.approx(10)
    assert cleared.dlmp[:, 0] == pytest.approx([30.0, 30.0], abs=PRICE_STEP)
    assert cleared.dlmp_congestion == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("backend", ["highspy", "pulp"])
def test_binding_line_splits_prices_hand_checked(backend):
    # Cheap offer at the slack (30), dear offer at bus 1 (80), 500 kW wanted at bus 1 (limit 200),
    # line limit 0.3 MW: 300 kW flow in from the slack, 200 kW from the dear offer.
    cleared = clear_network(
        orders(n_b=2, offers=[(0, 1, 1000, 30.0), (1, 1, 1000, 80.0)], requests=[(1, 1, 500, 200.0)]),
        point(TWO_BUS, limit=[0.3]),
        backend=backend,
    )
    assert cleared.offer_alloc[:, 0] == pytest.approx([300, 200], abs=1e-6)
    # Bus 1 withdraws 0.3 MW net: the line carries +0.3 MW from bus 0 to bus 1, at its limit.
    assert cleared.binding_flow[0, 0] == 1
    assert cleared.flow_after_mw[0, 0] == pytest.approx(0.3)
    assert cleared.dlmp[:, 0] == pytest.approx([30.0, 80.0], abs=1e-3)
    assert cleared.dlmp_energy[:, 0] == pytest.approx([30.0, 30.0], abs=1e-3)
    assert cleared.dlmp_congestion[:, 0] == pytest.approx([0.0, 50.0], abs=1e-3)
    assert cleared.flow_before_mw[0, 0] == 0.0


def test_older_offer_wins_a_tie_and_both_backends_agree():
    made = orders(n_b=2, offers=[(1, 1, 100, 40.0), (1, 1, 100, 40.0)], requests=[(0, 1, 150, 60.0)])
    highs = clear_network(made, point(TWO_BUS))
    pulp = clear_network(made, point(TWO_BUS), backend="pulp")
    assert highs.offer_alloc[:, 0] == pytest.approx([100, 50])
    assert pulp.offer_alloc == pytest.approx(highs.offer_alloc, abs=1e-6)
    assert pulp.dlmp == pytest.approx(highs.dlmp, abs=1e-6)
    assert "PuLP" in pulp.solver and "highspy" in highs.solver


def test_older_request_wins_a_tie_even_behind_a_binding_line():
    # Regression: tie-breaks below the solver's tolerance once let the newer of two equal requests win.
    made = orders(
        n_b=2,
        offers=[(1, 1, 69, -14.0), (1, 1, 184, 74.0)],
        requests=[(0, 1, 206, 95.0), (0, 1, 289, 95.0)],
    )
    cleared = clear_network(made, point(TWO_BUS, limit=[0.1]))
    assert cleared.request_alloc[:, 0] == pytest.approx([100, 0])
    assert np.isfinite(cleared.dlmp).all()


def test_down_offer_is_accepted_when_minus_the_price_pays_it():
    # Base flow 0.2 MW over a 0.1 MW limit from bus 0 to bus 1 (PTDF of bus 1 is -1: injection there relieves).
    # A down offer at the slack (price -45: it pays 45 to reduce) and an up offer at bus 1 at 70 fix it.
    cleared = clear_network(
        orders(n_b=2, offers=[(0, -1, 1000, -45.0), (1, 1, 1000, 70.0)]),
        point(TWO_BUS, base_flow=np.array([[0.2]]), limit=[0.1]),
    )
    assert cleared.offer_alloc[:, 0] == pytest.approx([100, 100], abs=1e-6)
    assert cleared.flow_after_mw[0, 0] == pytest.approx(0.1)
    assert cleared.feasible
    # Both accepted at the margin: the slack price is 45 (the down seller's -(-45)), bus 1 is 70.
    assert cleared.dlmp[:, 0] == pytest.approx([45.0, 70.0], abs=1e-3)


def test_q_lmp_on_a_radial_feeder_hand_checked():
    # Bus 1 sits at 0.94 pu (limit 0.95). dV/dQ = 0.02 pu/Mvar, dV/dP = 0.01 pu/MW. Reactive offer at bus 1:
    # 10 EUR/Mvarh; active redispatch (up at bus 1 for 80, down at the slack paying 50) costs 30 per MW.
    # Raising V by 0.01 pu: 0.5 Mvar for 5 EUR/h, or 1 MW for 30 EUR/h: Q is cheaper; shadow price of the
    # voltage limit = 10 / 0.02 = 500 EUR/h per pu. Q-LMP at bus 1 = 0.02 * 500 = 10; D-LMP at bus 1 =
    # energy 50 + 0.01 * 500 = 55 (voltage component 5); the slack's voltage sensitivity is 0.
    dv_dp = np.array([[0.0, 0.0], [0.0, 0.01]])
    dv_dq = np.array([[0.0, 0.0], [0.0, 0.02]])
    made = orders(
        n_b=2,
        offers=[(0, 1, 5000, 50.0), (0, -1, 5000, -50.0), (1, 1, 5000, 80.0), (1, 1, 0, 0.0)],
        reactive=(np.array([0, 0, 0, -2000.0]), np.array([0, 0, 0, 2000.0]), np.array([0, 0, 0, 10.0])),
    )
    cleared = clear_network(
        made,
        point(TWO_BUS, dv_dp=dv_dp, dv_dq=dv_dq, base_vm=np.array([[1.0], [0.94]]),
              vm_min=np.array([-np.inf, 0.95]), vm_max=np.array([np.inf, 1.05])),
    )  # fmt: skip
    assert cleared.offer_q_alloc[3, 0] == pytest.approx(500, abs=1e-3)
    assert cleared.offer_alloc[2, 0] == pytest.approx(0, abs=1e-6)
    assert cleared.binding_voltage[1, 0] == -1
    assert cleared.qlmp[:, 0] == pytest.approx([0.0, 10.0], abs=1e-3)
    assert cleared.qlmp_voltage[:, 0] == pytest.approx([0.0, 10.0], abs=1e-3)
    assert cleared.qlmp_energy[:, 0] == pytest.approx([0.0, 0.0])
    assert cleared.dlmp_voltage[:, 0] == pytest.approx([0.0, 5.0], abs=1e-3)
    assert cleared.dlmp[:, 0] == pytest.approx([50.0, 55.0], abs=1e-3)


def test_a_reactive_range_per_ptu_is_used_only_where_it_is_given():
    # The hand-checked radial case above over two PTUs, the reactive range given at PTU 1 only: PTU 0 holds the
    # voltage by active redispatch (1 MW per 0.01 pu at 30 EUR/MWh: Q-LMP 0.02 x 3000 = 60, D-LMP 50 + 30 = 80),
    # PTU 1 by 0.5 Mvar at 10 EUR/Mvarh as before.
    dv_dp = np.array([[0.0, 0.0], [0.0, 0.01]])
    dv_dq = np.array([[0.0, 0.0], [0.0, 0.02]])
    q_max = np.zeros((4, 2))
    q_max[3, 1] = 2000.0
    made = orders(
        n_t=2,
        n_b=2,
        offers=[(0, 1, 5000, 50.0), (0, -1, 5000, -50.0), (1, 1, 5000, 80.0), (1, 1, 0, 0.0)],
        reactive=(-q_max, q_max, np.array([0, 0, 0, 10.0])),
    )
    cleared = clear_network(
        made,
        point(TWO_BUS, n_t=2, dv_dp=dv_dp, dv_dq=dv_dq, base_vm=np.array([[1.0, 1.0], [0.94, 0.94]]),
              vm_min=np.array([-np.inf, 0.95]), vm_max=np.array([np.inf, 1.05])),
    )  # fmt: skip
    assert cleared.offer_q_alloc[3] == pytest.approx([0.0, 500.0], abs=1e-3)
    assert cleared.offer_alloc[2] == pytest.approx([1000.0, 0.0], abs=1e-3)
    assert cleared.qlmp[1] == pytest.approx([60.0, 10.0], abs=1e-3)
    assert cleared.dlmp[1] == pytest.approx([80.0, 55.0], abs=1e-3)


def test_unsolvable_network_clears_partially_with_the_residual():
    # Nothing can relieve the line: the clearing still ends, reporting 0.1 MW of residual overload.
    cleared = clear_network(
        orders(n_b=2, offers=[(0, 1, 10, 30.0)]), point(TWO_BUS, base_flow=np.array([[0.2]]), limit=[0.1])
    )
    assert cleared.status == "optimal"
    assert not cleared.feasible
    assert cleared.flow_violation_mw[0, 0] == pytest.approx(0.1)
    assert np.isnan(cleared.dlmp).all()  # nothing accepted: no price discovered


@pytest.mark.parametrize(
    "change",
    [
        {"offer_direction": np.array([0])},
        {"offer_qty": np.array([[-1.0]])},
        {"offer_bus": np.array([7])},
        {"offer_price": np.array([np.nan])},
        {"request_weights": np.zeros((0, 3))},
        # reactive ranges: (offers,) or (offers, PTUs), with one price per offer, containing 0
        {"offer_q_min": np.zeros((1, 2)), "offer_q_max": np.zeros(1), "offer_q_price": np.zeros(1)},
        {"offer_q_min": np.zeros(1), "offer_q_max": np.ones(1), "offer_q_price": np.zeros((1, 1))},
        {"offer_q_min": np.ones((1, 1)), "offer_q_max": np.ones((1, 1)), "offer_q_price": np.zeros(1)},
        {"offer_q_min": np.zeros(1), "offer_q_max": np.ones(1)},
    ],
)
def test_malformed_orders_are_rejected(change):
    made = orders(n_b=2, offers=[(0, 1, 10, 30.0)])
    bad = NetworkOrders(**{**made.__dict__, **change})
    with pytest.raises(ValueError):
        clear_network(bad, point(TWO_BUS))


# --- pandapower rundcopp -------------------------------------------------------------------------------------


def _linear_cost_case(net, loading_percent: float, seed: int):
    """The matching set-up (docs/network.md): linear costs only, every generator from 0 MW, loads fixed."""
    net.poly_cost["cp2_eur_per_mw2"] = 0.0
    net.poly_cost["cp0_eur"] = 0.0
    rng = np.random.default_rng(seed)
    net.poly_cost["cp1_eur_per_mw"] = np.round(rng.uniform(10, 60, len(net.poly_cost)), 2)
    for table in ("gen", "ext_grid", "sgen"):
        if len(net[table]) and "min_p_mw" in net[table]:
            net[table]["min_p_mw"] = 0.0
    net.line["max_loading_percent"] = loading_percent
    if len(net.trafo):
        net.trafo["max_loading_percent"] = loading_percent
    return net


def _dcopp_comparison(net):
    """(our D-LMP, pandapower's lam_p, our result) on the same buses."""
    pp.rundcopp(net)
    lam = net.res_bus.lam_p
    sens = linearise(net, method="dc")
    position = {int(b): i for i, b in enumerate(sens.bus)}
    offers = []
    for _, cost in net.poly_cost.iterrows():
        element = net[cost.et].loc[cost.element]
        offers.append((position[int(element.bus)], 1, element.max_p_mw * 1000, cost.cp1_eur_per_mw))
    loads = net.load[net.load.in_service]
    requests = [
        (position[int(b)], 1, p * 1000, VALUE_OF_LOAD) for b, p in zip(loads.bus, loads.p_mw, strict=True)
    ]
    made = orders(n_b=sens.n_bus, offers=offers, requests=requests)
    # Injections counted from zero: the base point has no flow; limits are pandapower's RATE_A.
    cleared = clear_network(made, point(sens.ptdf, limit=sens.rating_mva))
    return cleared.dlmp[:, 0], lam.loc[sens.bus].values, cleared


@pytest.mark.parametrize(
    ("case", "loading", "seed"), [("case9", 40.0, 1), ("case30", 80.0, 1), ("case30", 100.0, 1)]
)
def test_dlmps_equal_rundcopp_bus_lambdas(case, loading, seed):
    net = _linear_cost_case(getattr(pn, case)(), loading, seed)
    ours, theirs, cleared = _dcopp_comparison(net)
    assert cleared.binding_flow.any()  # congested: prices differ by bus
    assert np.ptp(theirs) > 1.0
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert cleared.dlmp_energy + cleared.dlmp_congestion == pytest.approx(cleared.dlmp)


def test_dlmps_equal_rundcopp_on_a_simbench_mv_grid():
    simbench = pytest.importorskip("simbench")
    net = simbench.get_simbench_net("1-MV-semiurb--0-sw")
    net.load["controllable"] = False
    net.ext_grid["controllable"] = True
    pp.rundcpp(net)
    busiest = net.res_line.p_from_mw.abs().idxmax()
    sens = linearise(net, method="dc")
    row = list(sens.branch_index).index(busiest)
    # Four generators behind the busiest line (they relieve it), two elsewhere; all other generation off.
    behind = np.abs(sens.ptdf[row, sens.bus_position(net.sgen.bus.values)]) > 0.5
    chosen = list(net.sgen.index[behind][:4]) + list(net.sgen.index[~behind][:2])
    net.sgen["in_service"] = False
    net.sgen.loc[chosen, ["in_service", "controllable"]] = True
    net.sgen.loc[chosen, ["p_mw", "min_p_mw", "max_p_mw", "min_q_mvar", "max_q_mvar"]] = [
        0.0,
        0.0,
        2.0,
        0.0,
        0.0,
    ]
    net.ext_grid[["min_p_mw", "max_p_mw"]] = [-100.0, 100.0]
    net.poly_cost.drop(net.poly_cost.index, inplace=True)
    pp.create_poly_cost(net, net.ext_grid.index[0], "ext_grid", cp1_eur_per_mw=50.0)
    for i, generator in enumerate(chosen):
        pp.create_poly_cost(net, generator, "sgen", cp1_eur_per_mw=60.0 + 5 * i)
    net.line["max_loading_percent"] = 100.0
    net.trafo["max_loading_percent"] = 100.0
    pp.rundcpp(net)
    net.line.loc[busiest, "max_loading_percent"] = 0.8 * net.res_line.loading_percent[busiest]
    ours, theirs, cleared = _dcopp_comparison(net)
    assert cleared.binding_flow.any()
    assert np.ptp(theirs) > 1.0
    assert ours == pytest.approx(theirs, rel=1e-4)


# --- properties on random small networks ---------------------------------------------------------------------


def random_ptdf(rng, n_b, extra):
    """DC PTDF (slack bus 0) of a random connected network: a random tree plus `extra` chords."""
    edges = [(int(rng.integers(0, k)), k) for k in range(1, n_b)]
    for _ in range(extra):
        a, b = rng.choice(n_b, 2, replace=False)
        edges.append((int(a), int(b)))
    incidence = np.zeros((len(edges), n_b))
    for i, (a, b) in enumerate(edges):
        incidence[i, a], incidence[i, b] = 1, -1
    susceptance = np.diag(1.0 / rng.uniform(0.05, 0.5, len(edges)))
    bbus = incidence.T @ susceptance @ incidence
    theta = np.zeros((n_b, n_b))
    theta[1:, 1:] = np.linalg.inv(bbus[1:, 1:])
    return susceptance @ incidence @ theta, edges


def random_market(seed, n_b, extra, n_offers, n_requests, limit_scale):
    rng = np.random.default_rng(seed)
    ptdf, edges = random_ptdf(rng, n_b, extra)
    offers = [(int(rng.integers(0, n_b)), 1, float(rng.integers(10, 500)), float(rng.integers(10, 90)))
              for _ in range(n_offers)]  # fmt: skip
    requests = [(int(rng.integers(0, n_b)), 1, float(rng.integers(10, 500)), float(rng.integers(40, 150)))
                for _ in range(n_requests)]  # fmt: skip
    limit = rng.uniform(0.05, 0.5, len(edges)) * limit_scale
    return ptdf, edges, orders(n_b=n_b, offers=offers, requests=requests), limit


def reference_welfare(made: NetworkOrders, ptdf, limit) -> float:
    """scipy linprog over (x, y) with flows written out per line (no nodal variables, no slacks)."""
    n_o, n_r = made.n_offers, made.n_requests
    n_b = ptdf.shape[1]
    inject = np.zeros((n_b, n_o + n_r))
    inject[made.offer_bus, np.arange(n_o)] = made.offer_direction / 1000
    inject[:, n_o:] = -(made.request_weights * made.request_direction[:, None]).T / 1000
    flows = ptdf @ inject
    cost = np.concatenate([made.offer_price, -made.request_price])
    solution = linprog(
        cost,
        A_ub=np.vstack([flows, -flows]),
        b_ub=np.concatenate([limit, limit]),
        A_eq=inject.sum(axis=0, keepdims=True),
        b_eq=[0.0],
        bounds=list(
            zip(
                np.zeros(n_o + n_r),
                np.concatenate([made.offer_qty[:, 0], made.request_qty[:, 0]]),
                strict=True,
            )
        ),
        method="highs",
    )
    assert solution.status == 0
    return -solution.fun * 0.25 / 1000


market = st.tuples(
    st.integers(0, 10_000), st.integers(2, 6), st.integers(0, 3), st.integers(1, 6), st.integers(1, 5),
    st.sampled_from([0.2, 1.0, 1e4]),
)  # fmt: skip
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(market)
def test_welfare_equals_a_linprog_reference_and_no_linearised_limit_is_violated(args):
    seed, n_b, extra, n_o, n_r, scale = args
    ptdf, _, made, limit = random_market(seed, n_b, extra, n_o, n_r, scale)
    cleared = clear_network(made, point(ptdf, limit=limit))
    assert cleared.welfare == pytest.approx(reference_welfare(made, ptdf, limit), abs=1e-6)
    # The cleared schedule respects every linearised limit (zero base flow is within limits here).
    assert (np.abs(cleared.flow_after_mw) <= limit[:, None] + 1e-7).all()
    assert cleared.feasible


@PROPERTY
@given(market)
def test_uncongested_network_has_one_price(args):
    seed, n_b, extra, n_o, n_r, _ = args
    ptdf, _, made, _ = random_market(seed, n_b, extra, n_o, n_r, 1.0)
    cleared = clear_network(made, point(ptdf))
    assert not cleared.binding_flow.any()
    if cleared.offer_alloc.any():
        assert np.ptp(cleared.dlmp) <= 1e-6
    else:
        assert np.isnan(cleared.dlmp).all()  # nothing traded: no price


@PROPERTY
@given(market)
def test_price_rises_across_a_single_binding_line_in_the_direction_of_flow(args):
    seed, n_b, extra, n_o, n_r, _ = args
    ptdf, edges, made, limit = random_market(seed, n_b, extra, n_o, n_r, 0.2)
    cleared = clear_network(made, point(ptdf, limit=limit))
    binding = np.nonzero(cleared.binding_flow[:, 0])[0]
    assume(binding.size == 1)
    line = int(binding[0])
    a, b = edges[line]
    sending, receiving = (a, b) if cleared.flow_after_mw[line, 0] > 0 else (b, a)
    assert cleared.dlmp[receiving, 0] >= cleared.dlmp[sending, 0] - 1e-6


@PROPERTY
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_a_rerun_gives_the_same_result(seed, n_t):
    rng = np.random.default_rng(seed)
    ptdf, _ = random_ptdf(rng, 4, 1)
    made = NetworkOrders(
        n_ptus=n_t,
        offer_bus=rng.integers(0, 4, 5),
        offer_direction=rng.choice([-1, 1], 5),
        offer_qty=rng.integers(0, 300, (5, n_t)).astype(float),
        offer_price=rng.integers(-50, 80, 5).astype(float),
        request_weights=np.eye(4)[rng.integers(0, 4, 3)],
        request_direction=np.ones(3, int),
        request_qty=rng.integers(0, 300, (3, n_t)).astype(float),
        request_price=rng.integers(20, 100, 3).astype(float),
    )
    net_point = point(ptdf, limit=np.full(ptdf.shape[0], 0.1), n_t=n_t)
    first, second = clear_network(made, net_point), clear_network(made, net_point)
    assert np.array_equal(first.offer_alloc, second.offer_alloc)
    assert np.array_equal(first.dlmp, second.dlmp, equal_nan=True)


# --- AC validation -------------------------------------------------------------------------------------------


def radial_feeder():
    """A 20 kV feeder: slack, then five 5 km cable sections, loads along it and a heavy load at the end (0.90 pu)."""
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn_kv=20.0) for _ in range(6)]
    pp.create_ext_grid(net, buses[0], vm_pu=1.0)
    for a, b in zip(buses[:-1], buses[1:], strict=True):
        pp.create_line(net, a, b, length_km=5.0, std_type="NA2XS2Y 1x95 RM/25 12/20 kV")
    for b in buses[1:]:
        pp.create_load(net, b, p_mw=0.4, q_mvar=0.1)
    pp.create_load(net, buses[-1], p_mw=3.0, q_mvar=1.0)
    return net


def test_ac_validation_fixes_what_the_linear_clearing_gets_wrong():
    net = radial_feeder()
    model = power_flow_model(net)
    p, q = bus_injections(net, model.buses)
    end = model.buses.size - 1
    # Voltage at the feeder end is below 0.95; only an up offer at the end (or one mid-feeder) helps.
    made = orders(
        n_b=model.buses.size,
        offers=[(0, 1, 10_000, 50.0), (0, -1, 10_000, -49.0), (end, 1, 5_000, 60.0), (2, 1, 5_000, 55.0)],
    )
    result = clear_with_ac_validation(model, made, base_p_mw=p[:, None], base_q_mvar=q[:, None], vm_min=0.95)
    first = result.history[0]
    assert first["violating_ptus"] == [0]  # the first linear clearing leaves an AC voltage violation
    assert first["max_voltage_excess_pu"] > 1e-3
    assert result.converged
    assert result.iterations >= 2
    assert result.ac_vm_pu[1:, 0].min() >= 0.95 - 1e-4
    # The AC voltages pandapower computes with the cleared schedule agree with the engine's.
    check = copy.deepcopy(net)
    for bus_position, mw in enumerate(result.clearing.injection_mw[:, 0]):
        if abs(mw) > 1e-9:
            pp.create_sgen(check, model.buses[bus_position], p_mw=mw)
    pp.runpp(check)
    assert check.res_bus.vm_pu.loc[model.buses].values == pytest.approx(result.ac_vm_pu[:, 0], abs=1e-6)


def test_ac_validation_without_enough_flexibility_returns_a_partial_result():
    net = radial_feeder()
    model = power_flow_model(net)
    p, q = bus_injections(net, model.buses)
    made = orders(
        n_b=model.buses.size, offers=[(0, 1, 10_000, 50.0), (0, -1, 10_000, -49.0), (3, 1, 50, 60.0)]
    )
    result = clear_with_ac_validation(model, made, base_p_mw=p[:, None], base_q_mvar=q[:, None], vm_min=0.95)
    assert not result.converged
    assert result.voltage_excess_pu.max() > 0
    assert result.clearing.offer_alloc[2, 0] == pytest.approx(50)  # what could be done was done
    assert result.iterations <= 5


def test_ac_validation_keeps_the_previous_clearing_when_a_re_solve_finds_no_optimum(monkeypatch):
    import dataclasses

    from trading.clearing import network_ac

    calls = []

    def failing_after_the_first(*args, **kwargs):
        result = clear_network(*args, **kwargs)
        calls.append(result)
        return result if len(calls) == 1 else dataclasses.replace(result, status="infeasible")

    monkeypatch.setattr(network_ac, "clear_network", failing_after_the_first)
    net = radial_feeder()
    model = power_flow_model(net)
    p, q = bus_injections(net, model.buses)
    end = model.buses.size - 1
    made = orders(
        n_b=model.buses.size,
        offers=[(0, 1, 10_000, 50.0), (0, -1, 10_000, -49.0), (end, 1, 5_000, 60.0), (2, 1, 5_000, 55.0)],
    )
    result = clear_with_ac_validation(model, made, base_p_mw=p[:, None], base_q_mvar=q[:, None], vm_min=0.95)
    assert len(calls) == 2 and result.clearing is calls[0]  # the first clearing, with its AC state
    assert result.iterations == 1 and not result.converged
    assert result.history[-1] == {"iteration": 2, "relinearised_ptus": [0], "solver_status": "infeasible"}
    assert result.voltage_excess_pu.max() > 0  # what the AC check found after the kept clearing


def test_ac_validation_refuses_a_direction_other_than_up_or_down():
    net = radial_feeder()
    model = power_flow_model(net)
    p, q = bus_injections(net, model.buses)
    with pytest.raises(ValueError, match="direction"):
        clear_with_ac_validation(
            model, orders(n_b=model.buses.size), base_p_mw=p[:, None], base_q_mvar=q[:, None], direction=0
        )


def test_network_point_from_sensitivities_limits_only_movable_voltages():
    net = pn.case9()
    cleared_point = network_point(linearise(net))
    slack_and_pv = [0, 1, 2]
    assert np.isinf(cleared_point.vm_min[slack_and_pv]).all()
    assert np.isfinite(cleared_point.vm_min[3:]).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 4))
def test_one_lp_over_many_ptus_equals_clearing_each_ptu_alone(seed, n_t):
    rng = np.random.default_rng(seed)
    ptdfs = np.stack([random_ptdf(np.random.default_rng(seed + t), 4, 1)[0] for t in range(n_t)])
    made = NetworkOrders(
        n_ptus=n_t,
        offer_bus=rng.integers(0, 4, 6),
        offer_direction=rng.choice([-1, 1], 6),
        offer_qty=rng.integers(0, 300, (6, n_t)).astype(float),
        offer_price=rng.integers(-50, 80, 6).astype(float),
        request_weights=np.eye(4)[rng.integers(0, 4, 3)],
        request_direction=np.ones(3, int),
        request_qty=rng.integers(0, 300, (3, n_t)).astype(float),
        request_price=rng.integers(20, 100, 3).astype(float),
    )
    limit = np.full(ptdfs.shape[1], 0.1)
    together = clear_network(made, NetworkPoint(
        ptdf=ptdfs, qtdf=np.zeros_like(ptdfs), dv_dp=np.zeros((4, 4)), dv_dq=np.zeros((4, 4)),
        base_flow_mw=np.zeros((ptdfs.shape[1], n_t)), base_vm_pu=np.ones((4, n_t)), flow_limit_mw=limit,
        vm_min=np.full(4, -np.inf), vm_max=np.full(4, np.inf),
    ))  # fmt: skip
    for t in range(n_t):
        alone_orders = NetworkOrders(
            n_ptus=1,
            offer_bus=made.offer_bus,
            offer_direction=made.offer_direction,
            offer_qty=made.offer_qty[:, t : t + 1],
            offer_price=made.offer_price,
            request_weights=made.request_weights,
            request_direction=made.request_direction,
            request_qty=made.request_qty[:, t : t + 1],
            request_price=made.request_price,
        )
        alone = clear_network(alone_orders, point(ptdfs[t], limit=limit))
        assert alone.offer_alloc[:, 0] == pytest.approx(together.offer_alloc[:, t], abs=1e-5)
        assert alone.request_alloc[:, 0] == pytest.approx(together.request_alloc[:, t], abs=1e-5)
        assert np.allclose(alone.dlmp[:, 0], together.dlmp[:, t], atol=1e-4, equal_nan=True)


def test_ac_validation_with_one_shared_linearisation_also_reaches_feasibility():
    net = radial_feeder()
    model = power_flow_model(net)
    p, q = bus_injections(net, model.buses)
    end = model.buses.size - 1
    made = orders(
        n_t=2, n_b=model.buses.size,
        offers=[(0, 1, 10_000, 50.0), (0, -1, 10_000, -49.0), (end, 1, 5_000, 60.0), (2, 1, 5_000, 55.0)],
    )  # fmt: skip
    # Two PTUs: the second with 20% less load (a different operating point, the same sensitivities at first).
    base_p = np.stack([p, np.where(p < 0, 0.8 * p, p)], axis=1)
    base_q = np.stack([q, np.where(q < 0, 0.8 * q, q)], axis=1)
    result = clear_with_ac_validation(
        model, made, base_p_mw=base_p, base_q_mvar=base_q, vm_min=0.95, shared_linearisation=True
    )
    assert result.converged
    assert (result.ac_vm_pu[1:] >= 0.95 - 1e-4).all()
    assert result.history[0]["relinearised_ptus"] == []


def test_check_injection_names_the_limits_a_trade_would_break_or_worsen():
    from trading.clearing.network import check_injection

    # Line 0 -> 1 at 0.08 of 0.1 MW; bus 1 at 0.951 pu (limit 0.95), dV/dP 0.01 pu/MW at bus 1.
    net_point = point(
        TWO_BUS, base_flow=np.array([[0.08]]), limit=[0.1], dv_dp=np.array([[0, 0], [0, 0.01]]),
        base_vm=np.array([[1.0], [0.951]]), vm_min=np.array([-np.inf, 0.95]), vm_max=np.array([np.inf, 1.05]),
    )  # fmt: skip
    assert check_injection(net_point, 0, np.array([0.0, 0.01])) == []  # injection at bus 1 relieves both
    worse = check_injection(net_point, 0, np.array([0.0, -0.05]))  # 50 kW more withdrawal at bus 1
    assert [(w.kind, w.index) for w in worse] == [("line", 0)]
    assert worse[0].after == pytest.approx(0.13)
    worse = check_injection(net_point, 0, np.array([0.0, -0.2]))
    assert {(w.kind, w.index) for w in worse} == {("line", 0), ("voltage", 1)}
    # Already overloaded: a change that reduces the overload is allowed, one that adds to it is not.
    overloaded = point(TWO_BUS, base_flow=np.array([[0.15]]), limit=[0.1])
    assert check_injection(overloaded, 0, np.array([0.0, 0.02])) == []
    assert len(check_injection(overloaded, 0, np.array([0.0, -0.01]))) == 1


def test_q_lmps_on_a_pandapower_feeder_follow_the_voltage_sensitivities():
    # Only the feeder end's voltage is limited and a reactive offer there at 10 EUR/Mvarh is marginal: its
    # shadow price is nu = -10 / dVdQ[end, end], so Q-LMP_b = 10 dVdQ[end, b] / dVdQ[end, end] and the voltage
    # part of D-LMP_b = 10 dVdP[end, b] / dVdQ[end, end] (both by hand from the decomposition).
    sens = linearise(radial_feeder())
    end = sens.n_bus - 1
    net_point = network_point(sens)
    low = np.full(sens.n_bus, -np.inf)
    low[end] = 0.95
    net_point = NetworkPoint(**{**net_point.__dict__, "vm_min": low, "vm_max": np.full(sens.n_bus, np.inf)})
    n_o = 3
    made = NetworkOrders(
        n_ptus=1,
        offer_bus=np.array([0, 0, end]),
        offer_direction=np.array([1, -1, 1]),
        offer_qty=np.array([[1e4], [1e4], [0.0]]),
        offer_price=np.array([50.0, -50.0, 0.0]),
        request_weights=np.zeros((0, sens.n_bus)),
        request_direction=np.zeros(0, int),
        request_qty=np.zeros((0, 1)),
        request_price=np.zeros(0),
        offer_q_min=np.zeros(n_o),
        offer_q_max=np.array([0.0, 0.0, 10_000.0]),
        offer_q_price=np.array([0.0, 0.0, 10.0]),
    )
    cleared = clear_network(made, net_point)
    assert 0 < cleared.offer_q_alloc[2, 0] < 10_000  # marginal
    assert cleared.binding_voltage[end, 0] == -1
    ratio = sens.dv_dq[end] / sens.dv_dq[end, end]
    assert cleared.qlmp[:, 0] == pytest.approx(10.0 * ratio, abs=1e-3)
    assert cleared.dlmp_voltage[:, 0] == pytest.approx(
        10.0 * sens.dv_dp[end] / sens.dv_dq[end, end], abs=1e-3
    )
    assert cleared.dlmp_congestion[:, 0] == pytest.approx(0.0, abs=1e-9)
