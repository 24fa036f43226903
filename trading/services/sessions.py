"""Market sessions: opening ahead, gate closures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts.context import SYSTEM
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket.isolation import isolated
from trading.models import (
    FlexOffer,
    FlexRequest,
    MarketSession,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES, products_active
from trading.services.agreements import agreement_offers_generate
from trading.services.auction import orders_snapshot_at_gate
from trading.services.capacity import LedgerChanges
from trading.services.orders import session_lock_shared

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
        # One product's failure (a bad time zone, a database error) is recorded and the others still open.
        with isolated("trading.sessions_open_ahead", product):
            today = ptus.local_day_of(now, product.market.time_zone)
            opened = []
            for offset in range(product.sessions_ahead_days + 1):
                session = market_session_open(product=product, day=today + timedelta(days=offset))
                if session.state == MarketSession.State.OPEN and session.gate_closure > now:
                    agreement_offers_generate(session=session, now=now)
                opened.append(session)
            sessions.extend(opened)
    return sessions


def sessions_close_due(*, now: datetime | None = None) -> list[int]:
    """Close sessions past gate closure; returns the auction sessions to clear.

    Each session closes in one transaction holding its row exclusively, so it waits for order writes in flight
    (they hold it in share mode) and every later order write sees it closed. Auction orders keep what they held
    at gate closure (`gate_remaining_kw`) for the clearing; a continuous session's open orders expire and release
    their capacity, and the session is cleared at once.
    """
    now = now or timezone.now()
    to_clear = []
    due = list(
        MarketSession.objects.filter(state=MarketSession.State.OPEN, gate_closure__lte=now).order_by("pk")
    )
    for candidate in due:
        # One session's failure is recorded (Task failures) and the others still close.
        with isolated("trading.gate_closures_process", candidate):
            session = (
                MarketSession.objects.select_for_update(of=("self",))
                .select_related("product")
                .get(pk=candidate.pk)
            )
            if session.state != MarketSession.State.OPEN or session.gate_closure > now:
                continue
            counts = {
                "requests": FlexRequest.objects.filter(session=session, state__in=OPEN_STATES).count(),
                "offers": FlexOffer.objects.filter(session=session, state__in=OPEN_STATES).count(),
            }
            if session.product.is_auction:
                orders_snapshot_at_gate(session)
                session.state = MarketSession.State.CLOSED
                to_clear.append(session.pk)
            else:
                _expire_open_orders(session, reason="Gate closed")
                session.state = MarketSession.State.CLEARED
            session.save(update_fields=["state"])
            audit_record(
                actor=SYSTEM,
                action="session.gate_closure",
                target=session,
                after={"state": session.state, "open_orders": counts, "at": now.isoformat()},
            )
    return to_clear


def _expire_open_orders(session: MarketSession, *, reason: str) -> None:
    ledger = LedgerChanges()
    for offer in FlexOffer.objects.filter(session=session, state__in=OPEN_STATES):
        ledger.close(offer, OrderState.EXPIRED)
    ledger.write()
    for model in (FlexRequest, FlexOffer):
        model.objects.filter(session=session, state__in=OPEN_STATES).update(
            state=OrderState.EXPIRED, state_reason=reason, updated_at=timezone.now()
        )


def orders_expire_due(*, now: datetime | None = None) -> int:
    """Expire open orders whose `valid_until` has passed (releasing offers' capacity); returns how many."""
    now = now or timezone.now()
    expired = 0
    sessions = set()
    for model in (FlexRequest, FlexOffer):
        sessions |= set(
            model.objects.filter(state__in=OPEN_STATES, valid_until__lte=now).values_list(
                "session_id", flat=True
            )
        )
    for session_id in sorted(s for s in sessions if s is not None):
        with transaction.atomic():
            session = session_lock_shared(session_id)
            if session.state != MarketSession.State.OPEN:
                continue  # the gate closure or the clearing deals with them
            ledger = LedgerChanges()
            for model in (FlexRequest, FlexOffer):
                orders = list(
                    model.objects.select_for_update()
                    .filter(session_id=session_id, state__in=OPEN_STATES, valid_until__lte=now)
                    .order_by("pk")
                )
                for order in orders:
                    if model is FlexOffer:
                        ledger.close(order, OrderState.EXPIRED)
                model.objects.filter(pk__in=[o.pk for o in orders]).update(
                    state=OrderState.EXPIRED, state_reason="Validity ended", updated_at=now
                )
                expired += len(orders)
            ledger.write()
    return expired
