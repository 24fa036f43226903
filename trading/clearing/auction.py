"""Gate-closure auction: one welfare-maximising optimisation over a session's orders (FLEXGRID ATP-RQT_02).

Pure module: numpy arrays in, dataclasses out; no Django. docs/clearing.md has the full description.

Model (per non-zero cell; prices in units of the stored price step, 0.0001 EUR/MWh, per kW):
    maximise  sum_r,t (p_r + credit_r) y_rt  -  sum_o,t (c_o + penalty_o) x_ot
    s.t.      sum_{o in zone z} x_ot = sum_{r in zone z} y_rt          for every zone z and PTU t
              0 <= x_ot <= q_ot,  0 <= y_rt <= d_rt
              block offers:       x_ot = q_ot * b_o,  b_o in {0, 1}   (all-or-nothing over all its PTUs)
              minimum quantity:   m_o * u_ot <= x_ot <= q_ot * u_ot,  u_ot in {0, 1}
              consecutive PTUs:   the accepted PTUs (u_ot = 1) of an offer form runs of at least
                                  min_consecutive and at most max_consecutive PTUs
              compatibility:      for every zone, PTU and request limit L:
                                  sum_{r: p_r <= L} y_rt <= sum_{o: c_o <= L} x_ot
              network (optional): -limit <= base_flow + S @ injection <= limit  per line and PTU
The compatibility rows say the accepted volume can be split into trades that each pair an offer with a request
whose limit is at least the offer's bid (Hall's condition for this nested bipartite graph); without them a block or
minimum-quantity offer could be accepted only by charging some buyer above its limit.

Ties: orders are passed oldest first (index order is age, for offers and requests alike). Each offer's cost gets
a penalty in (0, TIE_BREAK] and each request's value a credit in (TIE_BREAK, 2 * TIE_BREAK), both in price steps
per kW and monotone in age, so among equal prices the older order wins, a trade at zero surplus is made, and a
trade at a loss of one price step or more never is. The true welfare of the result is within
2 * TIE_BREAK price steps per kW-PTU traded (0.00004 EUR per MWh traded) of the optimum. Identical for both
back-ends; exact when the MIP is solved to optimality (mip_gap=0, the default).

Allocation: after the MIP the integer decisions are fixed and the LP re-solved, so the continuous part is the
unique optimum of the perturbed LP. Prices (zone_price, price_low, price_high per zone and PTU) come from the
duals of the zone-balance rows of that LP: the set of dual-optimal balance prices, restricted first to those that
need the least make-whole for accepted non-convex offers, is an interval per cell (or a face, with a network);
its lowest and highest points are found by two small LPs and the price is the lowest, rounded to the price step:
the least the buyers can pay with the market still clearing. At that price no accepted divisible order would
rather withdraw and no rejected one would rather trade. Uniform pricing pays each trade the zone price clipped to [offer bid, request limit]; the
difference (Trades.uplift, >= 0) is a make-whole for a block, minimum-quantity or run-constrained seller, paid by the
buyer of that trade. Pay-as-bid pays each trade the offer's bid. Either way no buyer pays above its limit and no
seller receives below its bid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib.metadata import version

import highspy
import numpy as np
from scipy import sparse

ENERGY_PER_KW_PTU_MWH = 0.25 / 1000.0
EPS = 1e-6
PRICE_STEP = 1e-4  # EUR/MWh: prices are stored with four decimals
TIE_BREAK = (
    0.2  # price steps per kW; offer penalties in (0, TIE_BREAK], request credits in (TIE_BREAK, 2 TIE_BREAK)
)
RUN_MIN_KW = (
    1e-3  # an accepted PTU of a run-constrained offer carries at least this (quantities have 3 decimals)
)
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class AuctionOrders:
    """Orders of one session, oldest first. Quantities in kW per PTU; prices in EUR/MWh.

    offer_min_consecutive / offer_max_consecutive (optional, one int per offer): accepted PTUs of the offer form
    runs of at least / at most that many consecutive PTUs (0 for the maximum means no maximum).
    request_tso / offer_tso_eligible (optional, one bool per request / offer): a TSO's request is served only by
    TSO-eligible offers (missing arrays: no TSO requests; every offer eligible).
    """

    n_ptus: int
    n_zones: int
    offer_zone: np.ndarray
    offer_qty: np.ndarray
    offer_min: np.ndarray
    offer_price: np.ndarray
    offer_block: np.ndarray
    request_zone: np.ndarray
    request_qty: np.ndarray
    request_price: np.ndarray
    offer_min_consecutive: np.ndarray | None = None
    offer_max_consecutive: np.ndarray | None = None
    request_tso: np.ndarray | None = None
    offer_tso_eligible: np.ndarray | None = None

    @property
    def n_offers(self) -> int:
        return int(self.offer_zone.shape[0])

    @property
    def n_requests(self) -> int:
        return int(self.request_zone.shape[0])


@dataclass(frozen=True)
class NetworkConstraints:
    """flow[l, t] = base_flow[l, t] + sum_z sensitivity[l, z] * injection[z, t], kept within ±limit[l].

    injection[z, t] is the accepted offer volume in zone z (kW; the caller signs it for the product direction).
    """

    sensitivity: np.ndarray
    base_flow: np.ndarray
    limit: np.ndarray


@dataclass
class Trades:
    """One row per (request, offer, PTU); uplift is price − zone price (EUR/MWh), the make-whole its buyer pays."""

    request_idx: np.ndarray
    offer_idx: np.ndarray
    ptu: np.ndarray
    kw: np.ndarray
    price: np.ndarray
    uplift: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.kw.shape[0])


@dataclass
class AuctionResult:
    status: str
    objective: float
    offer_alloc: np.ndarray
    request_alloc: np.ndarray
    zone_price: np.ndarray
    trades: Trades
    timings: dict[str, float] = field(default_factory=dict)
    solver: str = ""
    price_low: np.ndarray | None = None
    price_high: np.ndarray | None = None


@dataclass
class _Cells:
    """Maps model columns and rows back to orders."""

    xo: np.ndarray
    xt: np.ndarray
    yr: np.ndarray
    yt: np.ndarray
    x_group: np.ndarray
    y_group: np.ndarray
    groups: np.ndarray
    x_cost: np.ndarray  # perturbed, in price steps per kW
    y_value: np.ndarray
    x_floor: np.ndarray  # kW an accepted cell carries at least (minimum quantity or RUN_MIN_KW), 0 if none
    block_col: np.ndarray  # per x cell: its offer's block column, or -1
    u_col: np.ndarray  # per x cell: its acceptance column, or -1
    nonconvex: np.ndarray  # per x cell: its offer is a block, has a minimum or a run constraint
    network_rows: slice

    @property
    def n_x(self) -> int:
        return int(self.xo.size)

    @property
    def n_y(self) -> int:
        return int(self.yr.size)


def _empty_trades() -> Trades:
    empty = np.zeros(0)
    return Trades(empty.astype(int), empty.astype(int), empty.astype(int), empty, empty, empty)


def _consecutive(orders: AuctionOrders) -> tuple[np.ndarray, np.ndarray]:
    n = orders.n_offers
    low = orders.offer_min_consecutive
    high = orders.offer_max_consecutive
    low = np.ones(n, dtype=int) if low is None else np.asarray(low, dtype=int)
    high = np.zeros(n, dtype=int) if high is None else np.asarray(high, dtype=int)
    return low, high


def validate_orders(orders: AuctionOrders) -> None:
    """Raise ValueError on inconsistent shapes, negative quantities or impossible run limits."""
    n_o, n_r, n_t = orders.n_offers, orders.n_requests, orders.n_ptus
    if orders.offer_qty.shape != (n_o, n_t) or orders.request_qty.shape != (n_r, n_t):
        raise ValueError("quantity arrays must be (orders, PTUs)")
    for name in ("offer_min", "offer_price", "offer_block"):
        if getattr(orders, name).shape != (n_o,):
            raise ValueError(f"{name} must have one value per offer")
    for name in ("offer_min_consecutive", "offer_max_consecutive"):
        value = getattr(orders, name)
        if value is not None and np.shape(value) != (n_o,):
            raise ValueError(f"{name} must have one value per offer")
    if orders.request_price.shape != (n_r,):
        raise ValueError("request_price must have one value per request")
    if (orders.offer_qty < 0).any() or (orders.request_qty < 0).any() or (orders.offer_min < 0).any():
        raise ValueError("quantities must not be negative")
    if not (np.isfinite(orders.offer_price).all() and np.isfinite(orders.request_price).all()):
        raise ValueError("prices must be finite")
    if orders.request_tso is not None and np.shape(orders.request_tso) != (n_r,):
        raise ValueError("request_tso must have one value per request")
    if orders.offer_tso_eligible is not None and np.shape(orders.offer_tso_eligible) != (n_o,):
        raise ValueError("offer_tso_eligible must have one value per offer")
    low, high = _consecutive(orders)
    if (low < 1).any() or (high < 0).any() or ((high > 0) & (high < low)).any():
        raise ValueError("consecutive PTUs: minimum at least 1, maximum 0 (none) or at least the minimum")


def _tso_flags(orders: AuctionOrders) -> tuple[np.ndarray, np.ndarray]:
    """(request is a TSO's, offer is TSO-eligible) per order."""
    tso = (
        np.zeros(orders.n_requests, bool)
        if orders.request_tso is None
        else np.asarray(orders.request_tso, bool)
    )
    eligible = (
        np.ones(orders.n_offers, bool)
        if orders.offer_tso_eligible is None
        else np.asarray(orders.offer_tso_eligible, bool)
    )
    return tso, eligible


def _age_weights(n: int) -> np.ndarray:
    """Strictly increasing in index, in (0, 1]; the golden-ratio jitter keeps sums of different sets apart."""
    k = np.arange(n)
    return (k + 1 + 0.5 * ((k * _GOLDEN) % 1.0)) / (n + 1.5)


def _runs(mask: np.ndarray) -> list[int]:
    lengths, length = [], 0
    for on in mask:
        if on:
            length += 1
        elif length:
            lengths.append(length)
            length = 0
    if length:
        lengths.append(length)
    return lengths


class _Rows:
    """Collects sparse rows as (row, column, value) triplets with bounds."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.count = 0

    def add(self, row, col, val, n_rows, lo, hi) -> None:
        self.rows.append(self.count + np.asarray(row, dtype=np.int64))
        self.cols.append(np.asarray(col, dtype=np.int64))
        self.vals.append(np.asarray(val, dtype=float))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n_rows,)).copy())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n_rows,)).copy())
        self.count += n_rows

    def matrix(self, n_cols: int) -> sparse.csc_matrix:
        if not self.rows:
            return sparse.csc_matrix((0, n_cols))
        return sparse.csc_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.count, n_cols),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.lo:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.lo), np.concatenate(self.hi)


def _highs_lp(cost, lower, upper, matrix, row_lo, row_hi, *, maximise: bool, integer=None) -> highspy.HighsLp:
    lp = highspy.HighsLp()
    lp.num_col_ = int(cost.size)
    lp.num_row_ = int(matrix.shape[0])
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lower, dtype=float)
    lp.col_upper_ = np.asarray(upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lo, dtype=float)
    lp.row_upper_ = np.asarray(row_hi, dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    if integer is not None and integer.any():
        lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integer]
    return lp


def _build(orders: AuctionOrders, network: NetworkConstraints | None) -> tuple[highspy.HighsLp, _Cells]:
    n_t = orders.n_ptus
    xo, xt = np.nonzero(orders.offer_qty > EPS)
    yr, yt = np.nonzero(orders.request_qty > EPS)
    n_x, n_y = xo.size, yr.size
    x_upper = orders.offer_qty[xo, xt]
    y_upper = orders.request_qty[yr, yt]
    min_run, max_run = _consecutive(orders)
    span = (orders.offer_qty > EPS).sum(axis=1)
    has_run_rule = (min_run > 1) | ((max_run > 0) & (max_run < span))

    # Columns: x cells, y cells, one binary per block offer, one binary per other non-convex x cell.
    block_offers = np.nonzero(orders.offer_block & (span > 0))[0]
    block_of = np.full(orders.n_offers, -1)
    block_of[block_offers] = n_x + n_y + np.arange(block_offers.size)
    is_block_cell = orders.offer_block[xo]
    needs_u = ~is_block_cell & ((orders.offer_min[xo] > EPS) | has_run_rule[xo])
    u_cells = np.nonzero(needs_u)[0]
    n_b, n_u = block_offers.size, u_cells.size
    n_cols = n_x + n_y + n_b + n_u
    u_col = np.full(n_x, -1)
    u_col[u_cells] = n_x + n_y + n_b + np.arange(n_u)
    block_col = np.where(is_block_cell, block_of[xo], -1)
    x_floor = np.where(
        needs_u, np.maximum(orders.offer_min[xo], np.where(has_run_rule[xo], RUN_MIN_KW, 0)), 0.0
    )
    nonconvex = is_block_cell | needs_u

    steps = 1.0 / PRICE_STEP
    # Older offers first; within one offer, earlier PTUs first (ties between run patterns of one offer).
    x_cost = np.round(orders.offer_price[xo] * steps) + TIE_BREAK * _age_weights(orders.n_offers)[xo] * (
        0.9 + 0.1 * (xt + 1) / (n_t + 1)
    )
    y_value = np.round(orders.request_price[yr] * steps) + TIE_BREAK * (
        2 - _age_weights(orders.n_requests)[yr]
    )
    cost = np.concatenate([-x_cost, y_value, np.zeros(n_b + n_u)])
    upper = np.concatenate([x_upper, y_upper, np.ones(n_b + n_u)])
    upper[u_col[u_cells]] = np.where(
        x_floor[u_cells] > x_upper[u_cells] + EPS, 0.0, 1.0
    )  # minimum above the cell
    # A block whose offered profile breaks its own run limits can never be accepted.
    for position, o in enumerate(block_offers):
        lengths = _runs(orders.offer_qty[o] > EPS)
        if min(lengths) < min_run[o] or (max_run[o] > 0 and max(lengths) > max_run[o]):
            upper[n_x + n_y + position] = 0.0

    rows = _Rows()
    # Balance per (zone, PTU) that has any cell.
    x_group_key = orders.offer_zone[xo] * n_t + xt
    y_group_key = orders.request_zone[yr] * n_t + yt
    groups, inverse = np.unique(np.concatenate([x_group_key, y_group_key]), return_inverse=True)
    x_group, y_group = inverse[:n_x], inverse[n_x:]
    rows.add(
        inverse,
        np.arange(n_x + n_y),
        np.concatenate([np.ones(n_x), -np.ones(n_y)]),
        groups.size,
        0.0,
        0.0,
    )

    # Blocks: x_ot - q_ot * b_o = 0.
    cells = np.nonzero(is_block_cell)[0]
    if cells.size:
        r = np.arange(cells.size)
        rows.add(
            np.concatenate([r, r]),
            np.concatenate([cells, block_col[cells]]),
            np.concatenate([np.ones(cells.size), -x_upper[cells]]),
            cells.size,
            0.0,
            0.0,
        )

    # Acceptance of other non-convex cells: x - floor*u >= 0 and x - q*u <= 0.
    if n_u:
        r = np.arange(n_u)
        rows.add(
            np.concatenate([r, r]),
            np.concatenate([u_cells, u_col[u_cells]]),
            np.concatenate([np.ones(n_u), -x_floor[u_cells]]),
            n_u,
            0.0,
            np.inf,
        )
        rows.add(
            np.concatenate([r, r]),
            np.concatenate([u_cells, u_col[u_cells]]),
            np.concatenate([np.ones(n_u), -x_upper[u_cells]]),
            n_u,
            -np.inf,
            0.0,
        )

    # Runs of accepted PTUs (not blocks): a run starting at t lasts min PTUs; no window of max + 1 is all accepted.
    run_r, run_c, run_v, run_lo, run_hi = [], [], [], [], []
    for o in np.nonzero(has_run_rule & ~orders.offer_block)[0]:
        col = np.full(n_t + 1, -1)  # col[-1] (t = -1 or n_t) stays -1
        mine = u_cells[xo[u_cells] == o]
        col[xt[mine]] = u_col[mine]
        for t in xt[mine]:
            if min_run[o] > 1:
                for k in range(1, int(min_run[o])):
                    later = col[t + k] if t + k < n_t else -1
                    terms = [(later, 1.0), (col[t], -1.0), (col[t - 1] if t > 0 else -1, 1.0)]
                    terms = [(c, v) for c, v in terms if c >= 0]
                    run_r.append(np.full(len(terms), len(run_lo)))
                    run_c.append([c for c, _ in terms])
                    run_v.append([v for _, v in terms])
                    run_lo.append(0.0)
                    run_hi.append(np.inf)
                    if later < 0:
                        break
            if max_run[o] > 0 and t + max_run[o] < n_t:
                window = col[t : t + max_run[o] + 1]
                if (window >= 0).all():
                    run_r.append(np.full(window.size, len(run_lo)))
                    run_c.append(window)
                    run_v.append(np.ones(window.size))
                    run_lo.append(-np.inf)
                    run_hi.append(float(max_run[o]))
    if run_lo:
        rows.add(
            np.concatenate(run_r), np.concatenate(run_c), np.concatenate(run_v), len(run_lo), run_lo, run_hi
        )

    # Compatibility (Hall) rows per group and request limit L with an offer above L: only where non-convex
    # offers could make them bind, or everywhere when network rows couple the zones.
    x_price = orders.offer_price[xo]
    y_price = orders.request_price[yr]
    request_tso, offer_eligible = _tso_flags(orders)
    y_tso, x_eligible = request_tso[yr], offer_eligible[xo]
    tso_groups = np.unique(y_group[y_tso])
    hall_groups = (
        np.arange(groups.size)
        if network is not None
        else np.union1d(np.unique(x_group[nonconvex]), tso_groups)
    )
    x_by_group = np.argsort(x_group, kind="stable")
    y_by_group = np.argsort(y_group, kind="stable")
    x_bounds = np.searchsorted(x_group[x_by_group], np.arange(groups.size + 1))
    y_bounds = np.searchsorted(y_group[y_by_group], np.arange(groups.size + 1))
    hall_r, hall_c, hall_v, n_hall = [], [], [], 0
    tso_set = set(tso_groups.tolist())
    for g in hall_groups:
        xs = x_by_group[x_bounds[g] : x_bounds[g + 1]]
        ys = y_by_group[y_bounds[g] : y_bounds[g + 1]]
        if not xs.size or not ys.size:
            continue
        if network is None and g not in tso_set:
            # A non-convex cell bid above every limit here can never be accepted: switch it off rather than
            # write the row at the highest limit (cheaper to solve; the same feasible set).
            stranded = xs[nonconvex[xs] & (x_price[xs] > y_price[ys].max())]
            upper[block_col[stranded[block_col[stranded] >= 0]]] = 0.0
            upper[u_col[stranded[u_col[stranded] >= 0]]] = 0.0
            xs_above = xs[nonconvex[xs] & (x_price[xs] <= y_price[ys].max())]
        else:
            xs_above = xs
        above = x_price[xs_above]
        for level in np.unique(y_price[ys]):
            if not (above > level).any():
                continue
            y_in = ys[y_price[ys] <= level]
            x_in = xs[x_price[xs] <= level]
            hall_r.append(np.full(y_in.size + x_in.size, n_hall))
            hall_c.append(np.concatenate([n_x + y_in, x_in]))
            hall_v.append(np.concatenate([np.ones(y_in.size), -np.ones(x_in.size)]))
            n_hall += 1
    # TSO requests are served only by TSO-eligible offers. With DSO requests up to limit L1 and TSO requests up
    # to L2 > L1 together, their demand must fit in the offers up to L1 plus the eligible ones in (L1, L2]
    # (the rest of Hall's condition for two classes of buyers; L1 = -inf means no DSO request).
    for g in tso_groups:
        xs = x_by_group[x_bounds[g] : x_bounds[g + 1]]
        ys = y_by_group[y_bounds[g] : y_bounds[g + 1]]
        dso_levels = np.concatenate([[-np.inf], np.unique(y_price[ys[~y_tso[ys]]])])
        for level_tso in np.unique(y_price[ys[y_tso[ys]]]):
            for level_dso in dso_levels[dso_levels < level_tso]:
                y_in = ys[
                    (~y_tso[ys] & (y_price[ys] <= level_dso)) | (y_tso[ys] & (y_price[ys] <= level_tso))
                ]
                x_in = xs[
                    (x_price[xs] <= level_dso)
                    | (x_eligible[xs] & (x_price[xs] > level_dso) & (x_price[xs] <= level_tso))
                ]
                hall_r.append(np.full(y_in.size + x_in.size, n_hall))
                hall_c.append(np.concatenate([n_x + y_in, x_in]))
                hall_v.append(np.concatenate([np.ones(y_in.size), -np.ones(x_in.size)]))
                n_hall += 1
    if n_hall:
        rows.add(np.concatenate(hall_r), np.concatenate(hall_c), np.concatenate(hall_v), n_hall, -np.inf, 0.0)

    # Network: for each line l and PTU t, base + sum_z S[l,z] * sum_{x in z,t} x  within ±limit.
    network_start = rows.count
    if network is not None:
        n_lines = network.sensitivity.shape[0]
        line_idx, cell_idx = np.meshgrid(np.arange(n_lines), np.arange(n_x), indexing="ij")
        coefficient = network.sensitivity[line_idx, orders.offer_zone[xo][cell_idx]]
        keep = np.abs(coefficient) > EPS
        limit = np.repeat(network.limit[:, None], n_t, axis=1)
        rows.add(
            (line_idx * n_t + xt[cell_idx])[keep],
            cell_idx[keep],
            coefficient[keep],
            n_lines * n_t,
            (-limit - network.base_flow).ravel(),
            (limit - network.base_flow).ravel(),
        )
    network_rows = slice(network_start, rows.count)

    integer = np.zeros(n_cols, dtype=np.int32)
    integer[n_x + n_y :] = 1
    row_lo, row_hi = rows.bounds()
    lp = _highs_lp(
        cost, np.zeros(n_cols), upper, rows.matrix(n_cols), row_lo, row_hi, maximise=True, integer=integer
    )
    cells = _Cells(
        xo=xo,
        xt=xt,
        yr=yr,
        yt=yt,
        x_group=x_group,
        y_group=y_group,
        groups=groups,
        x_cost=x_cost,
        y_value=y_value,
        x_floor=x_floor,
        block_col=block_col,
        u_col=u_col,
        nonconvex=nonconvex,
        network_rows=network_rows,
    )
    return lp, cells


def build_model(orders: AuctionOrders, network: NetworkConstraints | None = None):
    """Assemble the HiGHS model from index arrays. Returns (HighsLp, cells) where cells maps columns back."""
    lp, cells = _build(orders, network)
    return lp, {
        "xo": cells.xo,
        "xt": cells.xt,
        "yr": cells.yr,
        "yt": cells.yt,
        "n_x": cells.n_x,
        "n_y": cells.n_y,
    }


def _highs(*, time_limit: float | None = None, mip_gap: float = 0.0) -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    highs.setOptionValue("mip_rel_gap", float(mip_gap))
    if time_limit is not None:
        highs.setOptionValue("time_limit", float(time_limit))
    return highs


def _status(highs: highspy.Highs) -> str:
    status = highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")
    return {"time_limit_reached": "time_limit"}.get(status, status)


def solve_model(
    lp, *, time_limit: float | None = None, mip_gap: float = 0.0
) -> tuple[str, float, np.ndarray, str]:
    """Solve a built model with HiGHS; returns (status, objective, column values, solver name)."""
    highs = _highs(time_limit=time_limit, mip_gap=mip_gap)
    highs.passModel(lp)
    highs.run()
    status = _status(highs)
    solution = highs.getSolution()
    values = np.asarray(solution.col_value) if solution.value_valid else np.zeros(lp.num_col_)
    objective = float(highs.getInfo().objective_function_value) if solution.value_valid else 0.0
    return status, objective, values, f"HiGHS {version('highspy')} via highspy"


def solve_model_pulp(
    lp, *, time_limit: float | None = None, mip_gap: float = 0.0
) -> tuple[str, float, np.ndarray, str]:
    """Solve the same built model through PuLP's HiGHS interface (one Python object per column and row)."""
    import pulp

    n_cols = lp.num_col_
    integer = [int(v) for v in lp.integrality_] if len(lp.integrality_) else [0] * n_cols
    problem = pulp.LpProblem("clearing", pulp.LpMaximize)
    # PuLP 3 attaches variables to the problem; older PuLP creates them free-standing.
    variable = getattr(problem, "add_variable", pulp.LpVariable)
    columns = [
        variable(f"c{j}", lo, hi, pulp.LpInteger if integer[j] else pulp.LpContinuous)
        for j, (lo, hi) in enumerate(zip(lp.col_lower_, lp.col_upper_, strict=True))
    ]
    problem += pulp.LpAffineExpression(
        [(columns[j], float(c)) for j, c in enumerate(lp.col_cost_) if c != 0.0]
    )
    matrix = sparse.csc_matrix(
        (lp.a_matrix_.value_, lp.a_matrix_.index_, lp.a_matrix_.start_), shape=(lp.num_row_, n_cols)
    ).tocsr()
    for i in range(lp.num_row_):
        start, stop = matrix.indptr[i], matrix.indptr[i + 1]
        expression = pulp.LpAffineExpression(
            [
                (columns[j], float(v))
                for j, v in zip(matrix.indices[start:stop], matrix.data[start:stop], strict=True)
            ]
        )
        lower, upper = float(lp.row_lower_[i]), float(lp.row_upper_[i])
        if lower == upper:
            problem += expression == lower, f"r{i}"
            continue
        if np.isfinite(lower):
            problem += expression >= lower, f"r{i}lo"
        if np.isfinite(upper):
            problem += expression <= upper, f"r{i}hi"
    solver = pulp.HiGHS(msg=False, threads=1, gapRel=mip_gap, timeLimit=time_limit, random_seed=0)
    problem.solve(solver)
    status = pulp.LpStatus[problem.status].lower().replace(" ", "_")
    if status == "not_solved" and time_limit is not None:
        status = "time_limit"
    values = np.array([column.varValue or 0.0 for column in columns])
    objective = float(pulp.value(problem.objective) or 0.0)
    return status, objective, values, f"HiGHS {version('highspy')} via PuLP {pulp.__version__}"


def _fixed_bounds(lp, cells: _Cells, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds of the x and y cells once the integer decisions are fixed at `values`."""
    n_x, n_y = cells.n_x, cells.n_y
    upper = np.asarray(lp.col_upper_, dtype=float).copy()
    lower = np.zeros(upper.size)
    decided = np.round(values[n_x + n_y :]).clip(0, 1)
    upper[n_x + n_y :] = lower[n_x + n_y :] = decided
    on = np.ones(n_x, dtype=bool)
    blocks = cells.block_col >= 0
    on[blocks] = decided[cells.block_col[blocks] - n_x - n_y] > 0.5
    units = cells.u_col >= 0
    on[units] = decided[cells.u_col[units] - n_x - n_y] > 0.5
    upper[:n_x] = np.where(on, upper[:n_x], 0.0)
    lower[:n_x] = np.where(blocks, upper[:n_x], np.where(on, cells.x_floor, 0.0))
    return lower, upper


def _price_range(
    orders: AuctionOrders,
    cells: _Cells,
    network: NetworkConstraints | None,
    lp,
    lower: np.ndarray,
    upper: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Lowest and highest dual-optimal balance price of each group (EUR/MWh), or None if none supports `x, y`.

    Unknowns: one price per group, one shadow price per network row, one make-whole per accepted non-convex cell.
    Each divisible cell's bound status gives one inequality (complementary slackness); the total make-whole is
    minimised first and then held, and the sum of the cleared groups' prices minimised and maximised.
    """
    n_x, n_y, n_g = cells.n_x, cells.n_y, cells.groups.size
    x_cost = cells.x_cost * PRICE_STEP
    y_value = cells.y_value * PRICE_STEP
    x_lo, x_hi = lower[:n_x], upper[:n_x]
    x_free = x_hi - x_lo > EPS
    soft = np.nonzero(cells.nonconvex & (x > EPS))[0]
    n_s = soft.size

    net = sparse.csr_matrix((0, n_x))
    n_net = 0
    if network is not None:
        net = _matrix(lp)[cells.network_rows, :n_x].tocsr()
        n_net = net.shape[0]
    n_cols = n_g + n_net + n_s
    scale = 1e3 + 10 * max(np.abs(x_cost).max(initial=0), np.abs(y_value).max(initial=0))
    col_lo = np.concatenate([np.full(n_g, -scale), np.full(n_net, -1e3 * scale), np.zeros(n_s)])
    col_hi = np.concatenate([np.full(n_g, scale), np.full(n_net, 1e3 * scale), np.full(n_s, 2 * scale)])
    if n_net:
        activity = net @ x
        row_lo = np.asarray(lp.row_lower_)[cells.network_rows]
        row_hi = np.asarray(lp.row_upper_)[cells.network_rows]
        at_hi = activity >= row_hi - 1e-6
        at_lo = activity <= row_lo + 1e-6
        # At the upper limit a shadow price is >= 0, at the lower <= 0, strictly inside 0; a zero-width row is free.
        col_lo[n_g : n_g + n_net] = np.where(at_hi & ~at_lo, 0.0, col_lo[n_g : n_g + n_net])
        col_hi[n_g : n_g + n_net] = np.where(at_lo & ~at_hi, 0.0, col_hi[n_g : n_g + n_net])
        inside = ~at_hi & ~at_lo
        col_lo[n_g : n_g + n_net][inside] = col_hi[n_g : n_g + n_net][inside] = 0.0

    def nodal(which: np.ndarray) -> sparse.csr_matrix:
        """Rows price_g - sum_l S_l shadow_l for the given x cells."""
        own = sparse.csr_matrix(
            (np.ones(which.size), (np.arange(which.size), cells.x_group[which])), shape=(which.size, n_g)
        )
        lines = -net[:, which].T.tocsr() if n_net else sparse.csr_matrix((which.size, 0))
        return sparse.hstack([own, lines, sparse.csr_matrix((which.size, n_s))]).tocsr()

    parts, row_lo, row_hi = [], [], []
    # Divisible offer cells: at the lower bound price <= cost; at the upper price >= cost; between, equal.
    free_x = np.nonzero(x_free)[0]
    parts.append(nodal(free_x))
    cost = x_cost[free_x]
    row_lo.append(np.where(x[free_x] >= x_lo[free_x] + EPS, cost, -np.inf))
    row_hi.append(np.where(x[free_x] <= x_hi[free_x] - EPS, cost, np.inf))
    # Requests: rejected part means price >= limit; accepted part means price <= limit.
    parts.append(sparse.csr_matrix((np.ones(n_y), (np.arange(n_y), cells.y_group)), shape=(n_y, n_cols)))
    y_upper = np.asarray(lp.col_upper_)[n_x : n_x + n_y]
    row_lo.append(np.where(y <= y_upper - EPS, y_value, -np.inf))
    row_hi.append(np.where(y >= EPS, y_value, np.inf))
    # Accepted non-convex cells: price + make-whole >= cost.
    if n_s:
        make_whole = sparse.csr_matrix(
            (np.ones(n_s), (np.arange(n_s), n_g + n_net + np.arange(n_s))), shape=(n_s, n_cols)
        )
        parts.append(nodal(soft) + make_whole)
        row_lo.append(x_cost[soft])
        row_hi.append(np.full(n_s, np.inf))
    matrix = sparse.vstack(parts).tocsc()
    row_lo, row_hi = np.concatenate(row_lo), np.concatenate(row_hi)

    def solve(objective, matrix, row_lo, row_hi):
        highs = _highs()
        highs.passModel(_highs_lp(objective, col_lo, col_hi, matrix, row_lo, row_hi, maximise=False))
        highs.run()
        if _status(highs) != "optimal":
            return None
        return np.asarray(highs.getSolution().col_value)

    if n_s:
        weights = np.zeros(n_cols)
        weights[n_g + n_net :] = x[soft]
        first = solve(weights, matrix, row_lo, row_hi)
        if first is None:
            return None
        least = float(weights @ first)
        matrix = sparse.vstack([matrix, sparse.csr_matrix(weights)]).tocsc()
        row_lo = np.append(row_lo, -np.inf)
        row_hi = np.append(row_hi, least + 1e-7 * max(1.0, abs(least)))
    cleared = np.zeros(n_cols)
    cleared[np.unique(cells.x_group[x > EPS])] = 1.0
    low = solve(cleared, matrix, row_lo, row_hi)
    high = solve(-cleared, matrix, row_lo, row_hi)
    if low is None or high is None:
        return None
    return low[:n_g], high[:n_g]


def _matrix(lp) -> sparse.csc_matrix:
    return sparse.csc_matrix(
        (lp.a_matrix_.value_, lp.a_matrix_.index_, lp.a_matrix_.start_), shape=(lp.num_row_, lp.num_col_)
    )


def _fixed_lp(lp, lower: np.ndarray, upper: np.ndarray) -> highspy.HighsLp:
    """The same model with every column continuous and the given bounds (integer decisions fixed)."""
    return _highs_lp(
        np.asarray(lp.col_cost_), lower, upper, _matrix(lp), lp.row_lower_, lp.row_upper_, maximise=True
    )


def _balance_duals(lp, lower, upper, cells: _Cells) -> np.ndarray:
    """Fallback price: HiGHS's dual of each balance row in the fixed LP (EUR/MWh)."""
    highs = _highs()
    highs.passModel(_fixed_lp(lp, lower, upper))
    highs.run()
    duals = np.asarray(highs.getSolution().row_dual)[: cells.groups.size]
    return -duals * PRICE_STEP


def decompose(
    orders: AuctionOrders,
    offer_alloc: np.ndarray,
    request_alloc: np.ndarray,
    zone_price: np.ndarray,
    pricing: str,
) -> Trades:
    """Split each zone-PTU's volume into trades: the lowest-limit request takes the cheapest offers first.

    With the compatibility rows satisfied, every trade pairs a bid with a limit at least as high. Ties by index.
    """
    out_r, out_o, out_t, out_kw, out_p, out_u = [], [], [], [], [], []
    request_tso, offer_eligible = _tso_flags(orders)
    offer_cells_o, offer_cells_t = np.nonzero(offer_alloc > EPS)
    if not offer_cells_o.size:
        return _empty_trades()
    request_cells_r, request_cells_t = np.nonzero(request_alloc > EPS)
    offer_key = orders.offer_zone[offer_cells_o] * orders.n_ptus + offer_cells_t
    request_key = orders.request_zone[request_cells_r] * orders.n_ptus + request_cells_t
    offer_order = np.lexsort((offer_cells_o, orders.offer_price[offer_cells_o], offer_key))
    request_order = np.lexsort((request_cells_r, orders.request_price[request_cells_r], request_key))
    offer_cells_o, offer_key = offer_cells_o[offer_order], offer_key[offer_order]
    request_cells_r, request_key = request_cells_r[request_order], request_key[request_order]
    offer_bounds = np.append(np.searchsorted(offer_key, np.unique(offer_key)), offer_key.size)
    for start, stop in zip(offer_bounds[:-1], offer_bounds[1:], strict=True):
        key = offer_key[start]
        r_start, r_stop = np.searchsorted(request_key, key), np.searchsorted(request_key, key, side="right")
        zone, ptu = divmod(int(key), orders.n_ptus)
        sellers = [[int(o), float(offer_alloc[o, ptu])] for o in offer_cells_o[start:stop]]
        buyers = [[int(r), float(request_alloc[r, ptu])] for r in request_cells_r[r_start:r_stop]]
        if request_tso[[r for r, _ in buyers]].any():
            pairs = _pair_with_tso(orders, sellers, buyers, request_tso, offer_eligible)
        else:
            pairs = _pair(sellers, buyers)
        for r, o, kw in pairs:
            bid, limit = float(orders.offer_price[o]), float(orders.request_price[r])
            price = bid
            if pricing == "uniform":
                price = min(max(float(zone_price[zone, ptu]), bid), limit)
            out_r.append(r)
            out_o.append(o)
            out_t.append(ptu)
            out_kw.append(kw)
            out_p.append(price)
            out_u.append(price - float(zone_price[zone, ptu]) if pricing == "uniform" else 0.0)
    return Trades(
        np.array(out_r, dtype=int),
        np.array(out_o, dtype=int),
        np.array(out_t, dtype=int),
        np.array(out_kw),
        np.array(out_p),
        np.round(np.array(out_u), 4),
    )


def _pair(sellers: list[list], buyers: list[list]) -> list[tuple[int, int, float]]:
    """Walk both lists in order (buyers lowest limit first, sellers cheapest first): (request, offer, kW)."""
    pairs, i, j = [], 0, 0
    while i < len(sellers) and j < len(buyers):
        (o, left_o), (r, left_r) = sellers[i], buyers[j]
        kw = min(left_o, left_r)
        if kw > EPS:
            pairs.append((r, o, kw))
        sellers[i][1] -= kw
        buyers[j][1] -= kw
        if sellers[i][1] <= EPS:
            i += 1
        if buyers[j][1] <= EPS:
            j += 1
    return pairs


def _pair_with_tso(orders, sellers, buyers, request_tso, offer_eligible) -> list[tuple[int, int, float]]:
    """Pairs in a cell with TSO requests: buyers lowest limit first (a TSO's before a DSO's at the same limit);
    a TSO's request takes eligible offers cheapest first; a DSO's takes offers a TSO cannot use first, then
    eligible ones, cheapest first. Every offer a buyer can use can be used by every later buyer of its class, so
    keeping eligible offers for TSOs is the only choice that matters, and the model's rows guarantee a fit."""
    buyers = sorted(buyers, key=lambda b: (orders.request_price[b[0]], not request_tso[b[0]]))
    pairs = []
    for r, wanted in buyers:
        limit = orders.request_price[r]
        usable = [s for s in sellers if s[1] > EPS and orders.offer_price[s[0]] <= limit + EPS]
        if request_tso[r]:
            usable = [s for s in usable if offer_eligible[s[0]]]
        else:
            usable = [s for s in usable if not offer_eligible[s[0]]] + [
                s for s in usable if offer_eligible[s[0]]
            ]
        for seller in usable:
            if wanted <= EPS:
                break
            kw = min(wanted, seller[1])
            pairs.append((r, seller[0], kw))
            seller[1] -= kw
            wanted -= kw
    return pairs


def welfare(orders: AuctionOrders, offer_alloc: np.ndarray, request_alloc: np.ndarray) -> float:
    """True (unperturbed) welfare in EUR of an allocation."""
    value = float(
        orders.request_price @ request_alloc.sum(axis=1) - orders.offer_price @ offer_alloc.sum(axis=1)
    )
    return value * ENERGY_PER_KW_PTU_MWH


def clear_auction(
    orders: AuctionOrders,
    *,
    pricing: str = "uniform",
    network: NetworkConstraints | None = None,
    time_limit: float | None = None,
    mip_gap: float = 0.0,
    backend: str = "highspy",
) -> AuctionResult:
    """Clear one session. `pricing` is "uniform" or "pay_as_bid"; `backend` is "highspy" or "pulp" (small models)."""
    if pricing not in ("uniform", "pay_as_bid"):
        raise ValueError("pricing must be 'uniform' or 'pay_as_bid'")
    if backend not in ("highspy", "pulp"):
        raise ValueError("backend must be 'highspy' or 'pulp'")
    validate_orders(orders)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    lp, cells = _build(orders, network)
    timings["build"] = time.perf_counter() - started
    offer_alloc = np.zeros((orders.n_offers, orders.n_ptus))
    request_alloc = np.zeros((orders.n_requests, orders.n_ptus))
    no_price = np.full((orders.n_zones, orders.n_ptus), np.nan)
    if cells.n_x == 0 or cells.n_y == 0:
        return AuctionResult(
            "optimal", 0.0, offer_alloc, request_alloc, no_price, _empty_trades(), timings,
            "none (nothing to clear)", no_price.copy(), no_price.copy(),
        )  # fmt: skip
    started = time.perf_counter()
    solve = solve_model_pulp if backend == "pulp" else solve_model
    status, _, values, solver = solve(lp, time_limit=time_limit, mip_gap=mip_gap)
    n_x, n_y = cells.n_x, cells.n_y
    lower, upper = _fixed_bounds(lp, cells, values)
    if len(lp.integrality_) and status in ("optimal", "time_limit") and np.any(values):
        # Fix the integer decisions and re-solve the LP: the continuous part is then the model's unique optimum.
        fixed_status, _, fixed_values, _ = solve(_fixed_lp(lp, lower, upper))
        if fixed_status == "optimal":
            values = fixed_values
    timings["solve"] = time.perf_counter() - started
    started = time.perf_counter()
    x = np.round(np.clip(values[:n_x], lower[:n_x], upper[:n_x]), 6)
    y = np.round(np.clip(values[n_x : n_x + n_y], 0, upper[n_x : n_x + n_y]), 6)
    x[x <= EPS], y[y <= EPS] = 0.0, 0.0
    offer_alloc[cells.xo, cells.xt] = x
    request_alloc[cells.yr, cells.yt] = y
    zone_price, price_low, price_high = no_price.copy(), no_price.copy(), no_price.copy()
    cleared = np.unique(cells.x_group[x > EPS])
    if cleared.size:
        found = _price_range(orders, cells, network, lp, lower, upper, x, y)
        if found is None:
            low = high = _balance_duals(lp, lower, upper, cells)
        else:
            low, high = found
        zone, ptu = np.divmod(cells.groups[cleared], orders.n_ptus)
        price_low[zone, ptu] = np.round(low[cleared], 4)
        price_high[zone, ptu] = np.round(high[cleared], 4)
        zone_price[zone, ptu] = price_low[zone, ptu]
    timings["prices"] = time.perf_counter() - started
    started = time.perf_counter()
    trades = decompose(orders, offer_alloc, request_alloc, zone_price, pricing)
    timings["decompose"] = time.perf_counter() - started
    return AuctionResult(
        status,
        welfare(orders, offer_alloc, request_alloc),
        offer_alloc,
        request_alloc,
        zone_price,
        trades,
        timings,
        solver,
        price_low,
        price_high,
    )
