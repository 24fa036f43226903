"""Bounds on order quantities, prices and times, so no order can carry a number the market cannot clear.

`quantities_kw: [1e308, 1e308]` used to be accepted and then stopped the auction for every participant
(issue 15.1). Limits are settings (docs/operations.md, "Input limits"), capped by what the columns hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from flexmarket import validation
from flexmarket.errors import DomainError
from flexmarket.localtime import moment_label
from trading.errors import TradingErrorCode as Code
from trading.models import FlexRequest, OrderState

MAX_PTUS = 100  # the longest local delivery day (autumn DST change); an order never spans more
OPEN_STATES = (OrderState.ACTIVE, OrderState.PARTIALLY_FILLED)


def max_order_kw_decimal() -> Decimal:
    return Decimal(settings.FLEXMARKET_ORDER_MAX_KW)


def max_order_kw() -> float:
    return float(max_order_kw_decimal())


def max_price() -> Decimal:
    return min(Decimal(settings.FLEXMARKET_ORDER_MAX_PRICE), validation.column_maximum(FlexRequest, "price"))


def clean_quantities(quantities) -> list[float]:
    """kW per PTU: at most MAX_PTUS values, each a finite number in [0, FLEXMARKET_ORDER_MAX_KW]."""
    if not isinstance(quantities, list | tuple) or not quantities:
        raise DomainError(Code.INVALID_QUANTITIES, "Give one kW value per PTU.", field="quantities_kw")
    if len(quantities) > MAX_PTUS:
        raise DomainError(
            Code.INVALID_QUANTITIES,
            f"At most {MAX_PTUS} PTUs (one delivery day) per order; got {len(quantities):,}.",
            field="quantities_kw",
        )
    ceiling = max_order_kw()
    cleaned = []
    for value in quantities:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise DomainError(
                Code.INVALID_QUANTITIES, f"'{str(value)[:40]}' is not a number of kW.", field="quantities_kw"
            )
        if number != number or not 0 <= number <= ceiling:  # NaN, negative, infinite or above the ceiling
            raise DomainError(
                Code.INVALID_QUANTITIES,
                f"Each PTU's quantity must be between 0 and {ceiling:,.0f} kW.",
                field="quantities_kw",
            )
        cleaned.append(round(number, 3))
    if not any(cleaned):
        raise DomainError(
            Code.INVALID_QUANTITIES, "At least one PTU needs a quantity above zero.", field="quantities_kw"
        )
    return cleaned


def clean_price(price, *, field: str = "price") -> Decimal:
    """A price (or kW amount given as a decimal) in [0, FLEXMARKET_ORDER_MAX_PRICE]."""
    ceiling = max_price()
    try:
        return validation.bounded_decimal(price, field=field, code=Code.INVALID_PRICE, maximum=ceiling)
    except DomainError:
        raise DomainError(
            Code.INVALID_PRICE, f"The value must be a number between 0 and {ceiling:,}.", field=field
        )


REACTIVE_FIELDS = ("q_min_kvar", "q_max_kvar", "q_price")


def clean_reactive(*, product, q_min_kvar, q_max_kvar, q_price) -> dict:
    """An offer's optional reactive range (docs/network.md, "Reactive offers"): all three values or none,
    minimum <= 0 <= maximum (kVAr absorbed / injected, not both 0, within FLEXMARKET_ORDER_MAX_KW), a price in
    [0, FLEXMARKET_ORDER_MAX_PRICE] EUR/Mvarh, and only on a network-aware auction product (the one clearing that
    prices reactive power; continuous matching checks active power only). Returns the model fields (all None for an offer without one)."""
    given = dict(zip(REACTIVE_FIELDS, (q_min_kvar, q_max_kvar, q_price), strict=True))
    present = [name for name, value in given.items() if value is not None and value != ""]
    if not present:
        return dict.fromkeys(REACTIVE_FIELDS)
    if not product.network_aware or not product.is_auction:
        what = "is not network-aware" if not product.network_aware else "trades continuously"
        raise DomainError(
            Code.INVALID_REACTIVE,
            f"{product} {what}: only a network-aware auction clears a reactive range (kVAr) and pays its Q-LMP.",
            field=present[0],
        )
    missing = [name for name in REACTIVE_FIELDS if name not in present]
    if missing:
        raise DomainError(
            Code.INVALID_REACTIVE,
            "A reactive range needs its minimum kVAr, maximum kVAr and price together.",
            field=missing[0],
        )
    ceiling = max_order_kw_decimal()
    low = validation.bounded_decimal(
        q_min_kvar, field="q_min_kvar", code=Code.INVALID_REACTIVE, minimum=-ceiling, maximum=Decimal(0),
        unit="kVAr",
    )  # fmt: skip
    high = validation.bounded_decimal(
        q_max_kvar, field="q_max_kvar", code=Code.INVALID_REACTIVE, maximum=ceiling, unit="kVAr"
    )
    if low == high == 0:
        raise DomainError(
            Code.INVALID_REACTIVE,
            "The reactive range is empty: give a negative minimum, a positive maximum or both.",
            field="q_max_kvar",
        )
    price = validation.bounded_decimal(
        q_price, field="q_price", code=Code.INVALID_REACTIVE, maximum=max_price(), unit="EUR/Mvarh"
    )
    return {
        "q_min_kvar": low.quantize(Decimal("0.001")),
        "q_max_kvar": high.quantize(Decimal("0.001")),
        "q_price": price,
    }


def check_order_times(*, ptu_start: datetime, valid_until: datetime | None) -> None:
    """Times inside the platform's date window (year 1 or 9999 overflow PTU arithmetic)."""
    validation.check_moment(ptu_start, field="ptu_start", code=Code.INVALID_PTU)
    if valid_until is not None:
        validation.check_moment(valid_until, field="valid_until", code=Code.INVALID_PTU)


def check_request_volume(
    *, owner, grid_location, product, ptu_start: datetime, quantities: list[float]
) -> None:
    """A buyer's open requests in one zone and PTU, this one included, stay within
    FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU."""
    ceiling = float(Decimal(settings.FLEXMARKET_REQUEST_MAX_KW_PER_ZONE_PTU))
    end = ptu_start + len(quantities) * timedelta(minutes=15)
    volume: dict[datetime, float] = {}
    for start, remaining in FlexRequest.objects.filter(
        owner=owner,
        grid_location=grid_location,
        product=product,
        state__in=OPEN_STATES,
        ptu_start__lt=end,
        ptu_start__gt=ptu_start - MAX_PTUS * timedelta(minutes=15),
    ).values_list("ptu_start", "remaining_kw"):
        for index, kw in enumerate(remaining):
            moment = start + index * timedelta(minutes=15)
            volume[moment] = volume.get(moment, 0.0) + float(kw)
    for index, kw in enumerate(quantities):
        moment = ptu_start + index * timedelta(minutes=15)
        if kw + volume.get(moment, 0.0) > ceiling:
            raise DomainError(
                Code.INVALID_QUANTITIES,
                f"{kw:g} kW at {moment_label(moment)} plus {volume.get(moment, 0.0):g} kW already requested "
                f"in {grid_location} exceeds the {ceiling:,.0f} kW a buyer may request per zone and PTU.",
                field="quantities_kw",
            )
