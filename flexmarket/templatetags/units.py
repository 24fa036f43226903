"""Numbers for people: kW and kWh without spurious zeros ("400 kW", "12.5 kW"), money with two decimals and
thousands separators ("1,234.50"). Registered as template builtins (settings.TEMPLATES), so every page has them."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def quantity(value, places: int = 3) -> str:
    """A kW or kWh figure to at most `places` decimals, trailing zeros dropped: 400.000 -> '400', 12.50 -> '12.5'."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    text = f"{number.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def eur(value) -> str:
    """Money to the cent with thousands separators: 1234.5 -> '1,234.50' (half up, as statements round)."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    return f"{number.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,f}"
