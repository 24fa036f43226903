"""AC validation of a network-aware clearing by successive linear programming (issue 11 item 5).

Pure module: no Django. docs/network.md ("AC validation") describes the loop:
1. AC power flow per PTU at the forecast point; linearise there (grid.sensitivity).
2. Clear the linear model (trading.clearing.network).
3. AC power flow per PTU with the cleared schedule added. Every branch's sending-end apparent power within its
   rating (plus tolerance) and every limited bus voltage within [vm_min, vm_max] (plus tolerance): done.
4. Otherwise re-linearise the violating PTUs at the new point (the other PTUs keep their sensitivities, with the
   linear model re-anchored at the new AC flows) and go to 2; at most max_iterations clearings, and stop early
   when an iteration leaves the violations exactly as they were (stalled: the offers cannot do better).
A run that does not reach AC feasibility returns the last clearing with its residual AC violations and
converged=False; it never raises for that (only for malformed input). A re-solve that finds no optimum (the
re-anchored linear model can put the no-trade point just outside a held limit) ends the loop with the previous
clearing kept (history says so).

Options a network-aware session uses (trading/services/network_clearing.py):
- hold_exceeded: a branch or voltage already beyond its limit at the forecast point is held at its forecast AC
  value (apparent power per branch and PTU; a bus's voltage at its lowest / highest forecast value over the
  PTUs), never tightened below it, in the clearing and in the AC check alike;
- direction: -1 clears a down session as its mirror image (sensitivities change sign in the clearing, the AC
  check adds the cleared kW with their real, negative sign).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from grid.sensitivity import PowerFlowModel, Sensitivities
from trading.clearing.network import NetworkClearingResult, NetworkOrders, NetworkPoint, clear_network


@dataclass
class AcValidationResult:
    """The final clearing and the AC state of every PTU under it.

    ac_loading_percent (L, T) is sending-end apparent power over rating; loading_excess_percent (of the rating)
    and voltage_excess_pu are what remains beyond limit + tolerance (0 where fine); forecast_flow_mva (L, T,
    complex) is the AC flow at the forecast point, forecast_power_flow_failed (T,) where that power flow failed;
    limit_mva (L, T) the apparent power each branch was allowed (its rating, or its forecast flow when held);
    history has one entry per clearing: iteration, PTUs re-linearised, the largest AC loading excess and voltage
    excess after it."""

    clearing: NetworkClearingResult
    iterations: int
    converged: bool
    ac_loading_percent: np.ndarray
    ac_vm_pu: np.ndarray
    loading_excess_percent: np.ndarray
    voltage_excess_pu: np.ndarray
    power_flow_failed: np.ndarray
    forecast_flow_mva: np.ndarray
    forecast_power_flow_failed: np.ndarray
    limit_mva: np.ndarray
    history: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Linearisation:
    ptdf: np.ndarray  # (T, L, B)
    qtdf: np.ndarray
    dv_dp: np.ndarray
    dv_dq: np.ndarray


def _ac_state(model: PowerFlowModel, p_mw, q_mvar, start):
    """Per PTU: (flows MVA complex (L, T), vm (B, T), voltages list, failed (T,)). start: a voltage vector per PTU
    to start Newton-Raphson from, or None to start each PTU from the previous PTU's solution."""
    n_t = p_mw.shape[1]
    flows = np.zeros((model.rows.size, n_t), dtype=complex)
    vm = np.zeros((model.buses.size, n_t))
    voltages, failed = [], np.zeros(n_t, bool)
    for t in range(n_t):
        v0 = start[t] if start is not None else (voltages[-1] if voltages else model.v_start)
        voltage, converged, _ = model.solve(p_mw[:, t], q_mvar[:, t], v0=v0)
        if not converged:
            failed[t] = True
            voltage = v0
        voltages.append(voltage)
        flows[:, t] = model.branch_flows(voltage)
        vm[:, t] = model.bus_vm(voltage)
    return flows, vm, voltages, failed


def _fill(lin: _Linearisation, t: int, sens: Sensitivities) -> None:
    lin.ptdf[t], lin.qtdf[t], lin.dv_dp[t], lin.dv_dq[t] = sens.ptdf, sens.qtdf, sens.dv_dp, sens.dv_dq


def _point(lin, flows, vm, p_now, q_now, ratings, vm_min, vm_max, direction: int = 1) -> NetworkPoint:
    """The linear model anchored at the current AC state: flow(p) = flow_AC + PTDF (p - p_now) + ..., with the
    active-flow limit that keeps the apparent power within the rating (L, or L x T) at the current reactive
    flow. direction -1: the sensitivities change sign (the clearing's injections are the mirror image)."""
    n_t = flows.shape[1]
    base_flow = np.empty(flows.shape)
    base_vm = np.empty(vm.shape)
    for t in range(n_t):
        base_flow[:, t] = flows[:, t].real - lin.ptdf[t] @ p_now[:, t] - lin.qtdf[t] @ q_now[:, t]
        base_vm[:, t] = vm[:, t] - lin.dv_dp[t] @ p_now[:, t] - lin.dv_dq[t] @ q_now[:, t]
    allowed = ratings if ratings.ndim == 2 else ratings[:, None]
    limit = np.sqrt(np.maximum(allowed**2 - flows.imag**2, 0.0))
    if direction < 0:
        return NetworkPoint(
            -lin.ptdf, -lin.qtdf, -lin.dv_dp, -lin.dv_dq, base_flow, base_vm, limit, vm_min, vm_max
        )
    return NetworkPoint(lin.ptdf, lin.qtdf, lin.dv_dp, lin.dv_dq, base_flow, base_vm, limit, vm_min, vm_max)


def _stalled(before: dict, after: dict) -> bool:
    return before["violating_ptus"] == after["violating_ptus"] and all(
        abs(before[key] - after[key]) <= 1e-9 for key in ("max_loading_excess_mva", "max_voltage_excess_pu")
    )


def voltage_limits(model: PowerFlowModel, vm_min: float, vm_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Per model bus: limits where the power flow lets the voltage move (PQ buses), open at the slack and PV buses."""
    pq = np.isin(model.columns, model.pq)
    return np.where(pq, vm_min, -np.inf), np.where(pq, vm_max, np.inf)


def clear_with_ac_validation(
    model: PowerFlowModel,
    orders: NetworkOrders,
    *,
    base_p_mw: np.ndarray,
    base_q_mvar: np.ndarray,
    vm_min: float = 0.95,
    vm_max: float = 1.05,
    max_iterations: int = 5,
    loading_tolerance_percent: float = 0.1,
    voltage_tolerance_pu: float = 1e-4,
    shared_linearisation: bool = False,
    hold_exceeded: bool = False,
    direction: int = 1,
    backend: str = "highspy",
) -> AcValidationResult:
    """Clear `orders` subject to the network of `model` at the forecast point given by per-bus net injections
    base_p_mw / base_q_mvar (B, T) (B = model.buses; order bus positions index the same list).

    shared_linearisation: linearise once, at the PTU with the highest AC loading, and use those sensitivities for
    every PTU (each PTU keeps its own AC flows and voltages as the base); the loop re-linearises violating PTUs
    at their own point anyway. Faster for many PTUs; docs/network.md says what it costs.
    hold_exceeded, direction: see the module docstring.
    """
    n_b, n_t = base_p_mw.shape
    if n_b != model.buses.size or base_q_mvar.shape != (n_b, n_t) or orders.n_ptus != n_t:
        raise ValueError("base injections must be (model buses, PTUs) and match the orders' PTUs")
    if max_iterations < 1:
        raise ValueError("max_iterations must be at least 1")
    if direction not in (1, -1):
        raise ValueError("direction must be 1 or -1")
    timings = {"power_flow": 0.0, "linearise": 0.0, "clearing": 0.0}
    low, high = voltage_limits(model, vm_min, vm_max)
    ratings = model.ratings

    started = time.perf_counter()
    flows, vm, voltages, failed = _ac_state(model, base_p_mw, base_q_mvar, None)
    timings["power_flow"] += time.perf_counter() - started
    forecast_flows, forecast_failed = flows.copy(), failed.copy()
    allowed = np.broadcast_to(ratings[:, None], flows.shape).copy()
    if hold_exceeded:
        allowed = np.maximum(allowed, np.abs(flows))
        if n_t:
            low = np.minimum(low, vm.min(axis=1))
            high = np.maximum(high, vm.max(axis=1))

    started = time.perf_counter()
    n_l = model.rows.size
    lin = _Linearisation(np.zeros((n_t, n_l, n_b)), np.zeros((n_t, n_l, n_b)), np.zeros((n_t, n_b, n_b)),
                         np.zeros((n_t, n_b, n_b)))  # fmt: skip
    if shared_linearisation:
        loading = np.abs(flows) / np.where(ratings > 0, ratings, np.inf)[:, None]
        worst = int(np.argmax(loading.max(axis=0))) if n_l else 0
        sens = model.sensitivities(voltages[worst])
        for t in range(n_t):
            _fill(lin, t, sens)
    else:
        for t in range(n_t):
            _fill(lin, t, model.sensitivities(voltages[t]))
    timings["linearise"] += time.perf_counter() - started

    p_now, q_now = np.zeros((n_b, n_t)), np.zeros((n_b, n_t))
    history: list[dict] = []
    relinearised = np.arange(n_t) if not shared_linearisation else np.zeros(0, int)
    result = None
    loading_excess = np.zeros((n_l, n_t))
    voltage_excess = np.zeros((n_b, n_t))
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        started = time.perf_counter()
        point = _point(lin, flows, vm, p_now, q_now, allowed, low, high, direction)
        solved = clear_network(orders, point, backend=backend)
        timings["clearing"] += time.perf_counter() - started
        if result is not None and solved.status != "optimal":
            # Keep the previous clearing (its AC state is the one measured last).
            history.append({"iteration": iteration, "relinearised_ptus": [int(t) for t in relinearised],
                            "solver_status": solved.status})  # fmt: skip
            iteration -= 1
            break
        result = solved
        if result.status != "optimal":
            break  # the first clearing failed: the caller reads result.status
        p_now, q_now = direction * result.injection_mw, direction * result.injection_mvar

        started = time.perf_counter()
        flows, vm, voltages, failed = _ac_state(model, base_p_mw + p_now, base_q_mvar + q_now, voltages)
        timings["power_flow"] += time.perf_counter() - started
        tolerance = ratings * loading_tolerance_percent / 100.0
        loading_excess = np.maximum(np.abs(flows) - (allowed + tolerance[:, None]), 0.0)
        voltage_excess = np.maximum(
            np.maximum(
                vm - (high + voltage_tolerance_pu)[:, None], (low - voltage_tolerance_pu)[:, None] - vm
            ),
            0.0,
        )
        violating = (loading_excess > 0).any(axis=0) | (voltage_excess > 0).any(axis=0) | failed
        history.append(
            {
                "iteration": iteration,
                "relinearised_ptus": [int(t) for t in relinearised],
                "max_loading_excess_mva": float(loading_excess.max(initial=0.0)),
                "max_voltage_excess_pu": float(voltage_excess.max(initial=0.0)),
                "violating_ptus": [int(t) for t in np.nonzero(violating)[0]],
            }
        )
        if not violating.any() or iteration == max_iterations:
            break
        if len(history) > 1 and _stalled(history[-2], history[-1]):
            break  # re-linearising changed nothing: these offers cannot do better
        started = time.perf_counter()
        relinearised = np.nonzero(violating & ~failed)[0]
        for t in relinearised:
            _fill(lin, t, model.sensitivities(voltages[t]))
        timings["linearise"] += time.perf_counter() - started

    with np.errstate(divide="ignore", invalid="ignore"):
        loading_percent = np.where(ratings[:, None] > 0, 100.0 * np.abs(flows) / ratings[:, None], 0.0)
    excess_percent = np.where(
        ratings[:, None] > 0, 100.0 * loading_excess / np.maximum(ratings[:, None], 1e-12), 0.0
    )
    converged = bool(not excess_percent.any() and not voltage_excess.any() and not failed.any())
    return AcValidationResult(
        clearing=result,
        iterations=iteration,
        converged=converged,
        ac_loading_percent=loading_percent,
        ac_vm_pu=vm,
        loading_excess_percent=excess_percent,
        voltage_excess_pu=voltage_excess,
        power_flow_failed=failed,
        forecast_flow_mva=forecast_flows,
        forecast_power_flow_failed=forecast_failed,
        limit_mva=allowed,
        history=history,
        timings=timings,
    )
