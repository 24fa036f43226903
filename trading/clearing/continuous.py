"""Continuous pay-as-bid matching (NODES ShortFlex style). Pure module: no Django.

An aggressor matches resting opposite orders of the same zone, product, direction and PTUs: best price first,
then oldest (then lowest id); each fill is priced at the resting order's price. Rules:
- a divisible resting order gives min(what rests, what is still wanted) in each PTU, skipped in a PTU where that
  is below its minimum quantity;
- a resting all-or-nothing order is a block, as in the auction: taken whole (every PTU it still holds, in full)
  or not at all, so it is skipped when any of its PTUs lies outside the aggressor's or exceeds what is still
  wanted there;
- an aggressor whose fill in a PTU stays below its own minimum gets nothing in that PTU (a block that would be
  cut by this is left out and the match is redone without it);
- an all-or-nothing aggressor fills every PTU it wants in full, or nothing at all.
Never more than what rests, nor more than what is wanted, is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-9


@dataclass(frozen=True)
class RestingOrder:
    order_id: int
    price: float
    created_seq: int
    remaining: np.ndarray  # kW per PTU, aligned to the aggressor's PTUs
    min_qty: float = 0.0
    all_or_nothing: bool = False
    outside_kw: float = 0.0  # kW the order still holds in PTUs outside the aggressor's span


@dataclass(frozen=True)
class Aggressor:
    side: str  # "buy" (a FlexRequest taking offers) or "sell" (a FlexOffer hitting requests)
    price: float
    quantity: np.ndarray
    min_qty: float = 0.0
    all_or_nothing: bool = False


@dataclass(frozen=True)
class Fill:
    order_id: int
    ptu: int
    kw: float
    price: float


def _eligible(aggressor: Aggressor, resting: list[RestingOrder]) -> list[RestingOrder]:
    if aggressor.side == "buy":
        candidates = [order for order in resting if order.price <= aggressor.price + EPS]
        return sorted(candidates, key=lambda order: (order.price, order.created_seq, order.order_id))
    if aggressor.side == "sell":
        candidates = [order for order in resting if order.price >= aggressor.price - EPS]
        return sorted(candidates, key=lambda order: (-order.price, order.created_seq, order.order_id))
    raise ValueError("side must be 'buy' or 'sell'")


def _take(order: RestingOrder, left: np.ndarray) -> np.ndarray:
    """kW taken from one resting order per PTU given what is still wanted."""
    available = np.zeros(left.size)
    size = min(order.remaining.size, left.size)
    available[:size] = np.asarray(order.remaining[:size], dtype=float)
    available[available <= EPS] = 0.0
    if order.all_or_nothing:
        held = available > 0
        fits = (
            held.any()
            and order.outside_kw <= EPS
            and order.remaining[size:].sum() <= EPS
            and bool(np.all(available[held] <= left[held] + EPS))
            and bool(np.all(available[held] >= order.min_qty - EPS))
        )
        return available if fits else np.zeros(left.size)
    take = np.minimum(available, np.clip(left, 0, None))
    take[(take <= EPS) | (take < order.min_qty - EPS)] = 0.0
    return take


def _match(aggressor: Aggressor, book: list[RestingOrder], left_out: set[int]) -> tuple[np.ndarray, list]:
    wanted = np.asarray(aggressor.quantity, dtype=float)
    left = wanted.copy()
    taken = []
    for order in book:
        if order.order_id in left_out:
            continue
        take = _take(order, left)
        if take.any():
            taken.append((order, take))
            left = left - take
    return left, taken


def match_aggressor(aggressor: Aggressor, resting: list[RestingOrder]) -> list[Fill]:
    """Fills for one aggressor against the resting book (the caller holds the rows locked)."""
    book = _eligible(aggressor, resting)
    wanted = np.asarray(aggressor.quantity, dtype=float)
    left_out: set[int] = set()
    while True:
        left, taken = _match(aggressor, book, left_out)
        filled = wanted - left
        short = (filled > EPS) & (filled < aggressor.min_qty - EPS)
        blocks_cut = {
            order.order_id for order, take in taken if order.all_or_nothing and (take[short] > 0).any()
        }
        if blocks_cut:
            left_out |= blocks_cut
            continue
        break
    left = np.where(short, wanted, left)  # fills below the aggressor's minimum are dropped
    if aggressor.all_or_nothing and (np.any(left[wanted > EPS] > EPS) or not taken):
        return []
    rank = {order.order_id: i for i, (order, _) in enumerate(taken)}
    fills = []
    for order, take in taken:
        for ptu in np.nonzero(take > 0)[0]:
            if short[ptu]:
                continue
            fills.append(Fill(order.order_id, int(ptu), float(take[ptu]), float(order.price)))
    fills.sort(key=lambda fill: (fill.ptu, rank[fill.order_id]))
    return fills
