"""Continuous pay-as-bid matching (NODES ShortFlex style). Pure module: no Django.

An aggressor matches resting opposite orders of the same zone, product, direction and PTUs: best price first,
then oldest; each fill is priced at the resting order's price. A resting all-or-nothing order is taken only in
full in each PTU. Fills below a resting order's minimum quantity are
skipped; an aggressor whose fill in a PTU stays below its own minimum gets nothing in that PTU; an all-or-nothing
aggressor fills every PTU in full or nothing at all. Never more than what rests is allocated.
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
    remaining: np.ndarray
    min_qty: float = 0.0
    all_or_nothing: bool = False


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


def match_aggressor(aggressor: Aggressor, resting: list[RestingOrder]) -> list[Fill]:
    """Fills for one aggressor against the resting book (the caller holds the rows locked)."""
    book = _eligible(aggressor, resting)
    remaining = {order.order_id: np.array(order.remaining, dtype=float) for order in book}
    fills: list[Fill] = []
    for ptu, wanted in enumerate(np.asarray(aggressor.quantity, dtype=float)):
        if wanted <= EPS:
            continue
        ptu_fills: list[Fill] = []
        left = wanted
        for order in book:
            if left <= EPS:
                break
            available = remaining[order.order_id][ptu] if ptu < remaining[order.order_id].size else 0.0
            if order.all_or_nothing:
                take = available if available <= left + EPS else 0.0
            else:
                take = min(available, left)
            if take <= EPS or take < order.min_qty - EPS:
                continue
            ptu_fills.append(Fill(order.order_id, ptu, float(take), float(order.price)))
            left -= take
        filled = wanted - left
        if filled < aggressor.min_qty - EPS:
            ptu_fills = []
        if aggressor.all_or_nothing and (left > EPS or not ptu_fills):
            return []
        for fill in ptu_fills:
            remaining[fill.order_id][ptu] -= fill.kw
        fills.extend(ptu_fills)
    return fills
