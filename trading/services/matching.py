"""Continuous pay-as-bid matching of aggressor orders against the resting book, and contracts."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db.models import Q
from django.utils import timezone

from accounts.services import notify_organisation
from flexmarket import ptu as ptus
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
from trading.services.capacity import LedgerChanges

# --- continuous matching ----------------------------------------------------------------------------


def offer_backing_tradable(offer: FlexOffer) -> bool:
    """The offer's asset, or every asset of its portfolio, is still approved (not suspended, not archived)."""
    if offer.asset_id:
        return offer.asset.can_trade
    portfolio = offer.portfolio
    members = list(portfolio.assets.all())
    return portfolio.archived_at is None and bool(members) and all(a.can_trade for a in members)


def _candidates(order, *, side: str, now: datetime):
    """The resting orders the aggressor may trade with, row-locked in id order (no deadlocks, no double fills)."""
    n = len(order.quantities_kw)
    end = order.ptu_start + n * ptus.PTU
    opposite = FlexOffer if side == "buy" else FlexRequest
    qs = (
        opposite.objects.filter(
            session=order.session,
            grid_location=order.grid_location,
            product=order.product,
            direction=order.direction,
            state__in=OPEN_STATES,
            ptu_start__lt=end,
        )
        .exclude(owner=order.owner)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    )
    if side == "buy":
        qs = qs.filter(price__lte=order.price)
        if order.is_tso:
            qs = qs.filter(tso_eligible=True)  # only TSO-eligible flexibility is sold to a TSO
        qs = qs.select_related("asset", "portfolio")
    else:
        qs = qs.filter(price__gte=order.price)
        if not order.tso_eligible:
            qs = qs.filter(is_tso=False)
    candidates = list(qs.select_for_update(of=("self",)).order_by("pk"))
    if side == "buy":
        candidates = [c for c in candidates if offer_backing_tradable(c)]
    return candidates


def _match_if_continuous(order, *, side: str, now: datetime | None = None) -> None:
    """Aggressors (and every order of a continuous product) match now against the resting book.

    The caller holds the session share-locked and has just written `order`; resting orders are row-locked.
    """
    continuous = order.product.clearing_rule == Product.ClearingRule.CONTINUOUS
    if not continuous and order.order_mode != OrderMode.AGGRESSOR:
        return
    now = now or timezone.now()
    if side == "sell" and not offer_backing_tradable(order):
        return
    candidates = _candidates(order, side=side, now=now)
    n = len(order.quantities_kw)
    offset = {c.pk: int((c.ptu_start - order.ptu_start) / ptus.PTU) for c in candidates}
    resting = []
    for c in candidates:
        values = np.asarray(c.remaining_kw, dtype=float)
        positions = offset[c.pk] + np.arange(values.size)
        inside = (positions >= 0) & (positions < n)
        aligned = np.zeros(n)
        aligned[positions[inside]] = values[inside]
        resting.append(
            RestingOrder(
                c.pk,
                float(c.price),
                int(c.created_at.timestamp() * 1e6),
                aligned,
                float(getattr(c, "min_quantity_kw", 0) or 0),
                bool(getattr(c, "all_or_nothing", False)),
                float(values[~inside].sum()),
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
            quantities[fill.ptu] = round(quantities[fill.ptu] + fill.kw, 3)
            prices[fill.ptu] = str(Decimal(repr(fill.price)).quantize(Decimal("0.0001")))
            order.remaining_kw[fill.ptu] = round(order.remaining_kw[fill.ptu] - fill.kw, 3)
            resting_index = fill.ptu - offset[other.pk]  # the fill's PTU in the resting order's own frame
            other.remaining_kw[resting_index] = round(other.remaining_kw[resting_index] - fill.kw, 3)
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
        # An aggressor matches now or dies: the unmatched rest (kept in remaining_kw) is cancelled.
        matched = sum(f.kw for f in fills) / 4
        if side == "sell":
            ledger = LedgerChanges()
            ledger.close(order, OrderState.CANCELLED)
            ledger.write()
        order.state = OrderState.CANCELLED
        order.state_reason = (
            f"Aggressor: {matched:g} kWh matched; the unmatched rest was cancelled"
            if fills
            else "Aggressor: nothing to match; cancelled"
        )
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
