"""A product's order rules, enforced at submission (issue 12 item 1; docs/trading.md, "Product rules").

Every order, whatever way it arrives (page, API, CSV import, an availability agreement's generated offer), goes
through `request_submit` or `offer_submit`, which call `check_order` after the platform-wide bounds
(trading/services/limits.py). A broken rule is a `product_rule` error naming the rule, the product's value and
the first PTU that breaks it, on the field to correct.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from flexmarket.localtime import moment_label
from trading.errors import TradingErrorCode as Code
from trading.models import IMMEDIATE_MODES, OrderMode, Product


def _refuse(product: Product, rule: str, detail: str, field: str) -> DomainError:
    return DomainError(Code.PRODUCT_RULE, f"{product.name}: {rule}; {detail}.", field=field)


def _kw(value) -> str:
    return f"{Decimal(value).normalize():f}"


def check_order(
    product: Product,
    *,
    ptu_start: datetime,
    quantities: list[float],
    price: Decimal,
    order_mode: str,
    block: bool = False,
) -> None:
    """Refuse an order that breaks one of `product`'s rules (the first broken rule, in the order listed)."""
    n = len(quantities)
    if order_mode == OrderMode.INITIATOR and not product.accepts_initiator_orders:
        raise _refuse(
            product, "orders that rest in the book are not accepted", "send an aggressor", "order_mode"
        )
    if order_mode in IMMEDIATE_MODES and not product.accepts_aggressor_orders:
        raise _refuse(
            product,
            "aggressor orders (fill and kill, fill or kill) are not accepted",
            "send an order that rests",
            "order_mode",
        )
    if block and not product.accepts_block_offers:
        raise _refuse(
            product,
            "block offers (a minimum quantity or all-or-nothing) are not accepted",
            "offer divisible quantities",
            "min_quantity_kw",
        )
    if n < product.min_duration_ptus:
        raise _refuse(
            product,
            f"an order spans at least {product.min_duration_ptus} PTUs",
            f"this one spans {n}",
            "quantities_kw",
        )
    if product.max_duration_ptus is not None and n > product.max_duration_ptus:
        raise _refuse(
            product,
            f"an order spans at most {product.max_duration_ptus} PTUs",
            f"this one spans {n}",
            "quantities_kw",
        )
    if product.price_floor is not None and price < product.price_floor:
        raise _refuse(
            product, f"the price floor is {_kw(product.price_floor)}", f"the order asks {_kw(price)}", "price"
        )
    if product.price_cap is not None and price > product.price_cap:
        raise _refuse(
            product, f"the price cap is {_kw(product.price_cap)}", f"the order asks {_kw(price)}", "price"
        )

    def at(index: int) -> str:
        return moment_label(ptu_start + index * ptus.PTU)

    minimum, step = product.min_quantity_kw, product.quantity_step_kw
    for index, kw in enumerate(quantities):
        if not kw:
            continue
        exact = Decimal(str(kw))
        if minimum and exact < minimum:
            raise _refuse(
                product,
                f"the minimum size is {_kw(minimum)} kW per PTU",
                f"{_kw(exact)} kW at {at(index)}",
                "quantities_kw",
            )
        if step and exact % step:
            raise _refuse(
                product,
                f"quantities are whole multiples of {_kw(step)} kW",
                f"{_kw(exact)} kW at {at(index)}",
                "quantities_kw",
            )
    if product.max_ramp_kw is not None:
        ramp = product.max_ramp_kw
        steps = [0.0, *quantities, 0.0]
        for index in range(len(steps) - 1):
            change = Decimal(str(steps[index + 1])) - Decimal(str(steps[index]))
            if abs(change) > ramp:
                moment = at(index) if index < n else f"the end of {at(n - 1)}"
                raise _refuse(
                    product,
                    f"the ramp is at most {_kw(ramp)} kW from one PTU to the next (and from and to 0)",
                    f"{_kw(abs(change))} kW at {moment}",
                    "quantities_kw",
                )
