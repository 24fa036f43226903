"""Network-aware auction clearing with locational prices: D-LMP (active) and Q-LMP (reactive) per bus and PTU.

Pure module: numpy arrays in, dataclasses out; no Django, no pandapower (the network arrives linearised, see
grid/sensitivity.py). docs/network.md has the formulation, the price decomposition and its limits.

Model, all PTUs in one LP (p, q in MW / Mvar per bus; x, r, y in kW / kVAr; prices in EUR/MWh, EUR/Mvarh):
    maximise  sum_r,t v_r y_rt - sum_o,t c_o x_ot - sum_o,t k_o (r+_ot + r-_ot)     (all / 1000: EUR per hour)
    s.t. nodal:    p_bt = sum_{o at b} d_o x_ot / 1000 - sum_r d_r w_rb y_rt / 1000       (dual: D-LMP)
                   q_bt = sum_{o at b} (r+_ot - r-_ot) / 1000                             (dual: Q-LMP)
         energy:   sum_b p_bt = 0                                                           (dual: energy price)
         lines:    -limit_l <= base_flow_lt + PTDF_t p_t + QTDF_t q_t + s+ - s- <= limit_l
         voltage:  vmin_b <= base_vm_bt + dVdP_t p_t + dVdQ_t q_t + s+ - s- <= vmax_b
         0 <= x_ot <= qty_ot, 0 <= y_rt <= qty_rt, 0 <= r+_ot <= qmax_o, 0 <= r-_ot <= -qmin_o
d is +1 for up (more injection), -1 for down; w_rb spreads a request over its bus or zone. Prices are signed
payments for the order's direction: an up offer is accepted when the D-LMP at its bus is at least its price, a down
offer when minus the D-LMP is (a seller who pays to move down states a negative price). Violation slacks s cost
VIOLATION_PENALTY, so a network that cannot be brought within limits still clears and reports the residual.

Ties: offers are passed oldest first, like trading/clearing/auction.py; each offer's cost gets a penalty and each
request's value a credit, both below PRICE_STEP and monotone in age, so the primal optimum is unique and the
older of two equal orders wins.
Degenerate prices: the duals are not read from the solver. After the primal solve the prices are the dual solution
that, among all dual-optimal ones (complementary slackness with the cleared schedule), minimises the sum of D-LMPs
over buses and PTUs (the least buyers pay, as in auction.py), then (weight 1e-6) the sum of |shadow prices|.
Lines and buses that cannot bind whatever is accepted are screened out before building (exact); of the rest,
rows enter the LP by row generation: those near their limit at the base point first, then every row a solution
oversteps, until none does (the final LP has the same optimum as the full one; omitted rows have zero duals).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib.metadata import version

import highspy
import numpy as np
from scipy import sparse

PRICE_STEP = 1e-4  # EUR/MWh, as in auction.py
TIE_BREAK = 0.2  # price steps
VIOLATION_PENALTY = (
    1e5  # EUR/MWh of line overload, EUR per per-unit-voltage-MW-equivalent (see docs/network.md)
)
VOLTAGE_PENALTY_SCALE = 100.0  # MW of penalty weight per per-unit voltage violation
KW_PER_MW = 1000.0
# Objective per kW in price steps: EUR/MWh / 1000 / PRICE_STEP. The tie-break differences (TIE_BREAK price steps
# per kW, 0.2) then stay far above the solver's optimality tolerance (1e-7), as in auction.py.
OBJECTIVE_SCALE = 1.0 / (KW_PER_MW * PRICE_STEP)
MAX_ROUNDS = 20  # row generation rounds before falling back to every screened row
PRICE_BOUND = 1e7  # EUR/MWh; only reached in PTUs without any accepted order (their prices are NaN)
EPS = 1e-7
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class NetworkPoint:
    """The network linearised at its operating point, per PTU.

    Arrays with a leading PTU axis vary by PTU; without it they are shared: ptdf/qtdf (T?, L, B), dv_dp/dv_dq
    (T?, B, B), base_flow_mw (L, T), base_vm_pu (B, T), flow_limit_mw (L,) or (L, T), vm_min/vm_max (B,).
    Buses whose voltage is not limited (the slack, PV buses) get vm_min = -inf, vm_max = inf.
    """

    ptdf: np.ndarray
    qtdf: np.ndarray
    dv_dp: np.ndarray
    dv_dq: np.ndarray
    base_flow_mw: np.ndarray
    base_vm_pu: np.ndarray
    flow_limit_mw: np.ndarray
    vm_min: np.ndarray
    vm_max: np.ndarray

    @property
    def n_branches(self) -> int:
        return int(self.base_flow_mw.shape[0])

    @property
    def n_buses(self) -> int:
        return int(self.base_vm_pu.shape[0])

    @property
    def n_ptus(self) -> int:
        return int(self.base_flow_mw.shape[1])

    def at(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ptdf, qtdf, dv_dp, dv_dq) at PTU t."""
        return tuple(m[t] if m.ndim == 3 else m for m in (self.ptdf, self.qtdf, self.dv_dp, self.dv_dq))

    def limit(self) -> np.ndarray:
        limit = np.asarray(self.flow_limit_mw, dtype=float)
        return np.broadcast_to(limit[:, None] if limit.ndim == 1 else limit, self.base_flow_mw.shape)

    def flows(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
        """Linearised flows (L, T) for injection changes p, q (B, T)."""
        out = np.empty_like(self.base_flow_mw, dtype=float)
        for t in range(self.n_ptus):
            ptdf, qtdf, _, _ = self.at(t)
            out[:, t] = self.base_flow_mw[:, t] + ptdf @ p_mw[:, t] + qtdf @ q_mvar[:, t]
        return out

    def voltages(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> np.ndarray:
        out = np.empty_like(self.base_vm_pu, dtype=float)
        for t in range(self.n_ptus):
            _, _, dv_dp, dv_dq = self.at(t)
            out[:, t] = self.base_vm_pu[:, t] + dv_dp @ p_mw[:, t] + dv_dq @ q_mvar[:, t]
        return out


def network_point(sensitivities, *, vm_min: float = 0.95, vm_max: float = 1.05) -> NetworkPoint:
    """One PTU's NetworkPoint from a grid.sensitivity.Sensitivities (duck-typed; no import of grid here).

    Voltage limits apply where the linearisation can move the voltage (PQ buses); elsewhere they are open."""
    return stack_points([sensitivities], vm_min=vm_min, vm_max=vm_max)


def stack_points(sensitivities: list, *, vm_min: float = 0.95, vm_max: float = 1.05) -> NetworkPoint:
    """A NetworkPoint over len(sensitivities) PTUs, one linearisation per PTU (same buses and branches)."""
    first = sensitivities[0]
    movable = (np.abs(first.dv_dp).sum(axis=1) + np.abs(first.dv_dq).sum(axis=1)) > 0
    low = np.where(movable, vm_min, -np.inf)
    high = np.where(movable, vm_max, np.inf)

    def stacked(name: str) -> np.ndarray:
        arrays = [getattr(s, name) for s in sensitivities]
        return arrays[0] if len(arrays) == 1 else np.stack(arrays)

    return NetworkPoint(
        ptdf=stacked("ptdf"),
        qtdf=stacked("qtdf"),
        dv_dp=stacked("dv_dp"),
        dv_dq=stacked("dv_dq"),
        base_flow_mw=np.stack([s.base_flow_mw for s in sensitivities], axis=1),
        base_vm_pu=np.stack([s.base_vm_pu for s in sensitivities], axis=1),
        flow_limit_mw=np.stack([s.flow_limit_mw() for s in sensitivities], axis=1),
        vm_min=low,
        vm_max=high,
    )


@dataclass(frozen=True)
class NetworkOrders:
    """Orders of one session, oldest first. Bus positions are columns of the NetworkPoint.

    offer_direction / request_direction: +1 up, -1 down. offer_qty (O, T) and request_qty (R, T) in kW.
    offer_q_min <= 0 <= offer_q_max in kVAr, (O,) for every PTU of the session or (O, T) per PTU, with
    offer_q_price (O,) EUR/Mvarh per kVAr moved either way (optional).
    request_weights (R, B): how each request spreads over buses (one-hot for a bus, a zone's buses summing to 1).
    """

    n_ptus: int
    offer_bus: np.ndarray
    offer_direction: np.ndarray
    offer_qty: np.ndarray
    offer_price: np.ndarray
    request_weights: np.ndarray
    request_direction: np.ndarray
    request_qty: np.ndarray
    request_price: np.ndarray
    offer_q_min: np.ndarray | None = None
    offer_q_max: np.ndarray | None = None
    offer_q_price: np.ndarray | None = None
    # Bilateral contracts (a session's orders, one direction): every accepted offer kW must be pairable with
    # accepted request kW whose limit price is at least the offer's price (pairing rows, docs/network.md).
    bilateral: bool = False

    @property
    def n_offers(self) -> int:
        return int(self.offer_bus.shape[0])

    @property
    def n_requests(self) -> int:
        return int(self.request_weights.shape[0])


@dataclass
class NetworkClearingResult:
    """Per PTU: schedule, flows and voltages before and after, binding constraints, prices and residuals.

    binding_flow (L, T) and binding_voltage (B, T): +1 at the upper limit, -1 at the lower, 0 otherwise.
    D-LMP = energy + congestion + voltage; Q-LMP likewise (its energy part is 0: no reactive balance, no losses).
    Prices are NaN in a PTU where no order is accepted (no price is discovered there).
    """

    status: str
    welfare: float
    offer_alloc: np.ndarray
    offer_q_alloc: np.ndarray
    request_alloc: np.ndarray
    injection_mw: np.ndarray
    injection_mvar: np.ndarray
    flow_before_mw: np.ndarray
    flow_after_mw: np.ndarray
    flow_limit_mw: np.ndarray
    vm_before_pu: np.ndarray
    vm_after_pu: np.ndarray
    binding_flow: np.ndarray
    binding_voltage: np.ndarray
    dlmp: np.ndarray
    dlmp_energy: np.ndarray
    dlmp_congestion: np.ndarray
    dlmp_voltage: np.ndarray
    qlmp: np.ndarray
    qlmp_energy: np.ndarray
    qlmp_congestion: np.ndarray
    qlmp_voltage: np.ndarray
    flow_violation_mw: np.ndarray
    voltage_violation_pu: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    solver: str = ""

    @property
    def feasible(self) -> bool:
        return bool(
            self.flow_violation_mw.max(initial=0) <= 1e-6 and self.voltage_violation_pu.max(initial=0) <= 1e-9
        )


def validate(orders: NetworkOrders, network: NetworkPoint) -> None:
    """Raise ValueError on inconsistent shapes, bad directions, negative quantities or non-finite prices."""
    n_o, n_r, n_t, n_b = orders.n_offers, orders.n_requests, orders.n_ptus, network.n_buses
    if network.n_ptus != n_t:
        raise ValueError("the network point must have one column per PTU")
    if orders.offer_qty.shape != (n_o, n_t) or orders.request_qty.shape != (n_r, n_t):
        raise ValueError("quantity arrays must be (orders, PTUs)")
    if orders.request_weights.shape != (n_r, n_b):
        raise ValueError("request_weights must be (requests, buses)")
    for name, n in (("offer_direction", n_o), ("offer_price", n_o), ("request_direction", n_r)):
        if np.shape(getattr(orders, name)) != (n,):
            raise ValueError(f"{name} must have one value per order")
    if np.shape(orders.request_price) != (n_r,):
        raise ValueError("request_price must have one value per request")
    if ((orders.offer_bus < 0) | (orders.offer_bus >= n_b)).any():
        raise ValueError("offer_bus outside the network")
    if (
        not np.isin(orders.offer_direction, (-1, 1)).all()
        or not np.isin(orders.request_direction, (-1, 1)).all()
    ):
        raise ValueError("directions are +1 (up) or -1 (down)")
    if (orders.offer_qty < 0).any() or (orders.request_qty < 0).any() or (orders.request_weights < 0).any():
        raise ValueError("quantities and weights must not be negative")
    if not (np.isfinite(orders.offer_price).all() and np.isfinite(orders.request_price).all()):
        raise ValueError("prices must be finite")
    reactive = (orders.offer_q_min, orders.offer_q_max, orders.offer_q_price)
    if any(a is not None for a in reactive):
        if any(a is None for a in reactive) or np.shape(orders.offer_q_price) != (n_o,):
            raise ValueError("offer_q_min, offer_q_max and offer_q_price go together, one value per offer")
        if any(np.shape(a) not in ((n_o,), (n_o, n_t)) for a in reactive[:2]):
            raise ValueError("offer_q_min and offer_q_max are (offers,) or (offers, PTUs)")
        if (orders.offer_q_min > 0).any() or (orders.offer_q_max < 0).any():
            raise ValueError("the reactive range must contain 0")
        if not np.isfinite(orders.offer_q_price).all():
            raise ValueError("prices must be finite")


def _age_weights(n: int) -> np.ndarray:
    """Strictly increasing in index, in (0, 1] (the golden-ratio jitter keeps sums of different sets apart)."""
    k = np.arange(n)
    return (k + 1 + 0.5 * ((k * _GOLDEN) % 1.0)) / (n + 1.5)


@dataclass
class _Model:
    cost: np.ndarray  # per column, maximise
    lower: np.ndarray
    upper: np.ndarray
    matrix: sparse.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    # column blocks
    xo: np.ndarray
    xt: np.ndarray
    ro: np.ndarray  # reactive cells (offer, PTU), each with an r+ and an r- column
    rt: np.ndarray
    yr: np.ndarray
    yt: np.ndarray
    n_b: int
    n_t: int
    flow_rows: np.ndarray  # (branch, PTU) of each flow row, in order
    volt_rows: np.ndarray  # (bus, PTU)
    pairing: list = field(default_factory=list)  # (offer cells, request cells) of each pairing row

    @property
    def n_x(self) -> int:
        return int(self.xo.size)

    @property
    def n_r(self) -> int:
        return int(self.ro.size)

    @property
    def n_y(self) -> int:
        return int(self.yr.size)

    def col_p(self) -> int:
        return self.n_x + 2 * self.n_r + self.n_y

    def col_q(self) -> int:
        return self.col_p() + self.n_b * self.n_t

    def col_slack(self) -> int:
        return self.col_q() + self.n_b * self.n_t


def _spread(weights: np.ndarray, cell_request: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell, bus, weight) for every request cell and every bus its request spreads over."""
    matrix = sparse.csr_matrix(weights)
    counts = np.diff(matrix.indptr)[cell_request]
    cell = np.repeat(np.arange(cell_request.size), counts)
    starts = matrix.indptr[cell_request]
    offsets = np.arange(cell.size) - np.repeat(np.cumsum(counts) - counts, counts)
    at = np.repeat(starts, counts) + offsets
    return cell, matrix.indices[at].astype(int), matrix.data[at]


def _reactive(orders: NetworkOrders) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q_min (O, T), q_max (O, T), q_price (O,)): a per-offer range applies at every PTU."""
    shape = (orders.n_offers, orders.n_ptus)
    if orders.offer_q_min is None:
        return np.zeros(shape), np.zeros(shape), np.zeros(orders.n_offers)

    def per_ptu(values) -> np.ndarray:
        values = np.asarray(values, float)
        return np.broadcast_to(values[:, None] if values.ndim == 1 else values, shape)

    return per_ptu(orders.offer_q_min), per_ptu(orders.offer_q_max), np.asarray(orders.offer_q_price, float)


def _screen(network: NetworkPoint, p_max: np.ndarray, q_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(branch, PTU) and (bus, PTU) pairs whose limit some accepted schedule could reach (exact screening)."""
    limit = network.limit()
    flow_pairs, volt_pairs = [], []
    for t in range(network.n_ptus):
        ptdf, qtdf, dv_dp, dv_dq = network.at(t)
        reach = np.abs(ptdf) @ p_max[:, t] + np.abs(qtdf) @ q_max[:, t]
        base = network.base_flow_mw[:, t]
        hit = (base + reach >= limit[:, t] - EPS) | (base - reach <= -limit[:, t] + EPS)
        flow_pairs.append(np.stack([np.nonzero(hit)[0], np.full(hit.sum(), t)], axis=1))
        reach_v = np.abs(dv_dp) @ p_max[:, t] + np.abs(dv_dq) @ q_max[:, t]
        vm = network.base_vm_pu[:, t]
        hit_v = (vm + reach_v >= network.vm_max - EPS) | (vm - reach_v <= network.vm_min + EPS)
        volt_pairs.append(np.stack([np.nonzero(hit_v)[0], np.full(hit_v.sum(), t)], axis=1))
    return np.concatenate(flow_pairs).astype(int), np.concatenate(volt_pairs).astype(int)


def _candidates(orders: NetworkOrders, network: NetworkPoint) -> tuple[np.ndarray, np.ndarray]:
    """Flow and voltage rows some accepted schedule could reach: the most each bus can move per PTU (MW, Mvar)
    times the absolute sensitivities, from the base point (exact screening)."""
    n_t, n_b = orders.n_ptus, network.n_buses
    xo, xt = np.nonzero(orders.offer_qty > EPS)
    yr, yt = np.nonzero(orders.request_qty > EPS)
    q_min, q_max, _ = _reactive(orders)
    p_max = np.zeros((n_b, n_t))
    np.add.at(p_max, (orders.offer_bus[xo], xt), orders.offer_qty[xo, xt] / KW_PER_MW)
    cell, bus, weight = _spread(orders.request_weights, yr)
    np.add.at(p_max, (bus, yt[cell]), weight * orders.request_qty[yr, yt][cell] / KW_PER_MW)
    q_reach = np.zeros((n_b, n_t))
    np.add.at(q_reach, orders.offer_bus, np.maximum(q_max, -q_min) / KW_PER_MW)
    return _screen(network, p_max, q_reach)


def _outside(network: NetworkPoint, pairs_f, pairs_v, flows, volts) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the given flow / voltage rows whose value is beyond its limit (relative tolerance 1e-7)."""
    limit = network.limit()
    k, t = pairs_f[:, 0], pairs_f[:, 1]
    over_f = np.abs(flows[k, t]) > limit[k, t] + 1e-7 * np.maximum(1.0, limit[k, t])
    k, t = pairs_v[:, 0], pairs_v[:, 1]
    over_v = (volts[k, t] > network.vm_max[k] + 1e-9) | (volts[k, t] < network.vm_min[k] - 1e-9)
    return over_f, over_v


def _pairing(orders: NetworkOrders, xo, xt, yr, yt) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hall's condition for pairing offers with requests whose limit is at least the offer's price: per PTU and
    per offer price level c that some request there cannot pay, the accepted kW of offers priced at c or more is
    at most that of requests whose limit is c or more. The allowed pairs are nested (a dearer offer's requests
    are among a cheaper one's), so these rows are exactly what a feasible pairing needs."""
    rows = []
    if not orders.bilateral:
        return rows
    offer_price, request_price = orders.offer_price[xo], orders.request_price[yr]
    for t in np.unique(xt):
        cells_x, cells_y = np.flatnonzero(xt == t), np.flatnonzero(yt == t)
        lowest = request_price[cells_y].min(initial=np.inf)
        for level in np.unique(offer_price[cells_x]):
            if level > lowest:
                rows.append(
                    (cells_x[offer_price[cells_x] >= level], cells_y[request_price[cells_y] >= level])
                )
    return rows


def _build(
    orders: NetworkOrders, network: NetworkPoint, flow_pairs: np.ndarray, volt_pairs: np.ndarray
) -> _Model:
    n_t, n_b = orders.n_ptus, network.n_buses
    steps = PRICE_STEP * TIE_BREAK
    xo, xt = np.nonzero(orders.offer_qty > EPS)
    yr, yt = np.nonzero(orders.request_qty > EPS)
    q_min, q_max, q_price = _reactive(orders)
    # A reactive cell per offer and PTU where its range is not empty.
    ro, rt = np.nonzero((q_max - q_min) > EPS)
    n_x, n_r, n_y = xo.size, ro.size, yr.size
    age_o = _age_weights(orders.n_offers)
    age_r = _age_weights(orders.n_requests)
    x_cost = orders.offer_price[xo] + steps * age_o[xo] * (0.9 + 0.1 * (xt + 1) / (n_t + 1))
    r_cost = q_price[ro] + steps * age_o[ro]
    y_value = orders.request_price[yr] + steps * (2.0 - age_r[yr])
    n_pq = 2 * n_b * n_t

    weights = orders.request_weights
    spread_cell, spread_bus, spread_w = _spread(weights, yr)
    n_f, n_v = flow_pairs.shape[0], volt_pairs.shape[0]
    n_cols = n_x + 2 * n_r + n_y + n_pq + 2 * (n_f + n_v)
    col_p = n_x + 2 * n_r + n_y
    col_q = col_p + n_b * n_t
    col_s = col_q + n_b * n_t

    def p_col(b, t):
        return col_p + np.asarray(b) * n_t + np.asarray(t)

    def q_col(b, t):
        return col_q + np.asarray(b) * n_t + np.asarray(t)

    rows, cols, vals, lo, hi = [], [], [], [], []
    count = 0

    def add(r, c, v, n, low, high):
        nonlocal count
        rows.append(count + np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.asarray(v, dtype=float))
        lo.append(np.broadcast_to(np.asarray(low, float), (n,)).copy())
        hi.append(np.broadcast_to(np.asarray(high, float), (n,)).copy())
        count += n

    # Nodal active rows: p_bt - sum d x / 1000 + sum d w y / 1000 = 0, row index b * n_t + t.
    node = np.arange(n_b * n_t)
    add(
        np.concatenate([node, orders.offer_bus[xo] * n_t + xt, spread_bus * n_t + yt[spread_cell]]),
        np.concatenate([col_p + node, np.arange(n_x), n_x + 2 * n_r + spread_cell]),
        np.concatenate(
            [
                np.ones(node.size),
                -orders.offer_direction[xo] / KW_PER_MW,
                orders.request_direction[yr[spread_cell]] * spread_w / KW_PER_MW,
            ]
        ),  # fmt: skip
        node.size,
        0.0,
        0.0,
    )
    # Nodal reactive rows: q_bt - (r+ - r-) / 1000 = 0.
    r_rows = orders.offer_bus[ro] * n_t + rt
    add(
        np.concatenate([node, r_rows, r_rows]),
        np.concatenate([col_q + node, n_x + np.arange(n_r), n_x + n_r + np.arange(n_r)]),
        np.concatenate([np.ones(node.size), np.full(n_r, -1 / KW_PER_MW), np.full(n_r, 1 / KW_PER_MW)]),
        node.size,
        0.0,
        0.0,
    )
    # Energy balance per PTU.
    add(np.tile(np.arange(n_t), n_b), p_col(np.repeat(np.arange(n_b), n_t), np.tile(np.arange(n_t), n_b)),
        np.ones(n_b * n_t), n_t, 0.0, 0.0)  # fmt: skip
    pairing = _pairing(orders, xo, xt, yr, yt)
    for cells_x, cells_y in pairing:
        add(np.zeros(cells_x.size + cells_y.size), np.concatenate([cells_x, n_x + 2 * n_r + cells_y]),
            np.concatenate([np.ones(cells_x.size), -np.ones(cells_y.size)]), 1, -np.inf, 0.0)  # fmt: skip
    # Flow and voltage rows with violation slacks.
    limit = network.limit()
    for kind, pairs in (("flow", flow_pairs), ("volt", volt_pairs)):
        r_list, c_list, v_list, low, high = [], [], [], [], []
        for i, (k, t) in enumerate(pairs):
            ptdf, qtdf, dv_dp, dv_dq = network.at(int(t))
            a_p, a_q = (ptdf[k], qtdf[k]) if kind == "flow" else (dv_dp[k], dv_dq[k])
            nz_p, nz_q = np.nonzero(np.abs(a_p) > 1e-12)[0], np.nonzero(np.abs(a_q) > 1e-12)[0]
            r_list.append(np.full(nz_p.size + nz_q.size, i))
            c_list.append(np.concatenate([p_col(nz_p, t), q_col(nz_q, t)]))
            v_list.append(np.concatenate([a_p[nz_p], a_q[nz_q]]))
            if kind == "flow":
                base = network.base_flow_mw[k, t]
                low.append(-limit[k, t] - base)
                high.append(limit[k, t] - base)
            else:
                base = network.base_vm_pu[k, t]
                low.append(network.vm_min[k] - base)
                high.append(network.vm_max[k] - base)
        n = len(pairs)
        if not n:
            continue
        first_slack = col_s + (0 if kind == "flow" else 2 * n_f)
        scale = 1.0 if kind == "flow" else 1.0 / VOLTAGE_PENALTY_SCALE
        idx = np.arange(n)
        add(
            np.concatenate([*r_list, idx, idx]),
            np.concatenate([*c_list, first_slack + idx, first_slack + n + idx]),
            np.concatenate([*v_list, np.full(n, scale), np.full(n, -scale)]),
            n,
            low,
            high,
        )

    matrix = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(count, n_cols)
    )
    penalty = VIOLATION_PENALTY * KW_PER_MW * OBJECTIVE_SCALE  # per MW of slack, in the scaled objective
    cost = np.concatenate(
        [-x_cost * OBJECTIVE_SCALE, -r_cost * OBJECTIVE_SCALE, -r_cost * OBJECTIVE_SCALE, y_value * OBJECTIVE_SCALE,
         np.zeros(n_pq), np.full(2 * (n_f + n_v), -penalty)]
    )  # fmt: skip
    big = 1e9
    lower = np.concatenate([np.zeros(n_x + 2 * n_r + n_y), np.full(n_pq, -big), np.zeros(2 * (n_f + n_v))])
    upper = np.concatenate(
        [orders.offer_qty[xo, xt], q_max[ro, rt], -q_min[ro, rt], orders.request_qty[yr, yt], np.full(n_pq, big),
         np.full(2 * (n_f + n_v), big)]
    )  # fmt: skip
    return _Model(
        cost, lower, upper, matrix, np.concatenate(lo), np.concatenate(hi),
        xo, xt, ro, rt, yr, yt, n_b, n_t, flow_pairs, volt_pairs, pairing,
    )  # fmt: skip


def _highs_lp(cost, lower, upper, matrix, row_lo, row_hi, *, maximise: bool) -> highspy.HighsLp:
    lp = highspy.HighsLp()
    lp.num_col_ = int(cost.size)
    lp.num_row_ = int(matrix.shape[0])
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lower, dtype=float)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_hi, dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
    matrix = sparse.csc_matrix(matrix)
    matrix.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    return lp


def _highs() -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    return highs


def _solve_highs(model: _Model) -> tuple[str, np.ndarray, str]:
    highs = _highs()
    highs.passModel(
        _highs_lp(
            model.cost, model.lower, model.upper, model.matrix, model.row_lo, model.row_hi, maximise=True
        )
    )
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")
    solution = highs.getSolution()
    values = np.asarray(solution.col_value) if solution.value_valid else np.zeros(model.cost.size)
    return status, values, f"HiGHS {version('highspy')} via highspy"


def _solve_pulp(model: _Model) -> tuple[str, np.ndarray, str]:
    """The same LP through PuLP (one Python object per column and row: small models only)."""
    import pulp

    problem = pulp.LpProblem("network_clearing", pulp.LpMaximize)
    variable = getattr(problem, "add_variable", pulp.LpVariable)
    columns = [
        variable(f"c{j}", float(lo), float(hi))
        for j, (lo, hi) in enumerate(zip(model.lower, model.upper, strict=True))
    ]
    problem += pulp.LpAffineExpression([(columns[j], float(c)) for j, c in enumerate(model.cost) if c != 0.0])
    matrix = model.matrix.tocsr()
    for i in range(matrix.shape[0]):
        start, stop = matrix.indptr[i], matrix.indptr[i + 1]
        expression = pulp.LpAffineExpression(
            [
                (columns[j], float(v))
                for j, v in zip(matrix.indices[start:stop], matrix.data[start:stop], strict=True)
            ]
        )
        low, high = float(model.row_lo[i]), float(model.row_hi[i])
        if low == high:
            problem += expression == low
        else:
            if np.isfinite(low):
                problem += expression >= low
            if np.isfinite(high):
                problem += expression <= high
    problem.solve(pulp.HiGHS(msg=False, threads=1))
    status = pulp.LpStatus[problem.status].lower()
    values = np.array([c.value() or 0.0 for c in columns])
    return status, values, f"HiGHS via PuLP {version('pulp')}"


def _prices(model: _Model, orders: NetworkOrders, network: NetworkPoint, values: np.ndarray):
    """Dual-optimal prices chosen by the explicit rule in the module docstring.

    Dual variables z = [lambda_t (T), mu per flow row, nu per voltage row]; with signed shadow prices (>= 0 at the
    upper limit, <= 0 at the lower, 0 strictly inside):
        D-LMP_bt = lambda_t - sum_l PTDF_lb mu_lt - sum_k dVdP_kb nu_kt
        Q-LMP_bt =          - sum_l QTDF_lb mu_lt - sum_k dVdQ_kb nu_kt
    Each order cell's reduced profit must agree with its position in its bounds.
    Returns (energy, congestion, voltage) parts of D-LMP and (congestion, voltage) of Q-LMP, each (B, T), or None.
    """
    n_b, n_t = model.n_b, model.n_t
    n_f, n_v = model.flow_rows.shape[0], model.volt_rows.shape[0]
    n_z = n_t + n_f + n_v
    # Activity of each flow / voltage row without its slacks (flows, voltages after), to fix shadow price signs.
    p = values[model.col_p() : model.col_q()].reshape(n_b, n_t)
    q = values[model.col_q() : model.col_slack()].reshape(n_b, n_t)
    flows = network.flows(p, q)
    volts = network.voltages(p, q)
    limit = network.limit()
    z_lo, z_hi = np.full(n_z, -np.inf), np.full(n_z, np.inf)
    # A PTU where nothing is accepted has no lower bound on its energy price; PRICE_BOUND keeps the LP bounded
    # and clear_network reports NaN prices for such PTUs.
    z_lo[:n_t], z_hi[:n_t] = -PRICE_BOUND, PRICE_BOUND
    for offset, pairs, value, low, high in (
        (n_t, model.flow_rows, flows, -limit, limit),
        (n_t + n_f, model.volt_rows, volts, np.broadcast_to(network.vm_min[:, None], volts.shape),
         np.broadcast_to(network.vm_max[:, None], volts.shape)),
    ):  # fmt: skip
        if not pairs.size:
            continue
        k, t = pairs[:, 0], pairs[:, 1]
        tol = 1e-7 * np.maximum(1.0, np.abs(high[k, t]))
        at_hi = value[k, t] >= high[k, t] - tol
        at_lo = value[k, t] <= low[k, t] + tol
        idx = offset + np.arange(k.size)
        cap = VIOLATION_PENALTY * (1.0 if offset == n_t else VOLTAGE_PENALTY_SCALE)
        over = value[k, t] > high[k, t] + tol
        under = value[k, t] < low[k, t] - tol
        z_lo[idx] = np.where(at_hi, 0.0, -cap)
        z_hi[idx] = np.where(at_lo, 0.0, cap)
        inside = ~at_hi & ~at_lo
        z_lo[idx[inside]] = z_hi[idx[inside]] = 0.0
        # A used violation slack fixes the shadow price at the penalty.
        z_lo[idx[over]] = z_hi[idx[over]] = cap
        z_lo[idx[under]] = z_hi[idx[under]] = -cap
    scale = np.concatenate([np.ones(n_f), np.full(n_v, 1.0 / VOLTAGE_PENALTY_SCALE)])

    # price_p (B*T, n_z) and price_q (B*T, n_z) as linear maps of z; row b * n_t + t.
    rp, cp, vp, rq, cq, vq = [], [], [], [], [], []
    node = np.arange(n_b * n_t)
    rp.append(node)
    cp.append(node % n_t)
    vp.append(np.ones(node.size))
    for offset, pairs, sens in ((n_t, model.flow_rows, "flow"), (n_t + n_f, model.volt_rows, "volt")):
        for i, (k, t) in enumerate(pairs):
            ptdf, qtdf, dv_dp, dv_dq = network.at(int(t))
            a_p, a_q = (ptdf[k], qtdf[k]) if sens == "flow" else (dv_dp[k], dv_dq[k])
            for a, rr, cc, vv in ((a_p, rp, cp, vp), (a_q, rq, cq, vq)):
                nz = np.nonzero(np.abs(a) > 1e-12)[0]
                rr.append(nz * n_t + t)
                cc.append(np.full(nz.size, offset + i))
                vv.append(-a[nz])
    price_p = sparse.csr_matrix(
        (np.concatenate(vp), (np.concatenate(rp), np.concatenate(cp))), shape=(n_b * n_t, n_z)
    )
    price_q = sparse.csr_matrix(
        (np.concatenate(vq) if vq else np.zeros(0), (np.concatenate(rq) if rq else np.zeros(0, int),
         np.concatenate(cq) if cq else np.zeros(0, int))), shape=(n_b * n_t, n_z),
    )  # fmt: skip
    # Pairing rows' shadow prices eta >= 0 (0 where the row is slack) follow z; they enter no nodal price, but an
    # offer cell in a row pays its eta and a request cell earns it.
    n_h = len(model.pairing)
    x_val = values[: model.n_x]
    y_val = values[model.n_x + 2 * model.n_r : model.col_p()]
    h_x, h_y = sparse.lil_matrix((model.n_x, n_h)), sparse.lil_matrix((model.n_y, n_h))
    eta_hi = np.zeros(n_h)
    for h, (cells_x, cells_y) in enumerate(model.pairing):
        h_x[cells_x, h] = 1.0
        h_y[cells_y, h] = 1.0
        if x_val[cells_x].sum() - y_val[cells_y].sum() >= -EPS * 100:
            eta_hi[h] = PRICE_BOUND
    z_lo, z_hi = np.concatenate([z_lo, np.zeros(n_h)]), np.concatenate([z_hi, eta_hi])
    price_p = sparse.hstack([price_p, sparse.csr_matrix((n_b * n_t, n_h))]).tocsr()
    price_q = sparse.hstack([price_q, sparse.csr_matrix((n_b * n_t, n_h))]).tocsr()

    # Reduced-profit rows per order cell. Offers: d * price_p[bus] vs cost; reactive: +/- price_q vs cost;
    # requests: value vs d * w . price_p.
    x = values[: model.n_x]
    rplus = values[model.n_x : model.n_x + model.n_r]
    rminus = values[model.n_x + model.n_r : model.n_x + 2 * model.n_r]
    y = values[model.n_x + 2 * model.n_r : model.col_p()]
    x_cost = -model.cost[: model.n_x] / OBJECTIVE_SCALE
    r_cost = -model.cost[model.n_x : model.n_x + model.n_r] / OBJECTIVE_SCALE
    y_value = model.cost[model.n_x + 2 * model.n_r : model.col_p()] / OBJECTIVE_SCALE
    x_up = model.upper[: model.n_x]
    r_up_p = model.upper[model.n_x : model.n_x + model.n_r]
    r_up_m = model.upper[model.n_x + model.n_r : model.n_x + 2 * model.n_r]
    y_up = model.upper[model.n_x + 2 * model.n_r : model.col_p()]
    parts, row_lo, row_hi = [], [], []

    def cell_rows(matrix, level, upper, cost):
        # profit = matrix @ z - cost: <= 0 at 0, >= 0 at the upper bound, = 0 between.
        parts.append(matrix)
        row_lo.append(np.where(level >= EPS * 10, cost, -np.inf))
        row_hi.append(np.where(level <= upper - EPS * 10, cost, np.inf))

    d = orders.offer_direction[model.xo].astype(float)
    eta = sparse.hstack([sparse.csr_matrix((model.n_x, n_z)), h_x.tocsr()])
    cell_rows(sparse.diags(d) @ price_p[orders.offer_bus[model.xo] * n_t + model.xt] - eta, x, x_up, x_cost)
    if model.n_r:
        qrows = price_q[orders.offer_bus[model.ro] * n_t + model.rt]
        cell_rows(qrows, rplus, r_up_p, r_cost)
        cell_rows(-qrows, rminus, r_up_m, r_cost)
    if model.n_y:
        # a request's cost of being served: d * sum_b w_b price_p[b, t]; value - that: >= 0 when accepted.
        cell, bus, w = _spread(orders.request_weights, model.yr)
        spread = sparse.csr_matrix(
            (orders.request_direction[model.yr[cell]] * w, (cell, bus * n_t + model.yt[cell])),
            shape=(model.n_y, n_b * n_t),
        )
        served = spread @ price_p - sparse.hstack([sparse.csr_matrix((model.n_y, n_z)), h_y.tocsr()])
        # value - served @ z: >= 0 at upper (served <= value), <= 0 at 0 (served >= value), = 0 between.
        parts.append(served)
        row_lo.append(np.where(y <= y_up - EPS * 10, y_value, -np.inf))
        row_hi.append(np.where(y >= EPS * 10, y_value, np.inf))
    matrix = sparse.vstack(parts).tocsc()
    row_lo, row_hi = np.concatenate(row_lo), np.concatenate(row_hi)
    # Objective: lowest sum of D-LMPs, then the least total |shadow price|.
    objective = np.asarray(price_p.sum(axis=0)).ravel()
    magnitude = np.zeros(n_z + n_h)
    magnitude[n_t:n_z] = 1e-6 * scale
    magnitude[n_z:] = 1e-6
    sign = np.where(z_lo[n_t:] >= 0, 1.0, -1.0)
    objective[n_t:] += magnitude[n_t:] * sign
    highs = _highs()
    highs.passModel(_highs_lp(objective, z_lo, z_hi, matrix, row_lo, row_hi, maximise=False))
    highs.run()
    if highs.modelStatusToString(highs.getModelStatus()).lower() != "optimal":
        return None
    z = np.asarray(highs.getSolution().col_value)
    energy = np.broadcast_to(z[:n_t], (n_b, n_t)).copy()
    z_flow = np.concatenate([np.zeros(n_t), z[n_t : n_t + n_f], np.zeros(n_v + n_h)])
    z_volt = np.concatenate([np.zeros(n_t + n_f), z[n_t + n_f : n_z], np.zeros(n_h)])
    congestion = (price_p @ z_flow).reshape(n_b, n_t)
    voltage = (price_p @ z_volt).reshape(n_b, n_t)
    q_congestion = (price_q @ z_flow).reshape(n_b, n_t)
    q_voltage = (price_q @ z_volt).reshape(n_b, n_t)
    return energy, congestion, voltage, q_congestion, q_voltage


def welfare(orders: NetworkOrders, offer_alloc, offer_q_alloc, request_alloc) -> float:
    """True (unperturbed) welfare in EUR over the session (kW per PTU of 15 minutes)."""
    _, _, q_price = _reactive(orders)
    value = float(
        orders.request_price @ request_alloc.sum(axis=1)
        - orders.offer_price @ offer_alloc.sum(axis=1)
        - q_price @ np.abs(offer_q_alloc).sum(axis=1)
    )
    return value * 0.25 / KW_PER_MW


def clear_network(
    orders: NetworkOrders, network: NetworkPoint, *, backend: str = "highspy"
) -> NetworkClearingResult:
    """Clear all PTUs of a session in one LP subject to the linearised network; never raises on infeasibility
    (violation slacks), only on malformed input (ValueError)."""
    if backend not in ("highspy", "pulp"):
        raise ValueError("backend must be 'highspy' or 'pulp'")
    validate(orders, network)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    candidates_f, candidates_v = _candidates(orders, network)
    n_b, n_t = network.n_buses, orders.n_ptus
    zero = np.zeros((n_b, n_t))
    # Row generation: start from the rows at or beyond their limit at the base point (with a 10% margin for
    # lines), add every row the solution oversteps, re-solve; the final LP has the optimum of the full one.
    limit = network.limit()
    k, t = candidates_f[:, 0], candidates_f[:, 1]
    near = np.abs(network.base_flow_mw[k, t]) >= 0.9 * limit[k, t]
    active_f = np.zeros(candidates_f.shape[0], bool) | near
    active_v = _outside(network, candidates_f[:0], candidates_v, zero[:0], network.base_vm_pu)[1]
    solve = _solve_pulp if backend == "pulp" else _solve_highs
    timings["build"] = timings["solve"] = 0.0
    for _ in range(MAX_ROUNDS):
        timings["build"] += time.perf_counter() - started
        model = _build(orders, network, candidates_f[active_f], candidates_v[active_v])
        started = time.perf_counter()
        status, values, solver = solve(model)
        timings["solve"] += time.perf_counter() - started
        started = time.perf_counter()
        if status != "optimal":
            break
        p = values[model.col_p() : model.col_q()].reshape(n_b, n_t)
        q = values[model.col_q() : model.col_slack()].reshape(n_b, n_t)
        over_f, over_v = _outside(
            network, candidates_f, candidates_v, network.flows(p, q), network.voltages(p, q)
        )
        new_f, new_v = over_f & ~active_f, over_v & ~active_v
        if not new_f.any() and not new_v.any():
            break
        active_f |= new_f
        active_v |= new_v
    else:
        model = _build(orders, network, candidates_f, candidates_v)
        status, values, solver = solve(model)
    timings["rounds"] = float(_ + 1)
    offer_alloc = np.zeros((orders.n_offers, n_t))
    offer_q = np.zeros((orders.n_offers, n_t))
    request_alloc = np.zeros((orders.n_requests, n_t))
    if status != "optimal":
        values = np.zeros(model.cost.size)
    timings["build"] += time.perf_counter() - started
    x = np.round(np.clip(values[: model.n_x], 0, model.upper[: model.n_x]), 6)
    rp = values[model.n_x : model.n_x + model.n_r]
    rm = values[model.n_x + model.n_r : model.n_x + 2 * model.n_r]
    y = np.round(np.clip(values[model.n_x + 2 * model.n_r : model.col_p()], 0, None), 6)
    offer_alloc[model.xo, model.xt] = x
    np.add.at(offer_q, (model.ro, model.rt), np.round(rp - rm, 6))
    request_alloc[model.yr, model.yt] = y
    p = values[model.col_p() : model.col_q()].reshape(n_b, n_t)
    q = values[model.col_q() : model.col_slack()].reshape(n_b, n_t)
    flow_before = network.flows(zero, zero)
    vm_before = network.voltages(zero, zero)
    flow_after = network.flows(p, q)
    vm_after = network.voltages(p, q)
    limit = np.asarray(network.limit(), dtype=float)
    tol_f = 1e-6 * np.maximum(1.0, limit)
    binding_flow = np.where(flow_after >= limit - tol_f, 1, np.where(flow_after <= -limit + tol_f, -1, 0))
    vmin, vmax = network.vm_min[:, None], network.vm_max[:, None]
    binding_voltage = np.where(vm_after >= vmax - 1e-7, 1, np.where(vm_after <= vmin + 1e-7, -1, 0))
    flow_violation = np.maximum(np.abs(flow_after) - limit, 0.0)
    voltage_violation = np.maximum(np.maximum(vm_after - vmax, vmin - vm_after), 0.0)
    started = time.perf_counter()
    nan = np.full((n_b, n_t), np.nan)
    prices = _prices(model, orders, network, values) if status == "optimal" else None
    if prices is None:
        energy = congestion = voltage = q_cong = q_volt = nan
    else:
        energy, congestion, voltage, q_cong, q_volt = prices
        accepted = np.zeros(n_t, bool)
        accepted[model.xt[x > 0]] = True
        accepted[model.yt[y > 0]] = True
        accepted[model.rt[np.abs(rp - rm) > 0]] = True
        for part in (energy, congestion, voltage, q_cong, q_volt):
            part[:, ~accepted] = np.nan
    timings["prices"] = time.perf_counter() - started
    return NetworkClearingResult(
        status=status if prices is not None or status != "optimal" else "optimal_no_prices",
        welfare=welfare(orders, offer_alloc, offer_q, request_alloc),
        offer_alloc=offer_alloc,
        offer_q_alloc=offer_q,
        request_alloc=request_alloc,
        injection_mw=p,
        injection_mvar=q,
        flow_before_mw=flow_before,
        flow_after_mw=flow_after,
        flow_limit_mw=limit,
        vm_before_pu=vm_before,
        vm_after_pu=vm_after,
        binding_flow=binding_flow,
        binding_voltage=binding_voltage,
        dlmp=energy + congestion + voltage,
        dlmp_energy=energy,
        dlmp_congestion=congestion,
        dlmp_voltage=voltage,
        qlmp=q_cong + q_volt,
        qlmp_energy=np.where(np.isnan(q_cong), np.nan, 0.0),
        qlmp_congestion=q_cong,
        qlmp_voltage=q_volt,
        flow_violation_mw=np.where(flow_violation > 1e-6, flow_violation, 0.0),
        voltage_violation_pu=np.where(voltage_violation > 1e-9, voltage_violation, 0.0),
        timings=timings,
        solver=solver,
    )


@dataclass(frozen=True)
class Worsened:
    """A line (kind "line", index = branch row) or bus voltage (kind "voltage", index = bus) that a change would
    push beyond its limit, or further beyond it: values before and after, and the limit it crosses."""

    kind: str
    index: int
    before: float
    after: float
    limit: float


def check_injection(
    network: NetworkPoint,
    ptu: int,
    p_mw: np.ndarray,
    q_mvar: np.ndarray | None = None,
    *,
    tolerance: float = 1e-6,
) -> list[Worsened]:
    """Which limits an injection change (per bus, MW / Mvar) at one PTU would create or worsen a violation of
    (GOPACS' "no new congestion elsewhere"; the match-time check for continuous trading). Empty: the change is
    safe on the linearised network."""
    q_mvar = np.zeros_like(p_mw) if q_mvar is None else q_mvar
    ptdf, qtdf, dv_dp, dv_dq = network.at(ptu)
    limit = network.limit()[:, ptu]
    flow_before = network.base_flow_mw[:, ptu]
    flow_after = flow_before + ptdf @ p_mw + qtdf @ q_mvar
    excess_before = np.abs(flow_before) - limit
    excess_after = np.abs(flow_after) - limit
    out = [
        Worsened("line", int(k), float(flow_before[k]), float(flow_after[k]), float(limit[k]))
        for k in np.nonzero(
            (excess_after > tolerance) & (excess_after > np.maximum(excess_before, 0) + tolerance)
        )[0]
    ]
    vm_before = network.base_vm_pu[:, ptu]
    vm_after = vm_before + dv_dp @ p_mw + dv_dq @ q_mvar
    low, high = network.vm_min, network.vm_max
    v_excess_before = np.maximum(vm_before - high, low - vm_before)
    v_excess_after = np.maximum(vm_after - high, low - vm_after)
    for k in np.nonzero(
        (v_excess_after > tolerance * 1e-2)
        & (v_excess_after > np.maximum(v_excess_before, 0) + tolerance * 1e-2)
    )[0]:
        crossed = high[k] if vm_after[k] > high[k] else low[k]
        out.append(Worsened("voltage", int(k), float(vm_before[k]), float(vm_after[k]), float(crossed)))
    return out
