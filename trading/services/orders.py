"""FlexRequests and FlexOffers: validation, submission, cancellation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from flexmarket.localtime import moment_label
from grid.models import FlexAsset, GridLocation, Portfolio
from trading.errors import TradingErrorCode as Code
from trading.models import (
    AvailabilityAgreement,
    Direction,
    FlexOffer,
    FlexRequest,
    Market,
    MarketSession,
    OrderMode,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES
from trading.services import limits, product_rules
from trading.services.capacity import LedgerChanges, capacity_reserve
from trading.services.matching import _match_if_continuous

# --- order validation -------------------------------------------------------------------------------


def _clean_quantities(quantities) -> list[float]:
    return limits.clean_quantities(quantities)


def _clean_price(price) -> Decimal:
    return limits.clean_price(price)


def session_lock_shared(session_id: int, *, product: Product | None = None) -> MarketSession:
    """Hold the session row in share mode for this transaction and return its latest committed state.

    Order writes take this lock; gate closure and clearing take the row exclusively, so an order is either
    committed before the session closes or sees it closed (PostgreSQL; SQLite serialises all writers anyway).
    """
    if connection.vendor == "postgresql":
        table = MarketSession._meta.db_table
        session = next(
            iter(MarketSession.objects.raw(f"SELECT * FROM {table} WHERE id = %s FOR SHARE", [session_id]))
        )
        if product is None or product.pk != session.product_id:
            product = Product.objects.select_related("market").get(pk=session.product_id)
        session.product = product
        return session
    return MarketSession.objects.select_related("product__market").get(pk=session_id)


def _gate_closed_error(session: MarketSession) -> DomainError:
    local = session.gate_closure.astimezone(ZoneInfo(session.product.market.time_zone))
    return DomainError(
        Code.GATE_CLOSED,
        f"Gate closure for {session.delivery_day} was {local:%Y-%m-%d %H:%M %Z}; orders are no longer accepted.",
        field="ptu_start",
    )


def session_accepting(session_id: int, now: datetime, *, product: Product | None = None) -> MarketSession:
    """The session, share-locked, if it still takes order changes at `now`; else a gate_closed error."""
    session = session_lock_shared(session_id, product=product)
    if session.state != MarketSession.State.OPEN or session.gate_closure <= now:
        raise _gate_closed_error(session)
    return session


def _open_session(*, product: Product, ptu_start: datetime, n_ptus: int, now: datetime) -> MarketSession:
    if ptu_start.tzinfo is None or not ptus.is_ptu_boundary(ptu_start):
        raise DomainError(
            Code.INVALID_PTU, "The first PTU must start on a quarter hour (aware time).", field="ptu_start"
        )
    session = _session_covering_lock_shared(product=product, ptu_start=ptu_start)
    if session is None:
        raise DomainError(
            Code.NO_SESSION,
            f"No session of {product} is open for {moment_label(ptu_start)}.",
            field="ptu_start",
        )
    if ptu_start + n_ptus * ptus.PTU > session.delivery_end:
        raise DomainError(
            Code.INVALID_PTU, "The PTUs run past the end of the delivery day.", field="quantities_kw"
        )
    if session.state != MarketSession.State.OPEN or session.gate_closure <= now:
        raise _gate_closed_error(session)
    return session


def _session_covering_lock_shared(*, product: Product, ptu_start: datetime) -> MarketSession | None:
    """The product's session delivering `ptu_start`, found and share-locked in one query (session_lock_shared)."""
    if connection.vendor == "postgresql":
        table = MarketSession._meta.db_table
        found = list(
            MarketSession.objects.raw(
                f"SELECT * FROM {table} WHERE product_id = %s AND delivery_start <= %s AND delivery_end > %s "
                "ORDER BY delivery_day DESC LIMIT 1 FOR SHARE",
                [product.pk, ptu_start, ptu_start],
            )
        )
        if not found:
            return None
        found[0].product = product
        return found[0]
    return (
        MarketSession.objects.select_related("product__market")
        .filter(product=product, delivery_start__lte=ptu_start, delivery_end__gt=ptu_start)
        .order_by("-delivery_day")
        .first()
    )


def _clean_valid_until(valid_until: datetime | None, now: datetime) -> datetime | None:
    if valid_until is None:
        return None
    if valid_until.tzinfo is None:
        raise DomainError(Code.INVALID_VALIDITY, "valid_until needs a UTC offset.", field="valid_until")
    if valid_until <= now:
        raise DomainError(
            Code.INVALID_VALIDITY,
            "valid_until is already past: the order would never be valid.",
            field="valid_until",
        )
    return valid_until


def _check_zone(grid_location: GridLocation, product: Product) -> None:
    if grid_location.archived_at is not None:
        raise DomainError(Code.WRONG_ZONE, "The grid location is archived.", field="grid_location")
    # A market with no zones listed takes every zone; otherwise the zone must be one of them (one statement,
    # written by hand: it runs for every order, and the ORM's aggregate costs more to build than to run).
    through = Market.grid_locations.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT(CASE WHEN gridlocation_id = %s THEN 1 END) FROM {through} WHERE market_id = %s",
            [grid_location.pk, product.market_id],
        )
        listed, this = cursor.fetchone()
    if listed and not this:
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
        "ptu_end": ptu_start + len(quantities) * ptus.PTU,
        "quantities_kw": quantities,
        "remaining_kw": list(quantities),
        "price": price,
        "order_mode": order_mode,
        "valid_until": valid_until,
        "external_id": external_id[:64],
    }


def _order_snapshot(order) -> dict:
    snapshot = {
        "zone": order.grid_location_id,
        "product": order.product_id,
        "direction": order.direction,
        "ptu_start": order.ptu_start.isoformat(),
        "quantities_kw": order.quantities_kw,
        "price": str(order.price),
        "mode": order.order_mode,
        "state": order.state,
    }
    if getattr(order, "q_price", None) is not None:
        snapshot["reactive"] = [str(order.q_min_kvar), str(order.q_max_kvar), str(order.q_price)]
    return snapshot


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
    limits.check_order_times(ptu_start=ptu_start, valid_until=valid_until)
    direction = direction or product.direction
    if direction != product.direction:
        raise DomainError(
            Code.PRODUCT_MISMATCH, f"{product} trades {product.direction} flexibility.", field="direction"
        )
    product_rules.check_order(
        product, ptu_start=ptu_start, quantities=quantities, price=value, order_mode=order_mode
    )
    _check_zone(grid_location, product)
    valid_until = _clean_valid_until(valid_until, now)
    session = _open_session(product=product, ptu_start=ptu_start, n_ptus=len(quantities), now=now)
    limits.check_request_volume(
        owner=actor.organisation,
        grid_location=grid_location,
        product=product,
        ptu_start=ptu_start,
        quantities=quantities,
    )
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
    _match_if_continuous(order, side="buy", now=now)
    return order


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
    q_min_kvar=None,
    q_max_kvar=None,
    q_price=None,
) -> FlexOffer:
    """An ESP offers flexibility backed by an approved asset or portfolio in the zone (sell order), on a
    network-aware product optionally with a reactive range (kVAr, EUR/Mvarh; limits.clean_reactive)."""
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
        portfolio.archived_at
        or not portfolio.assets.exists()
        or any(not a.can_trade for a in portfolio.assets.all())
    ):
        raise DomainError(
            Code.ASSET_NOT_TRADABLE,
            "The portfolio needs at least one asset, and every asset of it must be approved.",
            field="portfolio",
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
    limits.check_order_times(ptu_start=ptu_start, valid_until=valid_until)
    minimum = float(limits.clean_price(min_quantity_kw, field="min_quantity_kw"))
    if minimum > max(quantities):
        raise DomainError(
            Code.INVALID_BLOCK, "The minimum is above every PTU's quantity.", field="min_quantity_kw"
        )
    product_rules.check_order(
        product,
        ptu_start=ptu_start,
        quantities=quantities,
        price=value,
        order_mode=order_mode,
        block=minimum > 0 or bool(all_or_nothing),
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
    reactive = limits.clean_reactive(
        product=product, q_min_kvar=q_min_kvar, q_max_kvar=q_max_kvar, q_price=q_price
    )
    _check_zone(grid_location, product)
    valid_until = _clean_valid_until(valid_until, now)
    session = _open_session(product=product, ptu_start=ptu_start, n_ptus=len(quantities), now=now)
    if availability_agreement is None:
        # Capability: open offers, standing contracts and agreements on the same asset(s) and PTUs (the ledger).
        allocation = capacity_reserve(
            asset=asset, portfolio=portfolio, direction=direction, ptu_start=ptu_start, quantities=quantities
        )
    else:
        # The agreement reserved this capacity when the ESP accepted it; its offers live inside that reservation.
        allocation = {}
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
        member_allocation=allocation,
        **reactive,
    )
    ledger = LedgerChanges()
    ledger.offer(order, quantities)
    ledger.write()
    audit_record(
        actor=actor,
        action="flex_offer.submit",
        target=order,
        after=_order_snapshot(order),
        reason=f"Generated by availability agreement {availability_agreement.pk}"
        if availability_agreement
        else "",
    )
    _match_if_continuous(order, side="sell", now=now)
    return order


@transaction.atomic
def order_cancel(*, actor: Actor, order: FlexRequest | FlexOffer, now: datetime | None = None):
    """Revoke an open order before gate closure (orders are never deleted); an offer releases its capacity."""
    now = now or timezone.now()
    if actor.organisation is None or order.owner_id != actor.organisation.pk:
        raise DomainError(Code.NOT_CANCELLABLE, "Only the owner cancels an order.")
    if order.session_id is not None:
        # The session first (as every order write does), so a cancellation never races the gate closure.
        session_accepting(order.session_id, now)
    order = type(order).objects.select_for_update(of=("self",)).select_related("session").get(pk=order.pk)
    if order.state not in OPEN_STATES:
        raise DomainError(Code.NOT_CANCELLABLE, f"The order is {order.get_state_display().lower()}.")
    before = _order_snapshot(order)
    if isinstance(order, FlexOffer):
        ledger = LedgerChanges()
        ledger.close(order, OrderState.CANCELLED)
        ledger.write()
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
