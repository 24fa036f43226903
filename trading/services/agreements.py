"""Long-term availability agreements and the offers they generate per session."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Notification, Role
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
from trading.services.capacity import agreement_capacity_check, agreement_profile
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
        category=Notification.Category.TRADING,
        organisation=esp,
        title=f"{actor.organisation} proposes an availability agreement",
        link="/trading/agreements/",
    )
    return agreement


@transaction.atomic
def agreement_respond(
    *, actor: Actor, agreement: AvailabilityAgreement, accept: bool
) -> AvailabilityAgreement:
    """The ESP accepts (its capacity is then reserved for the agreement's windows and validity) or declines."""
    if actor.organisation is None or agreement.esp_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Only the ESP answers the proposal.")
    agreement = (
        AvailabilityAgreement.objects.select_for_update(of=("self",))
        .select_related("product__market", "asset", "portfolio")
        .get(pk=agreement.pk)
    )
    if agreement.state != AvailabilityAgreement.State.PROPOSED:
        raise DomainError(Code.INVALID_STATE, "The agreement was already answered.")
    if accept:
        # FLEXGRID: capacity reserved under an availability agreement is not offered twice.
        agreement_capacity_check(agreement)
    agreement.state = AvailabilityAgreement.State.ACTIVE if accept else AvailabilityAgreement.State.DECLINED
    agreement.save(update_fields=["state"])
    audit_record(actor=actor, action="agreement.accept" if accept else "agreement.decline", target=agreement)
    return agreement


def agreement_offers_generate(*, session: MarketSession, now=None) -> list[FlexOffer]:
    """Offers for every active agreement covering the session's day, once per session and agreement.

    Run by beat, so the offers are the system's acts on the ESP's behalf (audited with no user). The database
    allows one offer per agreement and session, so concurrent runs cannot generate twice.
    """
    generated = []
    agreements = (
        AvailabilityAgreement.objects.filter(
            product=session.product,
            state=AvailabilityAgreement.State.ACTIVE,
            valid_from__lte=session.delivery_day,
            valid_to__gte=session.delivery_day,
        )
        .exclude(generated_offers__session=session)
        .select_related("esp", "asset", "portfolio", "product__market")
    )
    start, end = ptus.day_bounds_utc(session.delivery_day, session.product.market.time_zone)
    n = int((end - start) / ptus.PTU)
    for agreement in agreements:
        with isolated("trading.sessions_open_ahead", agreement) as outcome:
            offer = _agreement_offer(agreement, session=session, start=start, n=n, now=now)
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


def _agreement_offer(agreement, *, session, start, n, now) -> FlexOffer | None:
    """The session's offer of one agreement, as the system's act on the ESP's behalf (no user)."""
    quantities = agreement_profile(agreement, start, n).tolist()
    if not any(quantities):
        return None
    actor = Actor(user=None, organisation=agreement.esp)
    try:
        with transaction.atomic():
            return offer_submit(
                actor=actor,
                product=session.product,
                ptu_start=start,
                quantities_kw=quantities,
                price=agreement.activation_price,
                asset=agreement.asset,
                portfolio=agreement.portfolio,
                availability_agreement=agreement,
                external_id=f"agreement-{agreement.pk}",
                now=now,
            )
    except IntegrityError:
        return None  # another beat run generated this session's offer first (one per agreement and session)
    except DomainError as error:
        audit_record(actor=actor, action="agreement.offer_failed", target=agreement, reason=error.message)
        AvailabilityAgreement.objects.filter(pk=agreement.pk).update(
            generation_error=f"{session}: {error.message}"[:2000], generation_failed_at=timezone.now()
        )
        agreement.generation_error = ""  # recorded just now; _flag_agreement must not clear it
        return None
