"""Linearised network sensitivities at an operating point: PTDF, voltage sensitivities, base flows (issue 11).

Pure module: a pandapower net in, a dataclass of numpy arrays out; no Django. docs/network.md has the derivation.

Two methods:
- "ac" (default): runs an AC power flow and differentiates it at the converged point. With the Newton-Raphson
  Jacobian J of the bus power mismatches (P at PV and PQ buses, Q at PQ buses) w.r.t. (angle at PV and PQ buses,
  magnitude at PQ buses), [d angle; d |V|] = J^-1 [dP; dQ]. Voltage sensitivities dV/dP and dV/dQ are rows of J^-1;
  flow sensitivities chain pypower's branch-flow derivatives (dSbr_dV) with J^-1. The slack (the external grid's
  bus) absorbs every injection change; PV buses hold their voltage, so dV/dQ at a PV bus is 0.
- "dc": pandapower's DC power flow and pypower's makePTDF on the same internal model pandapower's rundcopp uses
  (reactances only, phase shifts as fixed injections). No voltage information: dV/dP = dV/dQ = 0, |V| = 1.

Units: flows in MW (sending end, pypower's "from" side: a line's from_bus, a transformer's HV side), sensitivities
in MW per MW of injection at the bus (dimensionless) and per-unit voltage per MW / per Mvar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
from pandapower.pypower.dSbr_dV import dSbr_dV
from pandapower.pypower.dSbus_dV import dSbus_dV
from pandapower.pypower.makePTDF import makePTDF

BRANCH_TABLES = ("line", "trafo")


@dataclass(frozen=True)
class Sensitivities:
    """Linearisation of one operating point. Rows of the flow arrays follow (branch_kind, branch_index); columns of
    every bus-indexed array follow `bus` (pandapower bus indices, in service buses only).

    flow(dp, dq) ~= base_flow_mw + ptdf @ dp + qtdf @ dq            (MW, dp and dq in MW / Mvar per bus)
    vm(dp, dq)   ~= base_vm_pu + dv_dp @ dp + dv_dq @ dq            (per unit)
    """

    method: str
    bus: np.ndarray
    slack_bus: int
    branch_kind: np.ndarray
    branch_index: np.ndarray
    ptdf: np.ndarray
    qtdf: np.ndarray
    dv_dp: np.ndarray
    dv_dq: np.ndarray
    base_flow_mw: np.ndarray
    base_flow_mvar: np.ndarray
    base_vm_pu: np.ndarray
    rating_mva: np.ndarray
    base_loading_percent: np.ndarray

    @property
    def n_bus(self) -> int:
        return int(self.bus.size)

    @property
    def n_branch(self) -> int:
        return int(self.branch_index.size)

    def flow_limit_mw(self) -> np.ndarray:
        """Active-flow limit per branch that keeps the sending-end apparent power within its rating, given the base
        reactive flow (the rating itself for the DC method)."""
        return np.sqrt(np.maximum(self.rating_mva**2 - self.base_flow_mvar**2, 0.0))

    def bus_position(self, buses) -> np.ndarray:
        """Column of each pandapower bus index in the bus-indexed arrays."""
        lookup = {int(b): i for i, b in enumerate(self.bus)}
        return np.array([lookup[int(b)] for b in np.atleast_1d(buses)], dtype=int)


def branch_ratings_mva(net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind, index, rating MVA) of every in-service line and transformer, as pandapower's OPF computes RATE_A:
    max_loading_percent (100 if absent) of sqrt(3) * vn_kv * max_i_ka * df * parallel, or of sn_mva * df * parallel.
    """
    kinds, indices, ratings = [], [], []
    for kind in BRANCH_TABLES:
        table = net[kind]
        table = table[table.in_service.values.astype(bool)]
        if not len(table):
            continue
        loading = (
            table.max_loading_percent.fillna(100.0).values
            if "max_loading_percent" in table
            else np.full(len(table), 100.0)
        )
        df = table.df.values if "df" in table else np.ones(len(table))
        parallel = table.parallel.values
        if kind == "line":
            vn = net.bus.loc[table.from_bus.values, "vn_kv"].values
            rating = loading / 100.0 * table.max_i_ka.values * df * parallel * vn * np.sqrt(3.0)
        else:
            rating = loading / 100.0 * table.sn_mva.values * df * parallel
        kinds += [kind] * len(table)
        indices.append(table.index.values)
        ratings.append(rating)
    if not kinds:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=int), np.zeros(0)
    return np.array(kinds, dtype=object), np.concatenate(indices), np.concatenate(ratings)


def _branch_rows(net, kinds: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Row of each (kind, index) in the internal (in service) pypower branch matrix."""
    internal = net._ppc["internal"]
    in_service = np.asarray(internal["branch_is"], dtype=bool)
    internal_row = np.cumsum(in_service) - 1
    rows = np.zeros(indices.size, dtype=int)
    for kind in BRANCH_TABLES:
        mask = kinds == kind
        if not mask.any():
            continue
        start, _ = net._pd2ppc_lookups["branch"][kind]
        position = net[kind].index.get_indexer(indices[mask])
        ppc_rows = start + position
        if not in_service[ppc_rows].all():
            raise ValueError(f"an in-service {kind} is not in the internal model (isolated bus?)")
        rows[mask] = internal_row[ppc_rows]
    return rows


def _bus_columns(net) -> tuple[np.ndarray, np.ndarray]:
    """(pandapower bus index, internal bus column) of every in-service bus that the power flow kept."""
    lookup = net._pd2ppc_lookups["bus"]
    n_internal = net._ppc["internal"]["bus"].shape[0]
    buses = net.bus.index.values[net.bus.in_service.values.astype(bool)]
    columns = lookup[buses]
    kept = (columns >= 0) & (columns < n_internal)
    return buses[kept], columns[kept]


def _slack_pd_bus(net, slack_column: int, buses: np.ndarray, columns: np.ndarray) -> int:
    return int(buses[np.nonzero(columns == slack_column)[0][0]])


def linearise(net, *, method: str = "ac", run_power_flow: bool = True) -> Sensitivities:
    """Sensitivities of `net` at its operating point (runs the power flow unless told the results are current)."""
    if method not in ("ac", "dc"):
        raise ValueError("method must be 'ac' or 'dc'")
    if run_power_flow:
        if method == "ac":
            pp.runpp(net, numba=False)
        else:
            pp.rundcpp(net)
    internal = net._ppc["internal"]
    base_mva = float(internal["baseMVA"])
    ref = np.atleast_1d(internal["ref"]).astype(int)
    if ref.size != 1:
        raise ValueError("exactly one slack bus is supported")
    kinds, indices, ratings = branch_ratings_mva(net)
    rows = _branch_rows(net, kinds, indices)
    buses, columns = _bus_columns(net)
    slack = _slack_pd_bus(net, int(ref[0]), buses, columns)
    branch = internal["branch"]
    n_br, n_b = rows.size, buses.size

    if method == "dc":
        ptdf_internal = makePTDF(base_mva, internal["bus"], branch, slack=int(ref[0]))
        ptdf = ptdf_internal[np.ix_(rows, columns)]
        flows = np.zeros(n_br)
        for kind in BRANCH_TABLES:
            mask = kinds == kind
            if mask.any():
                column = "p_from_mw" if kind == "line" else "p_hv_mw"
                flows[mask] = net[f"res_{kind}"].loc[indices[mask], column].values
        zero_v = np.zeros((n_b, n_b))
        return Sensitivities(
            "dc", buses, slack, kinds, indices, ptdf, np.zeros((n_br, n_b)), zero_v, zero_v.copy(),
            flows, np.zeros(n_br), np.ones(n_b), ratings, _loading(flows, np.zeros(n_br), ratings),
        )  # fmt: skip

    voltage = np.asarray(internal["V"])
    ybus, yf, yt = internal["Ybus"], internal["Yf"], internal["Yt"]
    pv = np.asarray(internal["pv"], dtype=int)
    pq = np.asarray(internal["pq"], dtype=int)
    pvpq = np.concatenate([pv, pq])
    ds_dvm, ds_dva = dSbus_dV(ybus, voltage)
    ds_dvm, ds_dva = _dense(ds_dvm), _dense(ds_dva)
    jacobian = np.block(
        [
            [ds_dva[np.ix_(pvpq, pvpq)].real, ds_dvm[np.ix_(pvpq, pq)].real],
            [ds_dva[np.ix_(pq, pvpq)].imag, ds_dvm[np.ix_(pq, pq)].imag],
        ]
    )
    inverse = np.linalg.inv(jacobian)  # rows (angle pvpq, |V| pq), columns (P pvpq, Q pq), per unit
    n_int = internal["bus"].shape[0]
    n_a = pvpq.size
    # Full internal-bus matrices: d angle / dP, d|V| / dP, d angle / dQ, d|V| / dQ (slack and PV rows/cols zero).
    da_dp, dv_dp, da_dq, dv_dq = (np.zeros((n_int, n_int)) for _ in range(4))
    da_dp[np.ix_(pvpq, pvpq)] = inverse[:n_a, :n_a]
    dv_dp[np.ix_(pq, pvpq)] = inverse[n_a:, :n_a]
    da_dq[np.ix_(pvpq, pq)] = inverse[:n_a, n_a:]
    dv_dq[np.ix_(pq, pq)] = inverse[n_a:, n_a:]
    dsf_dva, dsf_dvm, _, _, sf, _ = dSbr_dV(branch, yf, yt, voltage)
    dsf_dva, dsf_dvm = _dense(dsf_dva)[rows], _dense(dsf_dvm)[rows]
    dsf_dp = dsf_dva @ da_dp + dsf_dvm @ dv_dp
    dsf_dq = dsf_dva @ da_dq + dsf_dvm @ dv_dq
    sf = np.asarray(sf)[rows] * base_mva
    flows_mw, flows_mvar = sf.real, sf.imag
    # Per unit per per unit: MW per MW for flows; per unit voltage per MW after dividing by baseMVA.
    return Sensitivities(
        method="ac",
        bus=buses,
        slack_bus=slack,
        branch_kind=kinds,
        branch_index=indices,
        ptdf=dsf_dp.real[:, columns],
        qtdf=dsf_dq.real[:, columns],
        dv_dp=dv_dp[np.ix_(columns, columns)] / base_mva,
        dv_dq=dv_dq[np.ix_(columns, columns)] / base_mva,
        base_flow_mw=flows_mw,
        base_flow_mvar=flows_mvar,
        base_vm_pu=np.abs(voltage)[columns],
        rating_mva=ratings,
        base_loading_percent=_loading(flows_mw, flows_mvar, ratings),
    )


def _loading(p: np.ndarray, q: np.ndarray, rating: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rating > 0, 100.0 * np.hypot(p, q) / rating, 0.0)


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
