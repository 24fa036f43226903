"""Continuous pay-as-bid matching of aggressor orders against the resting book, and contracts."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.utils import timezone

from accounts.services import notify_organisation
from trading.clearing.continuous import Aggressor, RestingOrder, match_aggressor
from trading.models import (
    Contract,
    FlexOffer,
    FlexRequest,
    OrderMode,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES

# --- continuous matching ----------------------------------------------------------------------------


def _match_if_continuous(order, *, side: str) -> None:
    """Aggressors (and every order of a continuous product) match now against the resting book."""
    continuous = order.product.clearing_rule == Product.ClearingRule.CONTINUOUS
    if not continuous and order.order_mode != OrderMode.AGGRESSOR:
        return
    opposite = FlexOffer if side == "buy" else FlexRequest
    # Lock resting orders in id order so concurrent aggressors queue instead of deadlocking or double-filling.
    candidates = list(
        opposite.objects.select_for_update()
        .filter(
            session=order.session,
            grid_location=order.grid_location,
            product=order.product,
            direction=order.direction,
            state__in=OPEN_STATES,
        )
        .exclude(owner=order.owner)
        .order_by("pk")
    )
    offset = {c.pk: int((c.ptu_start - order.ptu_start).total_seconds() // 900) for c in candidates}
    n = len(order.quantities_kw)
    resting = []
    for c in candidates:
        aligned = np.zeros(n)
        for index, kw in enumerate(c.remaining_kw):
            position = offset[c.pk] + index
            if 0 <= position < n:
                aligned[position] = kw
        resting.append(
            RestingOrder(
                c.pk,
                float(c.price),
                int(c.created_at.timestamp() * 1e6),
                aligned,
                float(getattr(c, "min_quantity_kw", 0) or 0),
                bool(getattr(c, "all_or_nothing", False)),
            )
        )
    aggressor = Aggressor(
        side,
        float(order.price),
        np.array(order.remaining_kw, dtype=float),
        float(getattr(order, "min_quantity_kw", 0) or 0),
        bool(getattr(order, "all_or_nothing", False)),
    )
    fills = match_aggressor(aggressor, resting)
    by_counterparty: dict[int, list] = {}
    for fill in fills:
        by_counterparty.setdefault(fill.order_id, []).append(fill)
    counterparts = {c.pk: c for c in candidates}
    for counterparty_id, counterparty_fills in by_counterparty.items():
        other = counterparts[counterparty_id]
        quantities = [0.0] * n
        prices = ["0"] * n
        for fill in counterparty_fills:
            quantities[fill.ptu] += fill.kw
            prices[fill.ptu] = str(Decimal(str(fill.price)).quantize(Decimal("0.0001")))
            order.remaining_kw[fill.ptu] = round(order.remaining_kw[fill.ptu] - fill.kw, 3)
            other.remaining_kw[offset[other.pk] + fill.ptu] = round(
                other.remaining_kw[offset[other.pk] + fill.ptu] - fill.kw, 3
            )
        _set_fill_state(other)
        other.save(update_fields=["remaining_kw", "state", "updated_at"])
        request, offer = (order, other) if side == "buy" else (other, order)
        _contract_create(
            request=request,
            offer=offer,
            ptu_start=order.ptu_start,
            quantities=quantities,
            prices=prices,
            run=None,
        )
    if order.order_mode == OrderMode.AGGRESSOR and any(kw > 0 for kw in order.remaining_kw):
        order.state = OrderState.PARTIALLY_FILLED if fills else OrderState.CANCELLED
        order.state_reason = "Aggressor: the unmatched rest was cancelled"
        order.remaining_kw = [0.0] * n
        order.save(update_fields=["remaining_kw", "state", "state_reason", "updated_at"])
    else:
        _set_fill_state(order)
        order.save(update_fields=["remaining_kw", "state", "updated_at"])


def _set_fill_state(order) -> None:
    if all(kw <= 1e-9 for kw in order.remaining_kw):
        order.state = OrderState.FILLED
    elif any(abs(r - q) > 1e-9 for r, q in zip(order.remaining_kw, order.quantities_kw, strict=True)):
        order.state = OrderState.PARTIALLY_FILLED


def _contract_reference(created: datetime, number: int) -> str:
    return f"FM-{created:%Y%m%d}-{number:06d}"


def _contract_create(*, request, offer, ptu_start, quantities, prices, run) -> Contract:
    now = timezone.now()
    contract = Contract.objects.create(
        reference=f"tmp-{time.monotonic_ns()}",
        session=request.session,
        clearing_run=run,
        request=request,
        offer=offer,
        buyer_id=request.owner_id,
        seller_id=offer.owner_id,
        grid_location_id=request.grid_location_id,
        product_id=request.product_id,
        direction=request.direction,
        ptu_start=ptu_start,
        quantities_kw=quantities,
        prices=prices,
        created_at=now,
    )
    contract.reference = _contract_reference(now, contract.pk)
    contract.save(update_fields=["reference"])
    _notify_contract(contract)
    return contract


def _notify_contract(contract: Contract) -> None:
    energy = sum(contract.quantities_kw) / 4
    for organisation_id, role in ((contract.buyer_id, "bought"), (contract.seller_id, "sold")):
        from accounts.models import Organisation

        notify_organisation(
            organisation=Organisation.objects.get(pk=organisation_id),
            title=f"Contract {contract.reference}: you {role} {energy:g} kWh in {contract.grid_location.name}",
            body=f"Delivery from {contract.ptu_start:%Y-%m-%d %H:%M} UTC. The activation schedule is on the contract page.",
            link=f"/trading/contracts/{contract.pk}/",
            email=True,
        )
