"""Flexibility needs: hand-checked radial cases and a hypothesis comparison with a scipy linprog reference."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from grid.needs import compute_needs

INF = np.inf


def feeder(**overrides):
    """Slack 0 - bus 1 - bus 2 (radial). Injection at bus 1 or 2 relieves line 0-1 one for one; only bus 2's
    injection relieves line 1-2. Line flows are from the slack outwards (positive)."""
    arguments = {
        "ptdf": np.array([[0.0, -1.0, -1.0], [0.0, 0.0, -1.0]]),
        "dv_dp": np.zeros((3, 3)),
        "base_flow_mw": np.array([[1.5, 0.8], [0.6, 0.6]]),  # PTU 0 overloads line 0-1, PTU 1 is fine
        "flow_limit_mw": np.array([1.0, 1.0]),
        "base_vm_pu": np.ones((3, 2)),
        "vm_min": np.array([-INF, 0.95, 0.95]),
        "vm_max": np.array([INF, 1.05, 1.05]),
        "zone_weights": np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    }
    arguments.update(overrides)
    return arguments


def test_overloaded_feeder_head_needs_500_kw_up_in_the_first_zone():
    needs = compute_needs(**feeder())
    assert needs.congested.tolist() == [True, False]
    # Both zones relieve line 0-1 equally: the explicit tie rule takes the earlier zone.
    assert needs.up_kw[:, 0] == pytest.approx([500.0, 0.0])
    assert needs.direction[:, 0].tolist() == ["up", ""]
    assert not needs.up_kw[:, 1].any() and not needs.down_kw.any()
    assert needs.solvable.all()


def test_a_zone_cap_moves_the_need_to_the_other_zone():
    needs = compute_needs(**feeder(zone_max_kw=np.array([200.0, 1000.0])))
    assert needs.up_kw[:, 0] == pytest.approx([200.0, 300.0])


def test_too_little_flexibility_reports_the_residual_violation():
    needs = compute_needs(**feeder(zone_max_kw=np.array([100.0, 100.0])))
    assert needs.solvable.tolist() == [False, True]
    assert needs.up_kw[:, 0] == pytest.approx([100.0, 100.0])
    assert needs.residual_flow_mw[0, 0] == pytest.approx(0.3)
    assert not needs.residual_flow_mw[:, 1].any()


def test_reverse_flow_needs_down_flexibility():
    needs = compute_needs(**feeder(base_flow_mw=np.array([[-1.2, 0.0], [-0.4, 0.0]])))
    assert needs.down_kw[:, 0] == pytest.approx([200.0, 0.0])
    assert needs.direction[0, 0] == "down"


def test_low_voltage_at_the_feeder_end_hand_checked():
    # Bus 2 at 0.93 pu; dV/dP = 0.02 pu/MW at bus 2 from bus 2, 0.01 from bus 1: 1 MW at bus 2 is the least.
    dv_dp = np.array([[0, 0, 0], [0, 0.01, 0.01], [0, 0.01, 0.02]])
    needs = compute_needs(
        **feeder(
            dv_dp=dv_dp, base_flow_mw=np.zeros((2, 2)), base_vm_pu=np.array([[1, 1], [0.96, 1], [0.93, 1]])
        )
    )
    assert needs.up_kw[:, 0] == pytest.approx([0.0, 1000.0])
    assert needs.solvable.all()


def test_zones_without_effect_cannot_solve():
    needs = compute_needs(**feeder(zone_weights=np.array([[1.0, 0.0, 0.0]])))  # the slack only
    assert not needs.solvable[0]
    assert needs.residual_flow_mw[0, 0] == pytest.approx(0.5)
    assert not needs.up_kw.any()


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError):
        compute_needs(**feeder(base_vm_pu=np.ones((2, 2))))


def reference_volume(ptdf, base_flow, limit, weights):
    """scipy linprog: least total |volume| per zone for one PTU, or None if infeasible."""
    effect = ptdf @ weights.T / 1000.0
    n_z = weights.shape[0]
    a = np.hstack([effect, -effect])
    result = linprog(
        np.ones(2 * n_z),
        A_ub=np.vstack([a, -a]),
        b_ub=np.concatenate([limit - base_flow, limit + base_flow]),
        bounds=[(0, None)] * (2 * n_z),
        method="highs",
    )
    return None if result.status != 0 else result.fun


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 100_000), st.integers(2, 6), st.integers(1, 3))
def test_needs_are_minimal_and_remove_every_linearised_violation(seed, n_b, n_z):
    rng = np.random.default_rng(seed)
    n_l = n_b
    ptdf = np.round(rng.uniform(-1, 1, (n_l, n_b)), 3)
    ptdf[:, 0] = 0.0  # the slack
    base_flow = rng.uniform(-2, 2, (n_l, 1))
    limit = rng.uniform(0.5, 1.5, n_l)
    weights = np.zeros((n_z, n_b))
    for z in range(n_z):
        members = rng.choice(np.arange(1, n_b), size=int(rng.integers(1, n_b)), replace=False)
        weights[z, members] = 1.0 / members.size
    needs = compute_needs(
        ptdf=ptdf, dv_dp=np.zeros((n_b, n_b)), base_flow_mw=base_flow, flow_limit_mw=limit,
        base_vm_pu=np.ones((n_b, 1)), vm_min=np.full(n_b, -INF), vm_max=np.full(n_b, INF), zone_weights=weights,
    )  # fmt: skip
    reference = reference_volume(ptdf, base_flow[:, 0], limit, weights)
    if not needs.congested[0]:
        assert not needs.up_kw.any() and not needs.down_kw.any()
        return
    if reference is None:
        assert not needs.solvable[0]
        assert needs.residual_flow_mw.max() > 0
        return
    assert needs.solvable[0]
    assert (needs.up_kw + needs.down_kw).sum() == pytest.approx(reference, rel=1e-6, abs=1e-2)
    flows = base_flow[:, 0] + ptdf @ (weights.T @ needs.need_kw[:, 0]) / 1000.0
    assert (np.abs(flows) <= limit + 1e-5).all()
