"""Dashboard panel: open orders, contracts and the next gate closure for the acting organisation."""

from django.utils import timezone

from accounts.models import Role
from trading import selectors
from trading.models import MarketSession


def panels(request, actor) -> list[dict]:
    if not actor.has_role(Role.DSO, Role.TSO, Role.ESP, Role.FMO):
        return []
    next_session = (
        selectors.sessions_get_visible(actor=actor)
        .filter(state=MarketSession.State.OPEN, gate_closure__gt=timezone.now())
        .order_by("gate_closure")
        .first()
    )
    contracts = selectors.contracts_get_visible(actor=actor).filter(state__in=["active", "settled"])
    return [
        {
            "template": "trading/_panel.html",
            "open_requests": selectors.requests_get_visible(actor=actor)
            .filter(state__in=selectors.OPEN_STATES)
            .count(),
            "open_offers": selectors.offers_get_visible(actor=actor)
            .filter(state__in=selectors.OPEN_STATES)
            .count(),
            "opportunities": selectors.opportunities_get(actor=actor).count()
            if actor.has_role(Role.ESP)
            else None,
            "contracts": contracts.count(),
            "contracted_kwh": sum(sum(q) for q in contracts.values_list("quantities_kw", flat=True)) / 4,
            "next_session": next_session,
        }
    ]
