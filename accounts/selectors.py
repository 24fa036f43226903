"""Reads that enforce visibility for organisations, members, API keys and audit events."""

from __future__ import annotations

import hashlib

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.context import Actor
from accounts.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organisation,
    OrganisationRole,
    Role,
    User,
)

ON_BEHALF_SESSION_KEY = "on_behalf_of_organisation_id"
ON_BEHALF_HEADER = "X-On-Behalf-Of"


def organisations_with_roles() -> QuerySet[Organisation]:
    return Organisation.objects.prefetch_related(
        Prefetch("role_grants", queryset=OrganisationRole.objects.all())
    )


def user_organisations(*, user: User) -> QuerySet[Organisation]:
    return organisations_with_roles().filter(memberships__user=user)


def user_primary_organisation(*, user: User) -> Organisation | None:
    return user_organisations(user=user).order_by("memberships__created_at").first()


def user_is_fmo_staff(*, user: User) -> bool:
    return OrganisationRole.objects.filter(
        role=Role.FMO, organisation__memberships__user=user, organisation__status=Organisation.Status.APPROVED
    ).exists()


def user_requires_mfa_setup(*, user: User) -> bool:
    """FMO staff must have TOTP (allauth MFA) before they may act."""
    if not user_is_fmo_staff(user=user):
        return False
    from allauth.mfa.models import Authenticator

    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def membership_get(*, user: User, organisation: Organisation) -> Membership | None:
    return Membership.objects.filter(user=user, organisation=organisation).first()


def user_is_organisation_admin(*, user: User, organisation: Organisation) -> bool:
    return Membership.objects.filter(user=user, organisation=organisation, is_admin=True).exists()


def actor_build(
    *, user: User | None, organisation: Organisation | None, on_behalf_of_id: str | int | None
) -> Actor:
    """FMO staff may act on behalf of an approved non-FMO organisation; anyone else acts for their own."""
    if user is None or not user.is_authenticated:
        return Actor(user=None, organisation=None)
    if organisation is None:
        organisation = user_primary_organisation(user=user)
    target_id = str(on_behalf_of_id or "").strip()
    if target_id.isdigit() and organisation is not None and organisation.is_fmo and organisation.is_approved:
        target = organisations_for_on_behalf().filter(pk=int(target_id)).first()
        if target is not None:
            return Actor(user=user, organisation=target, operator=organisation)
    return Actor(user=user, organisation=organisation)


def actor_for_request(request) -> Actor:
    """The acting user and organisation of a page or API request (API keys name their organisation)."""
    auth = getattr(request, "auth", None)
    user = getattr(request, "user", None)
    on_behalf = request.headers.get(ON_BEHALF_HEADER) or (
        request.session.get(ON_BEHALF_SESSION_KEY) if hasattr(request, "session") else None
    )
    if isinstance(auth, ApiKey):
        return actor_build(user=user, organisation=auth.organisation, on_behalf_of_id=on_behalf)
    return actor_build(user=user, organisation=None, on_behalf_of_id=on_behalf)


def organisation_get_visible_list(*, actor: Actor) -> QuerySet[Organisation]:
    """Approved participants see the approved organisations (a market directory); FMO sees all."""
    qs = organisations_with_roles()
    if actor.organisation is None:
        return qs.none()
    if actor.is_fmo and not actor.on_behalf:
        return qs
    return qs.filter(Q(status=Organisation.Status.APPROVED) | Q(pk=actor.organisation.pk))


def organisation_get_visible(*, actor: Actor, pk) -> Organisation:
    org = organisation_get_visible_list(actor=actor).filter(pk=pk).first()
    if org is None:
        raise Http404
    return org


def members_get_visible(*, actor: Actor, organisation: Organisation) -> QuerySet[Membership]:
    """Members are private: only the organisation itself and the FMO see them."""
    if actor.organisation is None:
        return Membership.objects.none()
    if actor.organisation.pk != organisation.pk and not (actor.is_fmo and not actor.on_behalf):
        return Membership.objects.none()
    return Membership.objects.filter(organisation=organisation).select_related("user")


def api_keys_get_visible(*, actor: Actor) -> QuerySet[ApiKey]:
    if actor.organisation is None:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(organisation=actor.organisation).select_related("created_by", "organisation")


def api_key_get_visible(*, actor: Actor, pk) -> ApiKey:
    key = api_keys_get_visible(actor=actor).filter(pk=pk).first()
    if key is None:
        raise Http404
    return key


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_find_active(*, raw_key: str) -> ApiKey | None:
    """The active key for a presented secret, or None (unknown, revoked or expired).

    The organisation's status is checked by the authentication class, so it can say why a key is refused.
    """
    key = (
        ApiKey.objects.select_related("organisation", "created_by")
        .filter(hashed_key=api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is None or not key.is_active:
        return None
    return key


def audit_events_get_visible(*, actor: Actor) -> QuerySet[AuditEvent]:
    if actor.organisation is None:
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.select_related("actor", "organisation", "on_behalf_of_operator")
    if actor.is_fmo and not actor.on_behalf:
        return qs
    return qs.filter(organisation=actor.organisation)


def notifications_get_visible(*, actor: Actor) -> QuerySet[Notification]:
    """The actor's notifications: its organisation's, less those addressed to another of its members."""
    if actor.organisation is None:
        return Notification.objects.none()
    return Notification.objects.filter(organisation=actor.organisation).filter(
        Q(user__isnull=True) | Q(user=actor.user)
    )


def notifications_get_unread(*, actor: Actor) -> QuerySet[Notification]:
    return notifications_get_visible(actor=actor).filter(read_at__isnull=True)


def organisations_pending() -> QuerySet[Organisation]:
    return organisations_with_roles().filter(status=Organisation.Status.PENDING).order_by("created_at")


def invitations_get_open(*, actor: Actor) -> QuerySet[Invitation]:
    if actor.organisation is None:
        return Invitation.objects.none()
    return Invitation.objects.filter(
        organisation=actor.organisation, accepted_at__isnull=True
    ).select_related("invited_by")


def invitations_get_for_email(*, email: str) -> QuerySet[Invitation]:
    """Open, unexpired invitations addressed to an email (shown to the invitee on sign-up and landing)."""
    return Invitation.objects.select_related("organisation").filter(
        email__iexact=email.strip(), accepted_at__isnull=True, expires_at__gt=timezone.now()
    )


def invitation_get_by_token(*, token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organisation")
        .filter(token=token, accepted_at__isnull=True)
        .first()
    )


def organisations_for_on_behalf() -> QuerySet[Organisation]:
    """Approved non-FMO organisations an FMO operator may act for."""
    return (
        organisations_with_roles()
        .filter(status=Organisation.Status.APPROVED)
        .exclude(role_grants__role=Role.FMO)
        .order_by("legal_name")
    )
