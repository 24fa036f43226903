"""Market sessions: opening ahead, gate closures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

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
                    agreement_offers_generate(session=session)
                opened.append(session)
            sessions.extend(opened)
    return sessions


def sessions_close_due(*, now: datetime | None = None) -> list[int]:
    """Close sessions past gate closure; expire unmatched continuous orders. Returns auction sessions to clear."""
    now = now or timezone.now()
    to_clear = []
    for session in MarketSession.objects.select_related("product").filter(
        state=MarketSession.State.OPEN, gate_closure__lte=now
    ):
        with isolated("trading.gate_closures_process", session):
            if _session_close(session):
                to_clear.append(session.pk)
    return to_clear


def _session_close(session: MarketSession) -> bool:
    """Close one session; True when it is an auction that now needs clearing."""
    if not MarketSession.objects.filter(pk=session.pk, state=MarketSession.State.OPEN).update(
        state=MarketSession.State.CLOSED
    ):
        return False
    if session.product.is_auction:
        return True
    for model in (FlexRequest, FlexOffer):
        model.objects.filter(session=session, state__in=OPEN_STATES).update(
            state=OrderState.EXPIRED, state_reason="Gate closed"
        )
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARED)
    return False
