"""Flexibility needs from a congestion forecast: the smallest volume per zone and PTU that brings every line and
voltage within limits, from sensitivities linearised at the forecast point (issue 11 item 3).

Pure module: numpy arrays in, a dataclass out; no Django. docs/network.md describes the model.

One LP over the congested PTUs (kW; a zone's volume spreads over its buses by the given weights; the slack bus
balances it):
    minimise  sum_z,t (up_zt + down_zt) * (1 + TIE * z)  +  PENALTY * (flow and voltage violation slacks)
    s.t.      -limit_l <= base_flow_lt + PTDF_t W (up_t - down_t) / 1000 + s <= limit_l
              vmin_b <= base_vm_bt + dVdP_t W (up_t - down_t) / 1000 + s <= vmax_b
              0 <= up_zt, down_zt <= zone_max_kw_z (if given)
TIE (1e-9 per zone position) decides between zones that do the same job: the earlier zone wins.
A PTU whose slacks stay positive "cannot be solved with these zones"; its residual violation is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
from scipy import sparse

KW_PER_MW = 1000.0
PENALTY = 1e6  # per MW of line overload (or per 0.01 pu of voltage violation), against 1 per kW of volume
VOLTAGE_SCALE = 100.0  # 0.01 pu counts as 1 MW of overload in the penalty
TIE = 1e-9
TOLERANCE_MW = 1e-6
TOLERANCE_PU = 1e-8


@dataclass
class Needs:
    """Per zone and PTU: up_kw, down_kw, signed need_kw (up positive) and direction ("up", "down" or "").

    solvable[t] is False where these zones cannot remove the violation; residual_* hold what remains (MW, pu)."""

    up_kw: np.ndarray
    down_kw: np.ndarray
    congested: np.ndarray
    solvable: np.ndarray
    residual_flow_mw: np.ndarray
    residual_voltage_pu: np.ndarray
    status: str

    @property
    def need_kw(self) -> np.ndarray:
        return self.up_kw - self.down_kw

    @property
    def direction(self) -> np.ndarray:
        need = self.need_kw
        return np.where(need > 1e-6, "up", np.where(need < -1e-6, "down", ""))


def _at(matrix: np.ndarray, t: int) -> np.ndarray:
    return matrix[t] if matrix.ndim == 3 else matrix


def _violations(flow, limit, vm, vm_min, vm_max) -> tuple[np.ndarray, np.ndarray]:
    flow_excess = np.maximum(np.abs(flow) - limit, 0.0)
    volt_excess = np.maximum(np.maximum(vm - vm_max[:, None], vm_min[:, None] - vm), 0.0)
    return flow_excess, volt_excess


def compute_needs(
    *,
    ptdf: np.ndarray,
    dv_dp: np.ndarray,
    base_flow_mw: np.ndarray,
    flow_limit_mw: np.ndarray,
    base_vm_pu: np.ndarray,
    vm_min: np.ndarray,
    vm_max: np.ndarray,
    zone_weights: np.ndarray,
    zone_max_kw: np.ndarray | None = None,
) -> Needs:
    """Needs per zone (rows of zone_weights, (Z, B), each row summing to 1 over its buses) and PTU.

    ptdf (T?, L, B), dv_dp (T?, B, B), base_flow_mw (L, T), flow_limit_mw (L,) or (L, T), base_vm_pu (B, T),
    vm_min / vm_max (B,) (use -inf / inf where a bus's voltage is not limited)."""
    n_l, n_t = base_flow_mw.shape
    n_z, n_b = zone_weights.shape
    limit = np.broadcast_to(flow_limit_mw[:, None] if flow_limit_mw.ndim == 1 else flow_limit_mw, (n_l, n_t))
    if base_vm_pu.shape != (n_b, n_t) or _at(ptdf, 0).shape != (n_l, n_b):
        raise ValueError("sensitivity shapes do not match the buses and branches")
    if (zone_weights < 0).any():
        raise ValueError("zone weights must not be negative")
    flow_excess, volt_excess = _violations(base_flow_mw, limit, base_vm_pu, vm_min, vm_max)
    congested = (flow_excess > TOLERANCE_MW).any(axis=0) | (volt_excess > TOLERANCE_PU).any(axis=0)
    up = np.zeros((n_z, n_t))
    down = np.zeros((n_z, n_t))
    residual_flow = np.zeros((n_l, n_t))
    residual_volt = np.zeros((n_b, n_t))
    ptus = np.nonzero(congested)[0]
    if not ptus.size:
        return Needs(up, down, congested, np.ones(n_t, bool), residual_flow, residual_volt, "optimal")

    # Columns per congested PTU k: up (Z), down (Z); then two slacks per row.
    n_k = ptus.size
    n_vol = 2 * n_z * n_k
    rows, cols, vals, lo, hi = [], [], [], [], []
    count = 0
    for k, t in enumerate(ptus):
        effect_p = _at(ptdf, t) @ zone_weights.T / KW_PER_MW  # (L, Z) MW per kW
        effect_v = _at(dv_dp, t) @ zone_weights.T / KW_PER_MW  # (B, Z) pu per kW
        for effect, base, low, high in (
            (effect_p, base_flow_mw[:, t], -limit[:, t], limit[:, t]),
            (effect_v, base_vm_pu[:, t], vm_min, vm_max),
        ):
            keep = np.isfinite(low) | np.isfinite(high)
            effect, base, low, high = effect[keep], base[keep], low[keep], high[keep]
            r, z = np.nonzero(np.abs(effect) > 1e-15)
            n = base.size
            rows += [count + r, count + r]
            cols += [k * 2 * n_z + z, k * 2 * n_z + n_z + z]
            vals += [effect[r, z], -effect[r, z]]
            lo.append(low - base)
            hi.append(high - base)
            count += n
    n_rows = count
    n_cols = n_vol + 2 * n_rows
    slack = n_vol + np.arange(n_rows)
    # Voltage rows get a scaled slack so that 0.01 pu costs like 1 MW.
    scale = np.ones(n_rows)
    offset = 0
    for t in ptus:
        n_flow = int((np.isfinite(limit[:, t])).sum())
        n_volt = int((np.isfinite(vm_min) | np.isfinite(vm_max)).sum())
        scale[offset + n_flow : offset + n_flow + n_volt] = 1.0 / VOLTAGE_SCALE
        offset += n_flow + n_volt
    rows += [slack - n_vol, slack - n_vol]
    cols += [slack, slack + n_rows]
    vals += [scale, -scale]
    matrix = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols)
    )
    matrix.sort_indices()
    zone_cost = 1.0 + TIE * np.arange(n_z)
    cost = np.concatenate(
        [np.tile(np.concatenate([zone_cost, zone_cost]), n_k), np.full(2 * n_rows, PENALTY)]
    )
    upper_volume = np.inf if zone_max_kw is None else np.tile(np.concatenate([zone_max_kw, zone_max_kw]), n_k)
    upper = np.concatenate([np.broadcast_to(upper_volume, (n_vol,)), np.full(2 * n_rows, np.inf)])

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, n_rows
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = upper
    lp.row_lower_ = np.concatenate(lo)
    lp.row_upper_ = np.concatenate(hi)
    lp.sense_ = highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    highs.passModel(lp)
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")
    if status != "optimal":
        solvable = ~congested
        residual_flow[:, ptus], residual_volt[:, ptus] = flow_excess[:, ptus], volt_excess[:, ptus]
        return Needs(up, down, congested, solvable, residual_flow, residual_volt, status)
    values = np.asarray(highs.getSolution().col_value)
    volumes = values[:n_vol].reshape(n_k, 2, n_z)
    up[:, ptus] = np.round(volumes[:, 0, :].T, 3)
    down[:, ptus] = np.round(volumes[:, 1, :].T, 3)
    # Residual: the linearised network after the needs (not the slacks, which the rounding may blur).
    solvable = np.ones(n_t, bool)
    for t in ptus:
        injection = zone_weights.T @ (up[:, t] - down[:, t]) / KW_PER_MW
        flow = base_flow_mw[:, t] + _at(ptdf, t) @ injection
        vm = base_vm_pu[:, t] + _at(dv_dp, t) @ injection
        f_excess, v_excess = _violations(flow[:, None], limit[:, t : t + 1], vm[:, None], vm_min, vm_max)
        residual_flow[:, t] = np.where(f_excess[:, 0] > 1e-3 / KW_PER_MW * 10, f_excess[:, 0], 0.0)
        residual_volt[:, t] = np.where(v_excess[:, 0] > 1e-6, v_excess[:, 0], 0.0)
        solvable[t] = not (residual_flow[:, t].any() or residual_volt[:, t].any())
    return Needs(up, down, congested, solvable, residual_flow, residual_volt, status)


def needs_for_forecast(
    net,
    injections,
    *,
    ptus: list[int],
    zone_buses: dict[int, list[int]],
    vm_min: float = 0.95,
    vm_max: float = 1.05,
) -> dict:
    """Needs at a forecast's congested PTUs: each PTU's operating point (grid/timeseries.py's Injections) is
    linearised by an AC power flow (grid/sensitivity.py) and `compute_needs` finds the smallest volume per zone.

    A zone's volume spreads equally over its buses. Returns {"zones": {zone id: {PTU index: kW, up positive}},
    "unsolvable": [PTU indexes these zones cannot relieve], "linear_ok": [PTU indexes the forecast calls congested
    but whose linearised point has no violation (loading measured differently: current vs apparent power)]}.
    """
    import warnings

    from grid.sensitivity import linearise
    from grid.timeseries import pandapower_points

    zone_ids = sorted(zone_buses)
    result: dict = {"zones": {}, "unsolvable": [], "linear_ok": []}
    for t, net_at_t in pandapower_points(net, injections, ptus):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            point = linearise(net_at_t)
        known = {int(b) for b in point.bus}
        weights = np.zeros((len(zone_ids), point.n_bus))
        for row, zone_id in enumerate(zone_ids):
            buses = [b for b in zone_buses[zone_id] if int(b) in known]
            if buses:
                weights[row, point.bus_position(buses)] = 1.0 / len(buses)
        found = compute_needs(
            ptdf=point.ptdf,
            dv_dp=point.dv_dp,
            base_flow_mw=point.base_flow_mw[:, None],
            flow_limit_mw=point.flow_limit_mw(),
            base_vm_pu=point.base_vm_pu[:, None],
            vm_min=np.full(point.n_bus, vm_min),
            vm_max=np.full(point.n_bus, vm_max),
            zone_weights=weights,
        )
        if not found.congested[0]:
            result["linear_ok"].append(int(t))
            continue
        if not found.solvable[0]:
            result["unsolvable"].append(int(t))
        for row, zone_id in enumerate(zone_ids):
            need = float(found.need_kw[row, 0])
            if abs(need) > 1e-3:
                result["zones"].setdefault(str(zone_id), {})[str(int(t))] = round(need, 3)
    return result
