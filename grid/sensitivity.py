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
from pandapower.pypower.idx_brch import F_BUS
from pandapower.pypower.makePTDF import makePTDF
from scipy import sparse
from scipy.sparse.linalg import splu, spsolve

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


@dataclass
class PowerFlowModel:
    """pandapower's internal model of one network, kept to run many AC power flows and linearisations fast.

    Only bus injections change between calls (per PTU profiles, cleared flexibility); topology, tap positions and
    voltage set-points stay as in the net. Loads, static generators, generators and storage are constant power.
    """

    base_mva: float
    ybus: sparse.csr_matrix
    yf: sparse.csr_matrix
    yt: sparse.csr_matrix
    branch: np.ndarray
    rows: np.ndarray
    buses: np.ndarray
    columns: np.ndarray
    kinds: np.ndarray
    indices: np.ndarray
    ratings: np.ndarray
    ref: int
    pv: np.ndarray
    pq: np.ndarray
    v_start: np.ndarray
    slack_bus: int

    @property
    def n_internal(self) -> int:
        return int(self.ybus.shape[0])

    def sbus(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
        """Internal per-unit injection vector from net injections per model bus (MW, Mvar; fused buses add up)."""
        sbus = np.zeros(self.n_internal, dtype=complex)
        np.add.at(sbus, self.columns, (np.asarray(p_mw) + 1j * np.asarray(q_mvar)) / self.base_mva)
        return sbus

    def solve(
        self, p_mw: np.ndarray, q_mvar: np.ndarray, *, v0: np.ndarray | None = None, tol: float = 1e-8,
        max_iterations: int = 20,
    ) -> tuple[np.ndarray, bool, int]:  # fmt: skip
        """Newton-Raphson AC power flow (polar, as pandapower's newtonpf). Returns (V internal, converged, iterations)."""
        sbus = self.sbus(p_mw, q_mvar)
        voltage = np.array(self.v_start if v0 is None else v0, dtype=complex)
        pvpq = np.concatenate([self.pv, self.pq])
        n_a = pvpq.size
        for iteration in range(max_iterations + 1):
            mismatch = voltage * np.conj(self.ybus @ voltage) - sbus
            residual = np.concatenate([mismatch[pvpq].real, mismatch[self.pq].imag])
            if np.abs(residual).max(initial=0.0) < tol:
                return voltage, True, iteration
            if iteration == max_iterations:
                break
            ds_dvm, ds_dva = dSbus_dV(self.ybus, voltage)
            jacobian = sparse.bmat(
                [
                    [ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, self.pq].real],
                    [ds_dva[self.pq][:, pvpq].imag, ds_dvm[self.pq][:, self.pq].imag],
                ],
                format="csc",
            )
            step = spsolve(jacobian, -residual)
            angle, magnitude = np.angle(voltage), np.abs(voltage)
            angle[pvpq] += step[:n_a]
            magnitude[self.pq] += step[n_a:]
            voltage = magnitude * np.exp(1j * angle)
        return voltage, False, max_iterations

    def branch_flows(self, voltage: np.ndarray) -> np.ndarray:
        """Complex sending-end power (MVA) of every model branch."""
        current = self.yf @ voltage
        sending = self.branch[:, F_BUS].real.astype(int)
        return (voltage[sending] * np.conj(current))[self.rows] * self.base_mva

    def bus_vm(self, voltage: np.ndarray) -> np.ndarray:
        return np.abs(voltage)[self.columns]

    def sensitivities(self, voltage: np.ndarray) -> Sensitivities:
        """Linearisation at a converged internal voltage vector (see the module docstring)."""
        pv, pq, columns, rows = self.pv, self.pq, self.columns, self.rows
        pvpq = np.concatenate([pv, pq])
        ds_dvm, ds_dva = dSbus_dV(self.ybus, voltage)
        jacobian = sparse.bmat(
            [
                [ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real],
                [ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag],
            ],
            format="csc",
        )
        # J^-1 by a sparse LU (rows: angle pvpq, |V| pq; columns: P pvpq, Q pq; per unit).
        inverse = splu(jacobian).solve(np.eye(jacobian.shape[0]))
        n_int, n_a = self.n_internal, pvpq.size
        # d angle / dP, d|V| / dP, d angle / dQ, d|V| / dQ over internal buses (slack and PV rows/cols zero).
        da_dp, dv_dp, da_dq, dv_dq = (np.zeros((n_int, n_int)) for _ in range(4))
        da_dp[np.ix_(pvpq, pvpq)] = inverse[:n_a, :n_a]
        dv_dp[np.ix_(pq, pvpq)] = inverse[n_a:, :n_a]
        da_dq[np.ix_(pvpq, pq)] = inverse[:n_a, n_a:]
        dv_dq[np.ix_(pq, pq)] = inverse[n_a:, n_a:]
        dsf_dva, dsf_dvm, _, _, _, _ = dSbr_dV(self.branch, self.yf, self.yt, voltage)
        dsf_dva = sparse.csr_matrix(dsf_dva)[rows]
        dsf_dvm = sparse.csr_matrix(dsf_dvm)[rows]
        dsf_dp = dsf_dva @ da_dp + dsf_dvm @ dv_dp
        dsf_dq = dsf_dva @ da_dq + dsf_dvm @ dv_dq
        flows = self.branch_flows(voltage)
        return Sensitivities(
            method="ac",
            bus=self.buses,
            slack_bus=self.slack_bus,
            branch_kind=self.kinds,
            branch_index=self.indices,
            ptdf=dsf_dp.real[:, columns],
            qtdf=dsf_dq.real[:, columns],
            dv_dp=dv_dp[np.ix_(columns, columns)] / self.base_mva,
            dv_dq=dv_dq[np.ix_(columns, columns)] / self.base_mva,
            base_flow_mw=flows.real,
            base_flow_mvar=flows.imag,
            base_vm_pu=np.abs(voltage)[columns],
            rating_mva=self.ratings,
            base_loading_percent=_loading(flows.real, flows.imag, self.ratings),
        )


def power_flow_model(net, *, run_power_flow: bool = True) -> PowerFlowModel:
    """Run pandapower's AC power flow once (unless its results are current) and keep its internal model (Ybus,
    branch data, bus types, the converged voltages as the starting point and set-points)."""
    if run_power_flow:
        pp.runpp(net, numba=False)
    internal = net._ppc["internal"]
    ref = np.atleast_1d(internal["ref"]).astype(int)
    if ref.size != 1:
        raise ValueError("exactly one slack bus is supported")
    kinds, indices, ratings = branch_ratings_mva(net)
    buses, columns = _bus_columns(net)
    return PowerFlowModel(
        base_mva=float(internal["baseMVA"]),
        ybus=sparse.csr_matrix(internal["Ybus"]),
        yf=sparse.csr_matrix(internal["Yf"]),
        yt=sparse.csr_matrix(internal["Yt"]),
        branch=internal["branch"],
        rows=_branch_rows(net, kinds, indices),
        buses=buses,
        columns=columns,
        kinds=kinds,
        indices=indices,
        ratings=ratings,
        ref=int(ref[0]),
        pv=np.asarray(internal["pv"], dtype=int),
        pq=np.asarray(internal["pq"], dtype=int),
        v_start=np.asarray(internal["V"]).copy(),
        slack_bus=_slack_pd_bus(net, int(ref[0]), buses, columns),
    )


INJECTING = {"sgen": 1.0, "gen": 1.0, "load": -1.0, "storage": -1.0}


def bus_injections(net, buses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net injection (MW, Mvar) per given pandapower bus from in-service loads, sgens, gens and storage
    (p * scaling; generation positive). Voltage-dependent load shares are not supported (ValueError)."""
    position = {int(b): i for i, b in enumerate(buses)}
    p, q = np.zeros(buses.size), np.zeros(buses.size)
    for table, sign in INJECTING.items():
        frame = net[table]
        frame = frame[frame.in_service.values.astype(bool)]
        if not len(frame):
            continue
        for column in ("const_z_p_percent", "const_i_p_percent", "const_z_percent", "const_i_percent"):
            if column in frame and (frame[column].fillna(0) != 0).any():
                raise ValueError(f"{table}: voltage-dependent loads are not supported")
        scaling = frame.scaling.values if "scaling" in frame else np.ones(len(frame))
        at = np.array([position[int(b)] for b in frame.bus.values])
        np.add.at(p, at, sign * frame.p_mw.values * scaling)
        if table != "gen":
            np.add.at(q, at, sign * frame.q_mvar.values * scaling)
    return p, q


def linearise(net, *, method: str = "ac", run_power_flow: bool = True) -> Sensitivities:
    """Sensitivities of `net` at its operating point (runs the power flow unless told the results are current)."""
    if method not in ("ac", "dc"):
        raise ValueError("method must be 'ac' or 'dc'")
    if method == "ac":
        model = power_flow_model(net, run_power_flow=run_power_flow)
        return model.sensitivities(model.v_start)
    if run_power_flow:
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
    n_br, n_b = rows.size, buses.size
    ptdf_internal = makePTDF(base_mva, internal["bus"], internal["branch"], slack=int(ref[0]))
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


def _loading(p: np.ndarray, q: np.ndarray, rating: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rating > 0, 100.0 * np.hypot(p, q) / rating, 0.0)


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def linearise_points(net, injections, rows) -> list[Sensitivities]:
    """AC linearisation at each given PTU's operating point (grid/timeseries.py's Injections, rows in order).

    One pandapower power flow builds the model; each PTU is then a Newton-Raphson on its bus injections
    (warm-started from the previous PTU) and `PowerFlowModel.sensitivities` at the converged point. Raises
    ValueError naming the first PTU whose power flow does not converge. The caller's network is not changed."""
    import copy

    from grid.timeseries import pandapower_points

    try:
        model = power_flow_model(copy.deepcopy(net))
    except pp.LoadflowNotConverged as error:
        raise ValueError("the AC power flow of the network's own values does not converge") from error
    points, voltage = [], None
    for row, point in pandapower_points(net, injections, rows):
        p_mw, q_mvar = bus_injections(point, model.buses)
        voltage, converged, _ = model.solve(p_mw, q_mvar, v0=voltage)
        if not converged:
            raise ValueError(f"the AC power flow does not converge at PTU {int(row)} of the operating point")
        points.append(model.sensitivities(voltage))
    return points


def operating_points(net, injections, rows) -> tuple[PowerFlowModel, np.ndarray, np.ndarray]:
    """The power-flow model of `net` and the net bus injections (MW, Mvar; rows: model.buses, columns: the given
    PTUs in order) of each PTU's operating point: what AC validation (trading/clearing/network_ac.py) needs to
    linearise, re-run and re-linearise the point itself. Raises ValueError when the network's own power flow
    does not converge. The caller's network is not changed."""
    import copy

    from grid.timeseries import pandapower_points

    try:
        model = power_flow_model(copy.deepcopy(net))
    except pp.LoadflowNotConverged as error:
        raise ValueError("the AC power flow of the network's own values does not converge") from error
    p_columns, q_columns = [], []
    for _, point in pandapower_points(net, injections, rows):
        p_mw, q_mvar = bus_injections(point, model.buses)
        p_columns.append(p_mw)
        q_columns.append(q_mvar)
    n_b = model.buses.size
    p = np.stack(p_columns, axis=1) if p_columns else np.zeros((n_b, 0))
    q = np.stack(q_columns, axis=1) if q_columns else np.zeros((n_b, 0))
    return model, p, q
