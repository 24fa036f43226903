"""What-if re-clearing of a session (FLEXGRID AFAT-RQT_05): change the inputs, clear again, summarise (pure).

A replay takes the orders a session cleared with, leaves some out (a zone removed, offers above a price cap),
clears again with a chosen pricing rule, and summarises both clearings the same way so they compare side by
side. Nothing here writes anything: the caller stores the summaries on the replay record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from trading.clearing.auction import AuctionOrders, AuctionResult
from trading.clearing.prices import price_decimal


@dataclass(frozen=True)
class ReplayChanges:
    """What the replay changes. `removed_zones`: zone indexes whose orders are left out; `price_cap`: offers
    priced above it (EUR/MWh) are left out (None: no cap); `pricing`: "uniform" or "pay_as_bid"."""

    pricing: str
    removed_zones: frozenset[int] = frozenset()
    price_cap: float | None = None


@dataclass(frozen=True)
class ReplayInputs:
    """The changed orders and, for each kept order, its index among the original ones."""

    orders: AuctionOrders
    offer_index: np.ndarray
    request_index: np.ndarray


def _pick(array: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    return None if array is None else array[keep]


def apply_changes(orders: AuctionOrders, changes: ReplayChanges) -> ReplayInputs:
    """The orders a replay clears: the session's, without the removed zones' orders and the capped offers."""
    removed = np.array(sorted(changes.removed_zones), dtype=int)
    keep_offers = ~np.isin(orders.offer_zone, removed)
    if changes.price_cap is not None:
        keep_offers &= orders.offer_price <= changes.price_cap
    keep_requests = ~np.isin(orders.request_zone, removed)
    changed = replace(
        orders,
        offer_zone=orders.offer_zone[keep_offers],
        offer_qty=orders.offer_qty[keep_offers],
        offer_min=orders.offer_min[keep_offers],
        offer_price=orders.offer_price[keep_offers],
        offer_block=orders.offer_block[keep_offers],
        offer_min_consecutive=_pick(orders.offer_min_consecutive, keep_offers),
        offer_max_consecutive=_pick(orders.offer_max_consecutive, keep_offers),
        offer_tso_eligible=_pick(orders.offer_tso_eligible, keep_offers),
        request_zone=orders.request_zone[keep_requests],
        request_qty=orders.request_qty[keep_requests],
        request_price=orders.request_price[keep_requests],
        request_tso=_pick(orders.request_tso, keep_requests),
    )
    return ReplayInputs(changed, np.flatnonzero(keep_offers), np.flatnonzero(keep_requests))


CENT = Decimal("0.01")


def _exact_costs(result: AuctionResult) -> list[Decimal]:
    """Each trade's cost in EUR, exact: kW to three decimals and price to four (as contracts store them),
    x 1/4 h / 1000 (prices in EUR/MWh)."""
    return [
        Decimal(repr(round(kw, 3))) * price_decimal(price) / 4000
        for kw, price in zip(result.trades.kw.tolist(), result.trades.price.tolist(), strict=True)
    ]


def summarise(orders: AuctionOrders, result: AuctionResult, zone_ids: list[int]) -> dict:
    """Welfare, volume, buyers' cost and prices of one clearing, in total and per zone (JSON-ready).

    Volume is accepted offer kW / 4 (kWh). Money is Decimal, written as strings: each trade's cost is exact
    (kW to three decimals, price to four, as contracts store them), sums are exact, and each figure (a zone's
    cost, the total cost, the welfare) is rounded once to the cent, half to even. A zone's average price is its
    exact cost per MWh (four decimals); `prices` are the zone prices per PTU (None where the zone has none).
    """
    trades = result.trades
    energy_kwh = trades.kw / 4
    costs = _exact_costs(result)
    trade_zone = orders.offer_zone[trades.offer_idx].tolist() if len(trades) else []
    zones = {}
    for i, zone_id in enumerate(zone_ids):
        mine = [c for c, z in zip(costs, trade_zone, strict=True) if z == i]
        volume = float(energy_kwh[np.asarray(trade_zone, dtype=int) == i].sum()) if len(trades) else 0.0
        zone_cost = sum(mine, Decimal(0))
        row = result.zone_price[i] if i < result.zone_price.shape[0] else np.full(orders.n_ptus, np.nan)
        zones[str(zone_id)] = {
            "volume_kwh": round(volume, 3),
            "cost_eur": str(zone_cost.quantize(CENT, ROUND_HALF_EVEN)),
            "average_price": (
                str((zone_cost * 1000 / Decimal(repr(round(volume, 6)))).quantize(Decimal("0.0001")))
                if volume > 1e-9
                else None
            ),
            "prices": [None if np.isnan(v) else round(float(v), 4) for v in row],
        }
    return {
        "status": result.status,
        "welfare_eur": str(Decimal(repr(float(result.objective))).quantize(CENT, ROUND_HALF_EVEN)),
        "volume_kwh": round(float(energy_kwh.sum()), 3),
        "cost_eur": str(sum(costs, Decimal(0)).quantize(CENT, ROUND_HALF_EVEN)),
        "trades": len(trades),
        "offers": orders.n_offers,
        "requests": orders.n_requests,
        "zones": zones,
    }
