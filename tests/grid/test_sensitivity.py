"""Sensitivities against perturbed pandapower power flows, and the fast power-flow model against runpp."""

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from grid.sensitivity import bus_injections, linearise, power_flow_model

pytestmark = pytest.mark.filterwarnings("ignore")
STEP_MW = 0.2


def _branch_flows(net, sens):
    flows = np.zeros(sens.n_branch)
    for kind, column in (("line", "p_from_mw"), ("trafo", "p_hv_mw")):
        mask = sens.branch_kind == kind
        if mask.any():
            flows[mask] = net[f"res_{kind}"].loc[sens.branch_index[mask], column].values
    return flows


@pytest.fixture(scope="module")
def case30():
    net = pn.case30()
    return net, linearise(net)


def test_base_point_is_pandapowers_power_flow(case30):
    net, sens = case30
    assert sens.base_flow_mw == pytest.approx(_branch_flows(net, sens), abs=1e-6)
    assert sens.base_vm_pu == pytest.approx(net.res_bus.vm_pu.loc[sens.bus].values, abs=1e-9)
    assert sens.slack_bus == int(net.ext_grid.bus.iloc[0])
    assert sens.ptdf.shape == (len(net.line) + len(net.trafo), len(net.bus))


@pytest.mark.parametrize("bus", [5, 20, 29])
@pytest.mark.parametrize("kind", ["p", "q"])
def test_sensitivities_predict_a_perturbed_power_flow(case30, bus, kind):
    net, sens = case30
    moved = copy.deepcopy(net)
    pp.create_sgen(moved, bus, p_mw=STEP_MW if kind == "p" else 0.0, q_mvar=STEP_MW if kind == "q" else 0.0)
    pp.runpp(moved)
    column = sens.bus_position(bus)[0]
    flow_change = (_branch_flows(moved, sens) - sens.base_flow_mw) / STEP_MW
    vm_change = (moved.res_bus.vm_pu.loc[sens.bus].values - sens.base_vm_pu) / STEP_MW
    flow_sens = (sens.ptdf if kind == "p" else sens.qtdf)[:, column]
    vm_sens = (sens.dv_dp if kind == "p" else sens.dv_dq)[:, column]
    # First order: the error is second order in the step (a few 1e-4 of the flow change per MW here).
    assert flow_change == pytest.approx(flow_sens, abs=5e-4)
    assert vm_change == pytest.approx(vm_sens, abs=1e-5)


def test_slack_and_pv_buses_hold_their_voltage(case30):
    net, sens = case30
    held = np.concatenate([net.ext_grid.bus.values, net.gen.bus.values])
    columns = sens.bus_position(held)
    assert not sens.dv_dq[columns].any()
    assert not sens.dv_dq[:, columns].any()
    assert not sens.ptdf[:, sens.bus_position(sens.slack_bus)].any()


def test_dc_ptdf_reproduces_pandapowers_dc_power_flow():
    net = pn.case9()
    sens = linearise(net, method="dc")
    base = sens.base_flow_mw.copy()
    moved = copy.deepcopy(net)
    pp.create_sgen(moved, 6, p_mw=10.0)
    pp.rundcpp(moved)
    assert _branch_flows(moved, sens) - base == pytest.approx(
        10.0 * sens.ptdf[:, sens.bus_position(6)[0]], abs=1e-9
    )
    assert not sens.dv_dp.any() and (sens.base_vm_pu == 1.0).all()


def test_ratings_follow_pandapowers_rate_a():
    net = pn.case9()
    net.line["max_loading_percent"] = 50.0
    sens = linearise(net)
    expected = 0.5 * net.line.max_i_ka * net.bus.vn_kv.loc[net.line.from_bus].values * np.sqrt(3)
    assert sens.rating_mva == pytest.approx(expected.values)
    assert (sens.flow_limit_mw() <= sens.rating_mva + 1e-12).all()


def test_power_flow_model_matches_runpp_on_changed_injections():
    simbench = pytest.importorskip("simbench")
    net = simbench.get_simbench_net("1-MV-semiurb--0-sw")
    model = power_flow_model(net)
    changed = copy.deepcopy(net)
    changed.load[["p_mw", "q_mvar"]] *= 1.8
    changed.sgen["p_mw"] *= 0.3
    pp.runpp(changed)
    p, q = bus_injections(changed, model.buses)
    voltage, converged, iterations = model.solve(p, q)
    assert converged and iterations <= 6
    assert model.bus_vm(voltage) == pytest.approx(changed.res_bus.vm_pu.loc[model.buses].values, abs=1e-8)
    flows = model.branch_flows(voltage)
    lines = model.kinds == "line"
    assert flows.real[lines] == pytest.approx(
        changed.res_line.p_from_mw.loc[model.indices[lines]].values, abs=1e-6
    )
    # And its linearisation at that point equals linearise() on the changed net.
    assert model.sensitivities(voltage).dv_dp == pytest.approx(linearise(changed).dv_dp, abs=1e-10)


def test_voltage_dependent_loads_are_refused():
    net = pn.case9()
    net.load["const_z_percent"] = 50.0
    with pytest.raises(ValueError, match="voltage-dependent"):
        bus_injections(net, net.bus.index.values)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        linearise(pn.case9(), method="exact")
