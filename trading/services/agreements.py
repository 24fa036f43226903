"""Long-term availability agreements and the offers they generate per session."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket import validation
from flexmarket.errors import DomainError
from flexmarket.isolation import isolated
from grid.models import FlexAsset, GridLocation, Portfolio
from grid.services import availability_clean
from trading.errors import TradingErrorCode as Code
from trading.models import (
    AvailabilityAgreement,
    FlexOffer,
    MarketSession,
    Product,
)
from trading.services import limits
from trading.services.orders import offer_submit

# --- availability agreements ------------------------------------------------------------------------


def _clean_windows(windows) -> list[dict]:
    """At least one well-formed window, checked at the door so the session-opening task never meets a
    window it cannot read (issue 15.3: `[["days", "start", "end"]]` stopped it for everyone)."""
    try:
        cleaned = availability_clean(windows)
    except DomainError as error:
        raise DomainError(Code.INVALID_AGREEMENT, error.message, field="windows")
    if not cleaned:
        raise DomainError(
            Code.INVALID_AGREEMENT,
            'Windows look like [{"days": [0,1,2,3,4], "start": "17:00", "end": "20:00"}].',
            field="windows",
        )
    return cleaned


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
    validation.check_date(valid_from, field="valid_from", code=Code.INVALID_AGREEMENT)
    validation.check_date(valid_to, field="valid_to", code=Code.INVALID_AGREEMENT)
    if valid_to < valid_from:
        raise DomainError(Code.INVALID_AGREEMENT, "The agreement ends before it starts.", field="valid_to")
    windows = _clean_windows(windows)
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
        capacity_kw=validation.bounded_decimal(
            capacity_kw,
            field="capacity_kw",
            code=Code.INVALID_AGREEMENT,
            maximum=limits.max_order_kw_decimal(),
        ),
        availability_price=limits.clean_price(availability_price, field="availability_price"),
        activation_price=limits.clean_price(activation_price, field="activation_price"),
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
        with isolated("trading.sessions_open_ahead", agreement) as outcome:
            offer = _agreement_offer(agreement, session=session, starts=starts, zone=zone)
            if offer is not None:
                generated.append(offer)
        _flag_agreement(agreement, outcome.error)
    return generated


def _flag_agreement(agreement: AvailabilityAgreement, error: str) -> None:
    """Record (or clear) the last generation failure on the agreement, where the DSO and ESP see it."""
    if error or agreement.generation_error:
        AvailabilityAgreement.objects.filter(pk=agreement.pk).update(
            generation_error=error, generation_failed_at=timezone.now() if error else None
        )


def _agreement_offer(agreement, *, session, starts, zone) -> FlexOffer | None:
    quantities = []
    for start in starts:
        local = start.astimezone(zone)
        inside = any(
            local.weekday() in window["days"] and window["start"] <= local.strftime("%H:%M") < window["end"]
            for window in agreement.windows
        )
        quantities.append(float(agreement.capacity_kw) if inside else 0.0)
    if not any(quantities):
        return None
    from accounts.models import Membership

    member = Membership.objects.filter(organisation=agreement.esp).select_related("user").first()
    actor = Actor(user=member.user if member else None, organisation=agreement.esp)
    try:
        return offer_submit(
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
    except DomainError as error:
        audit_record(actor=actor, action="agreement.offer_failed", target=agreement, reason=error.message)
        AvailabilityAgreement.objects.filter(pk=agreement.pk).update(
            generation_error=f"{session}: {error.message}"[:2000], generation_failed_at=timezone.now()
        )
        agreement.generation_error = ""  # recorded just now; _flag_agreement must not clear it
        return None
