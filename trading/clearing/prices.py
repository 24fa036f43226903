"""The one rule for storing a price the market computed (auction clearing, continuous fills, replays): the float's
shortest repr, quantised to 0.0001 EUR/MWh, half even. Pure: no Django."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PRICE_QUANTUM = Decimal("0.0001")


def price_decimal(price: float) -> Decimal:
    """A computed price as contracts store it: 49.99999999999999 -> 50.0000, 0.00005 -> 0.0000 (half even)."""
    return Decimal(repr(float(price))).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
