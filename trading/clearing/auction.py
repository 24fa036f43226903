"""Gate-closure auction: one welfare-maximising optimisation over a session's orders (FLEXGRID ATP-RQT_02).

Pure module: numpy arrays in, dataclasses out; no Django.

Model (per non-zero cell; energy of a kW cell over a 15-minute PTU is kW / 4 / 1000 MWh):
    maximise  sum_r,t  p_r * y_rt * E  -  sum_o,t  c_o * x_ot * E
    s.t.      sum_{o in zone z} x_ot = sum_{r in zone z} y_rt          for every zone z and PTU t
              0 <= x_ot <= q_ot,  0 <= y_rt <= d_rt
              block offers:       x_ot = q_ot * b_o,  b_o in {0, 1}   (all-or-nothing over all its PTUs)
              minimum quantity:   m_o * u_ot <= x_ot <= q_ot * u_ot,  u_ot in {0, 1}
              network (optional): -limit <= base_flow + S @ injection <= limit  per line and PTU
The model is assembled as one sparse matrix from index arrays and handed to HiGHS (highspy) directly; the same
arrays can go through PuLP's HiGHS interface (backend="pulp"), which is ~15x slower at 1,000 offers (docs/clearing.md).
Network-aware clearing adds rows to that matrix (NetworkConstraints); nothing else changes.

Pricing rule (uniform): per zone and PTU the price is the highest bid among the offers accepted there (the
marginal accepted offer), capped at the lowest limit among the requests accepted there, so every cleared request
pays at most its limit. Ties in price are broken by order index (callers pass orders oldest first), so older
orders are accepted first. Block and minimum-quantity offers set the price like any accepted offer; when such an
offer is accepted at a bid above the capped price (possible only through its all-or-nothing or minimum-quantity
condition), each of its trades is paid its own bid (make-whole) but never more than that trade's request limit, so
no buyer ever pays above its limit; such a seller may then receive less than its bid on some trades (the price of
non-convex offers under a uniform price). Paradoxically rejected blocks are allowed.
Pay-as-bid: each trade is priced at the offer's bid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse

ENERGY_PER_KW_PTU_MWH = 0.25 / 1000.0
EPS = 1e-6


@dataclass(frozen=True)
class AuctionOrders:
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
    request_idx: np.ndarray
    offer_idx: np.ndarray
    ptu: np.ndarray
    kw: np.ndarray
    price: np.ndarray

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


def _empty_trades() -> Trades:
    empty = np.zeros(0)
    return Trades(empty.astype(int), empty.astype(int), empty.astype(int), empty, empty)


def validate_orders(orders: AuctionOrders) -> None:
    """Raise ValueError on inconsistent shapes or negative quantities."""
    n_o, n_r, n_t = orders.n_offers, orders.n_requests, orders.n_ptus
    if orders.offer_qty.shape != (n_o, n_t) or orders.request_qty.shape != (n_r, n_t):
        raise ValueError("quantity arrays must be (orders, PTUs)")
    for name in ("offer_min", "offer_price", "offer_block"):
        if getattr(orders, name).shape != (n_o,):
            raise ValueError(f"{name} must have one value per offer")
    if orders.request_price.shape != (n_r,):
        raise ValueError("request_price must have one value per request")
    if (orders.offer_qty < 0).any() or (orders.request_qty < 0).any() or (orders.offer_min < 0).any():
        raise ValueError("quantities must not be negative")


def build_model(orders: AuctionOrders, network: NetworkConstraints | None = None):
    """Assemble the HiGHS model from index arrays. Returns (HighsLp, cells) where cells maps columns back."""
    n_t = orders.n_ptus
    xo, xt = np.nonzero(orders.offer_qty > EPS)
    yr, yt = np.nonzero(orders.request_qty > EPS)
    n_x, n_y = xo.size, yr.size
    x_upper = orders.offer_qty[xo, xt]
    y_upper = orders.request_qty[yr, yt]

    block_offers = np.nonzero(orders.offer_block & (orders.offer_qty.sum(axis=1) > EPS))[0]
    block_col = np.full(orders.n_offers, -1)
    block_col[block_offers] = n_x + n_y + np.arange(block_offers.size)
    is_block_cell = orders.offer_block[xo]
    min_cells = np.nonzero(~is_block_cell & (orders.offer_min[xo] > EPS))[0]
    n_b, n_u = block_offers.size, min_cells.size
    n_cols = n_x + n_y + n_b + n_u

    cost = np.concatenate(
        [
            -orders.offer_price[xo] * ENERGY_PER_KW_PTU_MWH,
            orders.request_price[yr] * ENERGY_PER_KW_PTU_MWH,
            np.zeros(n_b + n_u),
        ]
    )
    lower = np.zeros(n_cols)
    upper = np.concatenate([x_upper, y_upper, np.ones(n_b + n_u)])

    rows, cols, vals, row_lo, row_hi = [], [], [], [], []
    next_row = 0

    # Balance per (zone, PTU) that has any cell.
    x_group = orders.offer_zone[xo] * n_t + xt
    y_group = orders.request_zone[yr] * n_t + yt
    groups, inverse = np.unique(np.concatenate([x_group, y_group]), return_inverse=True)
    rows.append(inverse)
    cols.append(np.arange(n_x + n_y))
    vals.append(np.concatenate([np.ones(n_x), -np.ones(n_y)]))
    row_lo.append(np.zeros(groups.size))
    row_hi.append(np.zeros(groups.size))
    next_row += groups.size

    # Blocks: x_ot - q_ot * b_o = 0.
    block_cells = np.nonzero(is_block_cell)[0]
    if block_cells.size:
        r = next_row + np.arange(block_cells.size)
        rows += [r, r]
        cols += [block_cells, block_col[xo[block_cells]]]
        vals += [np.ones(block_cells.size), -x_upper[block_cells]]
        row_lo.append(np.zeros(block_cells.size))
        row_hi.append(np.zeros(block_cells.size))
        next_row += block_cells.size

    # Minimum quantity: x - m*u >= 0 and x - q*u <= 0.
    if n_u:
        u_cols = n_x + n_y + n_b + np.arange(n_u)
        r1 = next_row + np.arange(n_u)
        r2 = r1 + n_u
        rows += [r1, r1, r2, r2]
        cols += [min_cells, u_cols, min_cells, u_cols]
        vals += [np.ones(n_u), -orders.offer_min[xo[min_cells]], np.ones(n_u), -x_upper[min_cells]]
        row_lo += [np.zeros(n_u), np.full(n_u, -np.inf)]
        row_hi += [np.full(n_u, np.inf), np.zeros(n_u)]
        next_row += 2 * n_u

    # Network: for each line l and PTU t, base + sum_z S[l,z] * sum_{x in z,t} x  within ±limit.
    if network is not None:
        n_lines = network.sensitivity.shape[0]
        line_idx, cell_idx = np.meshgrid(np.arange(n_lines), np.arange(n_x), indexing="ij")
        coefficient = network.sensitivity[line_idx, orders.offer_zone[xo][cell_idx]]
        keep = np.abs(coefficient) > EPS
        rows.append(next_row + (line_idx * n_t + xt[cell_idx])[keep])
        cols.append(cell_idx[keep])
        vals.append(coefficient[keep])
        limit = np.repeat(network.limit[:, None], n_t, axis=1)
        row_lo.append((-limit - network.base_flow).ravel())
        row_hi.append((limit - network.base_flow).ravel())
        next_row += n_lines * n_t

    matrix = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(next_row, n_cols)
    )
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = next_row
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = np.concatenate(row_lo)
    lp.row_upper_ = np.concatenate(row_hi)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    if n_b + n_u:
        integrality = np.zeros(n_cols, dtype=np.int32)
        integrality[n_x + n_y :] = 1
        lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integrality]
    cells = {"xo": xo, "xt": xt, "yr": yr, "yt": yt, "n_x": n_x, "n_y": n_y}
    return lp, cells


def solve_model(
    lp, *, time_limit: float | None = None, mip_gap: float = 1e-6
) -> tuple[str, float, np.ndarray, str]:
    """Solve a built model with HiGHS; returns (status, objective, column values, solver name)."""
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    highs.setOptionValue("mip_rel_gap", mip_gap)
    if time_limit is not None:
        highs.setOptionValue("time_limit", float(time_limit))
    highs.passModel(lp)
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus()).lower().replace(" ", "_")
    status = {"time_limit_reached": "time_limit"}.get(status, status)
    solution = highs.getSolution()
    values = np.asarray(solution.col_value) if solution.value_valid else np.zeros(lp.num_col_)
    objective = float(highs.getInfo().objective_function_value) if solution.value_valid else 0.0
    return status, objective, values, f"HiGHS {highspy.Highs().version()} via highspy"


def solve_model_pulp(
    lp, *, time_limit: float | None = None, mip_gap: float = 1e-6
) -> tuple[str, float, np.ndarray, str]:
    """Solve the same built model through PuLP's HiGHS interface (one Python object per column and row)."""
    import pulp

    n_cols = lp.num_col_
    integer = [int(v) for v in lp.integrality_] if len(lp.integrality_) else [0] * n_cols
    problem = pulp.LpProblem("clearing", pulp.LpMaximize)
    columns = [
        problem.add_variable(f"c{j}", lo, hi, pulp.LpInteger if integer[j] else pulp.LpContinuous)
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
    values = np.array([column.varValue or 0.0 for column in columns])
    objective = float(pulp.value(problem.objective) or 0.0)
    return status, objective, values, f"HiGHS {highspy.Highs().version()} via PuLP {pulp.__version__}"


def uniform_prices(orders: AuctionOrders, offer_alloc: np.ndarray, request_alloc: np.ndarray) -> np.ndarray:
    """Marginal accepted offer price per zone and PTU, capped at the lowest accepted request limit."""
    price = np.full((orders.n_zones, orders.n_ptus), np.nan)
    accepted_o, accepted_ot = np.nonzero(offer_alloc > EPS)
    if accepted_o.size:
        highest = np.full((orders.n_zones, orders.n_ptus), -np.inf)
        np.maximum.at(highest, (orders.offer_zone[accepted_o], accepted_ot), orders.offer_price[accepted_o])
        lowest_limit = np.full((orders.n_zones, orders.n_ptus), np.inf)
        accepted_r, accepted_rt = np.nonzero(request_alloc > EPS)
        np.minimum.at(
            lowest_limit, (orders.request_zone[accepted_r], accepted_rt), orders.request_price[accepted_r]
        )
        cleared = np.isfinite(highest)
        price[cleared] = np.minimum(highest, lowest_limit)[cleared]
    return price


def decompose(
    orders: AuctionOrders,
    offer_alloc: np.ndarray,
    request_alloc: np.ndarray,
    zone_price: np.ndarray,
    pricing: str,
) -> Trades:
    """Split each zone-PTU's cleared volume into bilateral trades: cheapest offer to highest request, ties by index."""
    out_r, out_o, out_t, out_kw, out_p = [], [], [], [], []
    offer_cells_o, offer_cells_t = np.nonzero(offer_alloc > EPS)
    if not offer_cells_o.size:
        return _empty_trades()
    request_cells_r, request_cells_t = np.nonzero(request_alloc > EPS)
    offer_key = orders.offer_zone[offer_cells_o] * orders.n_ptus + offer_cells_t
    request_key = orders.request_zone[request_cells_r] * orders.n_ptus + request_cells_t
    offer_order = np.lexsort((offer_cells_o, orders.offer_price[offer_cells_o], offer_key))
    request_order = np.lexsort((request_cells_r, -orders.request_price[request_cells_r], request_key))
    offer_cells_o, offer_cells_t, offer_key = (
        offer_cells_o[offer_order],
        offer_cells_t[offer_order],
        offer_key[offer_order],
    )
    request_cells_r, request_key = request_cells_r[request_order], request_key[request_order]
    request_cells_t = request_cells_t[request_order]
    offer_bounds = np.searchsorted(offer_key, np.unique(offer_key))
    offer_bounds = np.append(offer_bounds, offer_key.size)
    for start, stop in zip(offer_bounds[:-1], offer_bounds[1:], strict=True):
        key = offer_key[start]
        r_start, r_stop = np.searchsorted(request_key, key), np.searchsorted(request_key, key, side="right")
        zone, ptu = divmod(int(key), orders.n_ptus)
        sellers = [(int(o), float(offer_alloc[o, ptu])) for o in offer_cells_o[start:stop]]
        buyers = [(int(r), float(request_alloc[r, ptu])) for r in request_cells_r[r_start:r_stop]]
        i = j = 0
        while i < len(sellers) and j < len(buyers):
            (o, left_o), (r, left_r) = sellers[i], buyers[j]
            kw = min(left_o, left_r)
            if kw > EPS:
                bid = float(orders.offer_price[o])
                price = bid
                if pricing == "uniform":
                    limit = float(orders.request_price[r])
                    price = min(max(float(zone_price[zone, ptu]), bid), limit)
                out_r.append(r)
                out_o.append(o)
                out_t.append(ptu)
                out_kw.append(kw)
                out_p.append(price)
            sellers[i], buyers[j] = (o, left_o - kw), (r, left_r - kw)
            if sellers[i][1] <= EPS:
                i += 1
            if buyers[j][1] <= EPS:
                j += 1
    return Trades(
        np.array(out_r, dtype=int),
        np.array(out_o, dtype=int),
        np.array(out_t, dtype=int),
        np.array(out_kw),
        np.array(out_p),
    )


def clear_auction(
    orders: AuctionOrders,
    *,
    pricing: str = "uniform",
    network: NetworkConstraints | None = None,
    time_limit: float | None = None,
    mip_gap: float = 1e-6,
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
    lp, cells = build_model(orders, network)
    timings["build"] = time.perf_counter() - started
    offer_alloc = np.zeros((orders.n_offers, orders.n_ptus))
    request_alloc = np.zeros((orders.n_requests, orders.n_ptus))
    if lp.num_col_ == 0 or cells["n_x"] == 0 or cells["n_y"] == 0:
        empty_price = np.full((orders.n_zones, orders.n_ptus), np.nan)
        return AuctionResult(
            "optimal",
            0.0,
            offer_alloc,
            request_alloc,
            empty_price,
            _empty_trades(),
            timings,
            "none (nothing to clear)",
        )
    started = time.perf_counter()
    solve = solve_model_pulp if backend == "pulp" else solve_model
    status, objective, values, solver = solve(lp, time_limit=time_limit, mip_gap=mip_gap)
    timings["solve"] = time.perf_counter() - started
    started = time.perf_counter()
    n_x, n_y = cells["n_x"], cells["n_y"]
    x = np.where(values[:n_x] > EPS, values[:n_x], 0.0)
    y = np.where(values[n_x : n_x + n_y] > EPS, values[n_x : n_x + n_y], 0.0)
    offer_alloc[cells["xo"], cells["xt"]] = np.round(x, 6)
    request_alloc[cells["yr"], cells["yt"]] = np.round(y, 6)
    zone_price = uniform_prices(orders, offer_alloc, request_alloc)
    timings["prices"] = time.perf_counter() - started
    started = time.perf_counter()
    trades = decompose(orders, offer_alloc, request_alloc, zone_price, pricing)
    timings["decompose"] = time.perf_counter() - started
    return AuctionResult(status, objective, offer_alloc, request_alloc, zone_price, trades, timings, solver)
