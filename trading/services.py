"""Business actions: sessions, FlexRequests and FlexOffers, continuous matching, gate-closure clearing,
contracts and availability agreements."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from grid.models import FlexAsset, GridLocation, Portfolio
from trading.clearing.auction import AuctionOrders, clear_auction
from trading.clearing.continuous import Aggressor, RestingOrder, match_aggressor
from trading.errors import TradingErrorCode as Code
from trading.models import (
    AvailabilityAgreement,
    ClearingRun,
    Contract,
    Direction,
    FlexOffer,
    FlexRequest,
    MarketSession,
    OrderMode,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES, open_offer_volume, products_active

MAX_DIGITS = Decimal("0.001")


# --- sessions ---------------------------------------------------------------------------------------


def gate_closure_for(product: Product, day: date) -> datetime:
    """D-1 at a local time (day-ahead), or N minutes before the first PTU."""
    start, _ = ptus.day_bounds_utc(day, product.market.time_zone)
    if product.gate_closure_rule == Product.GateClosureRule.DAY_AHEAD:
        zone = ZoneInfo(product.market.time_zone)
        before = day - timedelta(days=1)
        local = datetime.combine(before, product.gate_closure_local_time, tzinfo=zone)
        return local.astimezone(ptus.UTC)
    return start - timedelta(minutes=product.gate_closure_minutes_before)


def market_session_open(*, product: Product, day: date) -> MarketSession:
    """The session of a product and local delivery day (created once; idempotent)."""
    start, end = ptus.day_bounds_utc(day, product.market.time_zone)
    session, _ = MarketSession.objects.get_or_create(
        product=product,
        delivery_day=day,
        defaults={
            "delivery_start": start,
            "delivery_end": end,
            "gate_closure": gate_closure_for(product, day),
        },
    )
    return session


def sessions_open_ahead(*, now: datetime | None = None) -> list[MarketSession]:
    """Open sessions for every active product up to `sessions_ahead_days` ahead, and generate agreement offers."""
    now = now or timezone.now()
    sessions = []
    for product in products_active():
        today = ptus.local_day_of(now, product.market.time_zone)
        for offset in range(product.sessions_ahead_days + 1):
            session = market_session_open(product=product, day=today + timedelta(days=offset))
            if session.state == MarketSession.State.OPEN and session.gate_closure > now:
                agreement_offers_generate(session=session)
            sessions.append(session)
    return sessions


def sessions_close_due(*, now: datetime | None = None) -> list[int]:
    """Close sessions past gate closure; expire unmatched continuous orders. Returns auction sessions to clear."""
    now = now or timezone.now()
    to_clear = []
    for session in MarketSession.objects.select_related("product").filter(
        state=MarketSession.State.OPEN, gate_closure__lte=now
    ):
        if not MarketSession.objects.filter(pk=session.pk, state=MarketSession.State.OPEN).update(
            state=MarketSession.State.CLOSED
        ):
            continue
        if session.product.is_auction:
            to_clear.append(session.pk)
        else:
            for model in (FlexRequest, FlexOffer):
                model.objects.filter(session=session, state__in=OPEN_STATES).update(
                    state=OrderState.EXPIRED, state_reason="Gate closed"
                )
            MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARED)
    return to_clear


# --- order validation -------------------------------------------------------------------------------


def _clean_quantities(quantities) -> list[float]:
    if not isinstance(quantities, list | tuple) or not quantities:
        raise DomainError(Code.INVALID_QUANTITIES, "Give one kW value per PTU.", field="quantities_kw")
    cleaned = []
    for value in quantities:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DomainError(
                Code.INVALID_QUANTITIES, f"'{value}' is not a number of kW.", field="quantities_kw"
            )
        if not np.isfinite(number) or number < 0:
            raise DomainError(
                Code.INVALID_QUANTITIES, "Quantities must be zero or more kW.", field="quantities_kw"
            )
        cleaned.append(round(number, 3))
    if not any(cleaned):
        raise DomainError(
            Code.INVALID_QUANTITIES, "At least one PTU needs a quantity above zero.", field="quantities_kw"
        )
    return cleaned


def _clean_price(price) -> Decimal:
    try:
        value = Decimal(str(price))
    except (InvalidOperation, TypeError):
        raise DomainError(Code.INVALID_PRICE, "The price must be a number.", field="price")
    if not value.is_finite() or value < 0 or value > Decimal("100000"):
        raise DomainError(Code.INVALID_PRICE, "The price must be between 0 and 100,000.", field="price")
    return value


def _open_session(*, product: Product, ptu_start: datetime, n_ptus: int, now: datetime) -> MarketSession:
    if ptu_start.tzinfo is None or not ptus.is_ptu_boundary(ptu_start):
        raise DomainError(
            Code.INVALID_PTU, "The first PTU must start on a quarter hour (aware time).", field="ptu_start"
        )
    session = MarketSession.objects.filter(
        product=product, delivery_start__lte=ptu_start, delivery_end__gt=ptu_start
    ).first()
    if session is None:
        raise DomainError(
            Code.NO_SESSION,
            f"No session of {product} is open for {ptu_start:%Y-%m-%d %H:%M} UTC.",
            field="ptu_start",
        )
    if ptu_start + n_ptus * ptus.PTU > session.delivery_end:
        raise DomainError(
            Code.INVALID_PTU, "The PTUs run past the end of the delivery day.", field="quantities_kw"
        )
    if session.state != MarketSession.State.OPEN or session.gate_closure <= now:
        local = session.gate_closure.astimezone(ZoneInfo(product.market.time_zone))
        raise DomainError(
            Code.GATE_CLOSED,
            f"Gate closure for {session.delivery_day} was {local:%Y-%m-%d %H:%M %Z}; orders are no longer accepted.",
            field="ptu_start",
        )
    return session


def _check_zone(grid_location: GridLocation, product: Product) -> None:
    if grid_location.archived_at is not None:
        raise DomainError(Code.WRONG_ZONE, "The grid location is archived.", field="grid_location")
    if (
        product.market.grid_locations.exists()
        and not product.market.grid_locations.filter(pk=grid_location.pk).exists()
    ):
        raise DomainError(
            Code.WRONG_ZONE, f"{grid_location} is not part of market {product.market}.", field="grid_location"
        )


def _order_fields(
    actor,
    grid_location,
    product,
    session,
    direction,
    ptu_start,
    quantities,
    price,
    order_mode,
    valid_until,
    external_id,
) -> dict:
    """The fields every new order (request or offer) starts with."""
    return {
        "owner": actor.organisation,
        "created_by": actor.user,
        "grid_location": grid_location,
        "product": product,
        "session": session,
        "direction": direction,
        "ptu_start": ptu_start,
        "quantities_kw": quantities,
        "remaining_kw": list(quantities),
        "price": price,
        "order_mode": order_mode,
        "valid_until": valid_until,
        "external_id": external_id[:64],
    }


def _order_snapshot(order) -> dict:
    return {
        "zone": order.grid_location_id,
        "product": order.product_id,
        "direction": order.direction,
        "ptu_start": order.ptu_start.isoformat(),
        "quantities_kw": order.quantities_kw,
        "price": str(order.price),
        "mode": order.order_mode,
        "state": order.state,
    }


# --- FlexRequests and FlexOffers --------------------------------------------------------------------


@transaction.atomic
def request_submit(
    *,
    actor: Actor,
    grid_location: GridLocation,
    product: Product,
    ptu_start: datetime,
    quantities_kw,
    price,
    order_mode: str = OrderMode.INITIATOR,
    direction: str | None = None,
    valid_until: datetime | None = None,
    external_id: str = "",
    now: datetime | None = None,
) -> FlexRequest:
    """A DSO or TSO asks for flexibility in a grid location (buy order)."""
    now = now or timezone.now()
    if not actor.organisation or not actor.organisation.is_approved or not actor.has_role(Role.DSO, Role.TSO):
        raise DomainError(Code.ROLE, "Only approved DSOs and TSOs post FlexRequests.")
    if (
        actor.has_role(Role.DSO)
        and not actor.has_role(Role.TSO)
        and grid_location.dso_id != actor.organisation.pk
    ):
        raise DomainError(
            Code.WRONG_ZONE,
            "A DSO requests flexibility only in its own grid locations.",
            field="grid_location",
        )
    quantities = _clean_quantities(quantities_kw)
    value = _clean_price(price)
    direction = direction or product.direction
    if direction != product.direction:
        raise DomainError(
            Code.PRODUCT_MISMATCH, f"{product} trades {product.direction} flexibility.", field="direction"
        )
    _check_zone(grid_location, product)
    session = _open_session(product=product, ptu_start=ptu_start, n_ptus=len(quantities), now=now)
    order = FlexRequest.objects.create(
        **_order_fields(
            actor,
            grid_location,
            product,
            session,
            direction,
            ptu_start,
            quantities,
            value,
            order_mode,
            valid_until,
            external_id,
        ),
        is_tso=actor.has_role(Role.TSO),
    )
    audit_record(actor=actor, action="flex_request.submit", target=order, after=_order_snapshot(order))
    _match_if_continuous(order, side="buy")
    return order


def _asset_capability(asset: FlexAsset | None, portfolio: Portfolio | None, direction: str) -> float:
    field = "max_up_kw" if direction == Direction.UP else "max_down_kw"
    if asset is not None:
        return float(getattr(asset, field))
    return float(sum(getattr(member, field) for member in portfolio.assets.all()))


@transaction.atomic
def offer_submit(
    *,
    actor: Actor,
    product: Product,
    ptu_start: datetime,
    quantities_kw,
    price,
    asset: FlexAsset | None = None,
    portfolio: Portfolio | None = None,
    order_mode: str = OrderMode.INITIATOR,
    direction: str | None = None,
    min_quantity_kw=0,
    all_or_nothing: bool = False,
    min_consecutive_ptus: int = 1,
    max_consecutive_ptus: int | None = None,
    tso_eligible: bool = False,
    valid_until: datetime | None = None,
    answers_request: FlexRequest | None = None,
    external_id: str = "",
    now: datetime | None = None,
    availability_agreement: AvailabilityAgreement | None = None,
) -> FlexOffer:
    """An ESP offers flexibility backed by an approved asset or portfolio in the zone (sell order)."""
    now = now or timezone.now()
    if not actor.organisation or not actor.organisation.is_approved or not actor.has_role(Role.ESP):
        raise DomainError(Code.ROLE, "Only approved ESPs post FlexOffers.")
    if (asset is None) == (portfolio is None):
        raise DomainError(
            Code.ASSET_NOT_TRADABLE, "Back the offer with exactly one asset or portfolio.", field="asset"
        )
    backing = asset or portfolio
    if backing.owner_id != actor.organisation.pk:
        raise DomainError(Code.ASSET_NOT_TRADABLE, "You can only offer your own assets.", field="asset")
    if asset is not None and not asset.can_trade:
        raise DomainError(
            Code.ASSET_NOT_TRADABLE,
            f"{asset} is {asset.get_prequalification_display().lower()}; only assets the DSO approved can back offers.",
            field="asset",
        )
    if portfolio is not None and (
        portfolio.archived_at or any(not a.can_trade for a in portfolio.assets.all())
    ):
        raise DomainError(
            Code.ASSET_NOT_TRADABLE, "Every asset of the portfolio must be approved.", field="portfolio"
        )
    grid_location = backing.grid_location
    if answers_request is not None and answers_request.grid_location_id != grid_location.pk:
        raise DomainError(Code.WRONG_ZONE, "The asset is not in the requested zone.", field="asset")
    direction = direction or product.direction
    if direction != product.direction:
        raise DomainError(
            Code.PRODUCT_MISMATCH, f"{product} trades {product.direction} flexibility.", field="direction"
        )
    if grid_location.status == GridLocation.Status.CONGESTED and direction == Direction.DOWN:
        raise DomainError(
            Code.ZONE_CONGESTED,
            f"{grid_location.name} is congested: offers that add load there are stopped.",
            field="direction",
        )
    quantities = _clean_quantities(quantities_kw)
    value = _clean_price(price)
    minimum = float(_clean_price(min_quantity_kw))
    if minimum > max(quantities):
        raise DomainError(
            Code.INVALID_BLOCK, "The minimum is above every PTU's quantity.", field="min_quantity_kw"
        )
    active = [q > 0 for q in quantities]
    run = longest = 0
    for flag in active:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    if min_consecutive_ptus < 1 or longest < min_consecutive_ptus:
        raise DomainError(
            Code.INVALID_BLOCK,
            f"The offer needs at least {min_consecutive_ptus} consecutive PTUs.",
            field="min_consecutive_ptus",
        )
    if max_consecutive_ptus is not None and longest > max_consecutive_ptus:
        raise DomainError(
            Code.INVALID_BLOCK,
            f"The offer runs longer than {max_consecutive_ptus} consecutive PTUs.",
            field="max_consecutive_ptus",
        )
    _check_zone(grid_location, product)
    session = _open_session(product=product, ptu_start=ptu_start, n_ptus=len(quantities), now=now)
    # Capability: this offer plus the ESP's open offers on the same asset and PTU (FLEXGRID: not offered twice).
    locked = (
        FlexAsset.objects.select_for_update().filter(pk=asset.pk)
        if asset
        else Portfolio.objects.select_for_update().filter(pk=portfolio.pk)
    )
    list(locked)
    capability = _asset_capability(asset, portfolio, direction)
    already = open_offer_volume(
        asset_id=asset.pk if asset else None,
        portfolio_id=portfolio.pk if portfolio else None,
        direction=direction,
    )
    for index, kw in enumerate(quantities):
        moment = ptu_start + index * ptus.PTU
        if kw + already.get(moment, 0.0) > capability + 1e-6:
            raise DomainError(
                Code.ABOVE_CAPABILITY,
                f"{kw:g} kW at {moment:%H:%M} UTC plus {already.get(moment, 0.0):g} kW already offered exceeds {backing}'s "
                f"{capability:g} kW {direction} capability.",
                field="quantities_kw",
            )
    order = FlexOffer.objects.create(
        **_order_fields(
            actor,
            grid_location,
            product,
            session,
            direction,
            ptu_start,
            quantities,
            value,
            order_mode,
            valid_until,
            external_id,
        ),
        asset=asset,
        portfolio=portfolio,
        min_quantity_kw=Decimal(str(minimum)),
        all_or_nothing=all_or_nothing,
        min_consecutive_ptus=min_consecutive_ptus,
        max_consecutive_ptus=max_consecutive_ptus,
        tso_eligible=tso_eligible,
        answers_request=answers_request,
        availability_agreement=availability_agreement,
    )
    audit_record(actor=actor, action="flex_offer.submit", target=order, after=_order_snapshot(order))
    _match_if_continuous(order, side="sell")
    return order


@transaction.atomic
def order_cancel(*, actor: Actor, order: FlexRequest | FlexOffer, now: datetime | None = None):
    """Revoke an open order before gate closure (orders are never deleted)."""
    now = now or timezone.now()
    order = type(order).objects.select_for_update(of=("self",)).select_related("session").get(pk=order.pk)
    if order.owner_id != actor.organisation.pk:
        raise DomainError(Code.NOT_CANCELLABLE, "Only the owner cancels an order.")
    if order.state not in OPEN_STATES:
        raise DomainError(Code.NOT_CANCELLABLE, f"The order is {order.get_state_display().lower()}.")
    if order.session and order.session.gate_closure <= now:
        raise DomainError(Code.GATE_CLOSED, "Gate closure has passed; the order can no longer be revoked.")
    before = _order_snapshot(order)
    order.state = OrderState.CANCELLED
    order.state_reason = "Revoked by the owner"
    order.save(update_fields=["state", "state_reason", "updated_at"])
    audit_record(
        actor=actor,
        action=f"{order._meta.model_name}.cancel",
        target=order,
        before=before,
        after={"state": order.state},
    )
    return order


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


# --- gate-closure auction ---------------------------------------------------------------------------


def session_clear(*, session: MarketSession, actor: Actor, rerun: bool = False) -> ClearingRun:
    """Clear an auction session once: claim it (closed → clearing), solve, write contracts, mark it cleared.

    A second delivery of the same task finds the session already claimed and returns its current run. The FMO's
    re-run (`rerun=True`) keeps the old run, supersedes its contracts and writes new ones.
    """
    from_state = MarketSession.State.CLEARED if rerun else MarketSession.State.CLOSED
    if rerun and not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator re-runs a clearing.")
    claimed = MarketSession.objects.filter(pk=session.pk, state=from_state).update(
        state=MarketSession.State.CLEARING
    )
    if not claimed:
        current = ClearingRun.objects.filter(session=session).order_by("-created_at").first()
        if current is None:
            raise DomainError(
                Code.INVALID_STATE,
                f"The session is {session.get_state_display().lower()}; it cannot be cleared now.",
            )
        return current
    product = Product.objects.select_related("market").get(pk=session.product_id)
    run = ClearingRun.objects.create(
        session=session,
        state=ClearingRun.State.RUNNING,
        pricing_rule="pay_as_bid"
        if product.clearing_rule == Product.ClearingRule.AUCTION_PAY_AS_BID
        else "uniform",
        triggered_by=actor.user,
    )
    try:
        with transaction.atomic():
            _clear_into(run=run, session=session, actor=actor, rerun=rerun)
    except Exception as error:  # the run records every failure; the session can be cleared again
        ClearingRun.objects.filter(pk=run.pk).update(
            state=ClearingRun.State.FAILED,
            error=f"{type(error).__name__}: {error}",
            finished_at=timezone.now(),
        )
        MarketSession.objects.filter(pk=session.pk).update(state=from_state)
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    return run


def _clear_into(*, run: ClearingRun, session: MarketSession, actor: Actor, rerun: bool) -> None:
    timings = {}
    started = time.perf_counter()
    if rerun:
        old = Contract.objects.filter(session=session, state=Contract.State.ACTIVE)
        for model, field in ((FlexOffer, "offer"), (FlexRequest, "request")):
            model.objects.filter(pk__in=old.values(field)).update(
                remaining_kw=F("quantities_kw"), state=OrderState.ACTIVE
            )
        old.update(state=Contract.State.SUPERSEDED)
        ClearingRun.objects.filter(session=session, is_current=True).update(is_current=False)
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    offer_rows = list(
        FlexOffer.objects.filter(session=session, state__in=OPEN_STATES)
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "grid_location_id",
            "ptu_start",
            "remaining_kw",
            "min_quantity_kw",
            "price",
            "all_or_nothing",
            "owner_id",
        )
    )
    request_rows = list(
        FlexRequest.objects.filter(session=session, state__in=OPEN_STATES)
        .order_by("created_at", "pk")
        .values_list("pk", "grid_location_id", "ptu_start", "remaining_kw", "price", "owner_id")
    )
    zones = sorted({row[1] for row in offer_rows} | {row[1] for row in request_rows})
    zone_index = {zone: i for i, zone in enumerate(zones)}

    def matrix(rows, quantity_column):
        result = np.zeros((len(rows), n_ptus))
        for i, row in enumerate(rows):
            offset = int((row[2] - session.delivery_start).total_seconds() // 900)
            values = np.asarray(row[quantity_column], dtype=float)
            result[i, offset : offset + values.size] = values
        return result

    orders = AuctionOrders(
        n_ptus=n_ptus,
        n_zones=max(len(zones), 1),
        offer_zone=np.array([zone_index[r[1]] for r in offer_rows], dtype=int),
        offer_qty=matrix(offer_rows, 3),
        offer_min=np.array([float(r[4]) for r in offer_rows]),
        offer_price=np.array([float(r[5]) for r in offer_rows]),
        offer_block=np.array([bool(r[6]) for r in offer_rows], dtype=bool),
        request_zone=np.array([zone_index[r[1]] for r in request_rows], dtype=int),
        request_qty=matrix(request_rows, 3),
        request_price=np.array([float(r[4]) for r in request_rows]),
    )
    timings["load"] = time.perf_counter() - started
    result = clear_auction(orders, pricing=run.pricing_rule)
    timings["build"] = result.timings.get("build", 0.0)
    timings["solve"] = result.timings.get("solve", 0.0)
    started = time.perf_counter()
    if result.status not in ("optimal",):
        raise RuntimeError(f"Solver status {result.status}")
    _write_contracts(
        run=run,
        session=session,
        orders=orders,
        result=result,
        offer_rows=offer_rows,
        request_rows=request_rows,
        n_ptus=n_ptus,
    )
    prices = {}
    for zone, i in zone_index.items():
        row = result.zone_price[i]
        if np.isfinite(row).any():
            prices[str(zone)] = [None if np.isnan(v) else round(float(v), 4) for v in row]
    timings["write"] = (
        time.perf_counter()
        - started
        + result.timings.get("prices", 0.0)
        + result.timings.get("decompose", 0.0)
    )
    run.state = ClearingRun.State.SUCCEEDED
    run.is_current = True
    run.solver = result.solver
    run.solver_status = result.status
    run.objective = result.objective
    run.timings = {k: round(v, 4) for k, v in timings.items()}
    run.offer_count = len(offer_rows)
    run.request_count = len(request_rows)
    run.cleared_volume_kwh = Decimal(str(round(float(result.offer_alloc.sum()) / 4, 3)))
    run.prices = prices
    run.finished_at = timezone.now()
    run.save()
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARED)
    audit_record(
        actor=actor,
        action="session.clear",
        target=session,
        after={"run": run.pk, "status": result.status, "objective": result.objective},
    )


def _write_contracts(*, run, session, orders, result, offer_rows, request_rows, n_ptus) -> None:
    trades = result.trades
    pairs: dict[tuple[int, int], tuple[np.ndarray, list]] = {}
    for r, o, t, kw, price in zip(
        trades.request_idx, trades.offer_idx, trades.ptu, trades.kw, trades.price, strict=True
    ):
        quantities, prices = pairs.setdefault((int(r), int(o)), (np.zeros(n_ptus), ["0"] * n_ptus))
        quantities[t] += kw
        prices[t] = f"{price:.4f}"
    now = timezone.now()
    # References are made before insert (run id + sequence), so contracts are written in one bulk insert.
    contracts = [
        Contract(
            reference=f"FM-{now:%Y%m%d}-R{run.pk}-{number:05d}",
            session=session,
            clearing_run=run,
            request_id=request_rows[r][0],
            offer_id=offer_rows[o][0],
            buyer_id=request_rows[r][5],
            seller_id=offer_rows[o][7],
            grid_location_id=request_rows[r][1],
            product_id=session.product_id,
            direction=session.product.direction,
            ptu_start=session.delivery_start,
            quantities_kw=[round(float(q), 3) for q in quantities],
            prices=prices,
            created_at=now,
        )
        for number, ((r, o), (quantities, prices)) in enumerate(sorted(pairs.items()), start=1)
    ]
    created = Contract.objects.bulk_create(contracts, batch_size=2000)
    # Orders: untouched ones expire in one UPDATE; (partly) cleared ones get their remaining kW and state.
    for model, rows, alloc in (
        (FlexOffer, offer_rows, result.offer_alloc),
        (FlexRequest, request_rows, result.request_alloc),
    ):
        cleared_rows = np.nonzero(alloc.sum(axis=1) > 1e-6)[0]
        untouched = [row[0] for i, row in enumerate(rows) if alloc[i].sum() <= 1e-6]
        model.objects.filter(pk__in=untouched).update(
            state=OrderState.EXPIRED, state_reason="Not cleared at gate closure"
        )
        updates = []
        for i in cleared_rows:
            row = rows[i]
            offset = int((row[2] - session.delivery_start).total_seconds() // 900)
            submitted = np.asarray(row[3], dtype=float)
            remaining = np.round(np.maximum(submitted - alloc[i, offset : offset + submitted.size], 0), 3)
            state = OrderState.FILLED if remaining.sum() <= 1e-6 else OrderState.PARTIALLY_FILLED
            updates.append(model(pk=row[0], remaining_kw=remaining.tolist(), state=state))
        model.objects.bulk_update(updates, ["remaining_kw", "state"], batch_size=1000)
    organisations = {c.buyer_id for c in created} | {c.seller_id for c in created}
    from accounts.models import Organisation

    for organisation in Organisation.objects.filter(pk__in=organisations):
        count = sum(1 for c in created if organisation.pk in (c.buyer_id, c.seller_id))
        notify_organisation(
            organisation=organisation,
            title=f"{session}: {count} contract(s) cleared",
            body="Activation schedules are on your contracts page.",
            link=f"/trading/sessions/{session.pk}/",
            email=True,
        )


# --- availability agreements ------------------------------------------------------------------------


@transaction.atomic
def agreement_propose(
    *,
    actor: Actor,
    esp,
    grid_location: GridLocation,
    product: Product,
    capacity_kw,
    availability_price,
    activation_price,
    windows: list,
    valid_from: date,
    valid_to: date,
    asset: FlexAsset | None = None,
    portfolio: Portfolio | None = None,
) -> AvailabilityAgreement:
    """A DSO proposes a long-term availability agreement to an ESP (FLEXGRID DSO requirement)."""
    if not actor.has_role(Role.DSO) or grid_location.dso_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Only the zone's DSO proposes agreements.")
    if valid_to < valid_from:
        raise DomainError(Code.INVALID_AGREEMENT, "The agreement ends before it starts.", field="valid_to")
    if not windows or not all({"days", "start", "end"} <= set(w) for w in windows):
        raise DomainError(
            Code.INVALID_AGREEMENT,
            'Windows look like [{"days": [0,1,2,3,4], "start": "17:00", "end": "20:00"}].',
            field="windows",
        )
    backing = asset or portfolio
    if backing is None or backing.owner_id != esp.pk or backing.grid_location_id != grid_location.pk:
        raise DomainError(
            Code.INVALID_AGREEMENT, "Name an asset or portfolio of that ESP in the zone.", field="asset"
        )
    agreement = AvailabilityAgreement.objects.create(
        dso=actor.organisation,
        esp=esp,
        grid_location=grid_location,
        product=product,
        asset=asset,
        portfolio=portfolio,
        capacity_kw=_clean_price(capacity_kw),
        availability_price=_clean_price(availability_price),
        activation_price=_clean_price(activation_price),
        windows=windows,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    audit_record(
        actor=actor,
        action="agreement.propose",
        target=agreement,
        after={"capacity_kw": str(agreement.capacity_kw)},
    )
    notify_organisation(
        organisation=esp,
        title=f"{actor.organisation} proposes an availability agreement",
        link="/trading/agreements/",
    )
    return agreement


@transaction.atomic
def agreement_respond(
    *, actor: Actor, agreement: AvailabilityAgreement, accept: bool
) -> AvailabilityAgreement:
    if agreement.esp_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Only the ESP answers the proposal.")
    if agreement.state != AvailabilityAgreement.State.PROPOSED:
        raise DomainError(Code.INVALID_STATE, "The agreement was already answered.")
    agreement.state = AvailabilityAgreement.State.ACTIVE if accept else AvailabilityAgreement.State.DECLINED
    agreement.save(update_fields=["state"])
    audit_record(actor=actor, action="agreement.accept" if accept else "agreement.decline", target=agreement)
    return agreement


def agreement_offers_generate(*, session: MarketSession) -> list[FlexOffer]:
    """Offers for every active agreement covering the session's day, once per session and agreement."""
    generated = []
    zone = ZoneInfo(session.product.market.time_zone)
    agreements = (
        AvailabilityAgreement.objects.filter(
            product=session.product,
            state=AvailabilityAgreement.State.ACTIVE,
            valid_from__lte=session.delivery_day,
            valid_to__gte=session.delivery_day,
        )
        .exclude(generated_offers__session=session)
        .select_related("esp", "asset", "portfolio")
    )
    starts = ptus.ptu_starts(session.delivery_day, session.product.market.time_zone)
    for agreement in agreements:
        quantities = []
        for start in starts:
            local = start.astimezone(zone)
            inside = any(
                local.weekday() in window["days"]
                and window["start"] <= local.strftime("%H:%M") < window["end"]
                for window in agreement.windows
            )
            quantities.append(float(agreement.capacity_kw) if inside else 0.0)
        if not any(quantities):
            continue
        from accounts.models import Membership

        member = Membership.objects.filter(organisation=agreement.esp).select_related("user").first()
        actor = Actor(user=member.user if member else None, organisation=agreement.esp)
        try:
            generated.append(
                offer_submit(
                    actor=actor,
                    product=session.product,
                    ptu_start=starts[0],
                    quantities_kw=quantities,
                    price=agreement.activation_price,
                    asset=agreement.asset,
                    portfolio=agreement.portfolio,
                    availability_agreement=agreement,
                    external_id=f"agreement-{agreement.pk}",
                )
            )
        except DomainError as error:
            audit_record(actor=actor, action="agreement.offer_failed", target=agreement, reason=error.message)
    return generated


# --- CSV upload of orders ---------------------------------------------------------------------------

ORDER_CSV_COLUMNS = [
    "grid_location_code",
    "product_code",
    "ptu_start",
    "quantities_kw",
    "price",
    "order_mode",
]
OFFER_CSV_COLUMNS = [
    "asset_ean",
    "product_code",
    "ptu_start",
    "quantities_kw",
    "price",
    "min_quantity_kw",
    "all_or_nothing",
    "tso_eligible",
]


def orders_import_csv(*, actor: Actor, kind: str, file, now: datetime | None = None) -> list:
    """Post many requests ("request") or offers ("offer") from CSV; one bad row → nothing is posted.

    `quantities_kw` is a space- or semicolon-separated list of kW per PTU; `ptu_start` is ISO 8601 with offset.
    """
    import csv
    import io

    from flexmarket.errors import ValidationErrors

    text = (
        io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        if not isinstance(file, io.StringIO)
        else file
    )
    reader = csv.DictReader(text)
    columns = ORDER_CSV_COLUMNS if kind == "request" else OFFER_CSV_COLUMNS
    missing = [c for c in columns[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise DomainError(Code.INVALID_IMPORT, f"Missing columns: {', '.join(missing)}.", field="file")
    created, errors = [], []
    with transaction.atomic():
        for number, row in enumerate(reader, start=2):
            try:
                with transaction.atomic():
                    created.append(_order_from_row(actor=actor, kind=kind, row=row, now=now))
            except DomainError as error:
                errors.append({"row": number, "field": error.field, "message": error.message})
            except (
                ValueError,
                Product.DoesNotExist,
                GridLocation.DoesNotExist,
                FlexAsset.DoesNotExist,
            ) as error:
                errors.append({"row": number, "field": None, "message": str(error) or "Unknown reference."})
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise ValidationErrors(
            Code.INVALID_IMPORT, f"{len(errors)} row(s) are invalid; nothing was posted.", errors
        )
    if not created:
        raise DomainError(Code.INVALID_IMPORT, "The file has no rows.", field="file")
    return created


def _order_from_row(*, actor: Actor, kind: str, row: dict, now: datetime | None):
    product = Product.objects.select_related("market").get(
        code=(row.get("product_code") or "").strip(), is_active=True
    )
    try:
        start = datetime.fromisoformat((row.get("ptu_start") or "").strip())
    except ValueError:
        raise DomainError(
            Code.INVALID_PTU,
            "ptu_start must be ISO 8601 with an offset, e.g. 2026-11-24T17:00+01:00.",
            field="ptu_start",
        )
    if start.tzinfo is None:
        raise DomainError(Code.INVALID_PTU, "ptu_start needs a UTC offset.", field="ptu_start")
    quantities = [q for q in (row.get("quantities_kw") or "").replace(";", " ").split() if q]
    common = {
        "product": product,
        "ptu_start": start.astimezone(ptus.UTC),
        "quantities_kw": quantities,
        "price": row.get("price"),
        "now": now,
    }
    if kind == "request":
        zone = GridLocation.objects.get(code=(row.get("grid_location_code") or "").strip())
        return request_submit(
            actor=actor,
            grid_location=zone,
            order_mode=(row.get("order_mode") or OrderMode.INITIATOR).strip(),
            **common,
        )
    asset = FlexAsset.objects.get(
        connection_ean=(row.get("asset_ean") or "").strip(), owner=actor.organisation
    )
    flag = lambda name: (row.get(name) or "").strip().lower() in {"1", "true", "yes"}  # noqa: E731
    return offer_submit(
        actor=actor,
        asset=asset,
        min_quantity_kw=row.get("min_quantity_kw") or 0,
        all_or_nothing=flag("all_or_nothing"),
        tso_eligible=flag("tso_eligible"),
        **common,
    )
