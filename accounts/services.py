"""Business actions on organisations, members, API keys, notifications and the audit trail."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.context import Actor, current_request_id
from accounts.errors import AccountsErrorCode
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
from accounts.selectors import api_key_hash, notifications_get_unread, user_is_organisation_admin
from flexmarket.errors import DomainError

# EIC: 16 characters, 2-digit issuing office, type letter, 12 more alphanumerics/dashes, check char.
EIC_PATTERN = re.compile(r"^[0-9]{2}[A-Z0-9][A-Z0-9-]{12}[A-Z0-9]$")
EAN13_PATTERN = re.compile(r"^[0-9]{13}$")
API_KEY_PREFIX_LENGTH = 8
INVITATION_VALIDITY = timedelta(days=7)


# --- audit -----------------------------------------------------------------------------------------


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: Any = None,
    organisation: Organisation | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Write one append-only audit row. Services call this inside their transaction."""
    event = audit_build(
        actor=actor,
        action=action,
        target=target,
        organisation=organisation,
        before=before,
        after=after,
        reason=reason,
    )
    event.save()
    return event


def audit_record_many(events: list[AuditEvent]) -> list[AuditEvent]:
    """Write many audit rows built with `audit_build` in one INSERT (a batch of verification results)."""
    return AuditEvent.objects.bulk_create(events)


def audit_build(
    *,
    actor: Actor,
    action: str,
    target: Any = None,
    organisation: Organisation | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """An audit row, not yet written (see `audit_record` and `audit_record_many`)."""
    return AuditEvent(
        actor=actor.user if actor.user is not None and actor.user.is_authenticated else None,
        organisation=organisation if organisation is not None else actor.organisation,
        on_behalf_of_operator=actor.operator,
        action=action,
        object_type=target._meta.label if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        object_repr=str(target)[:300] if target is not None else "",
        before=before,
        after=after,
        reason=reason,
        request_id=current_request_id.get(),
    )


# --- organisations ---------------------------------------------------------------------------------


def _validate_party_code(code: str) -> str:
    code = code.strip().upper()
    if not (EIC_PATTERN.match(code) or EAN13_PATTERN.match(code)):
        raise DomainError(
            AccountsErrorCode.INVALID_CODE,
            "Enter an EIC code (16 characters, e.g. 10X1001A1001A361) or a 13-digit EAN/GLN.",
            field="code",
        )
    return code


def _validate_roles(roles: list[str], *, allow_fmo: bool) -> list[str]:
    allowed = {role.value for role in Role} - (set() if allow_fmo else {Role.FMO.value})
    unknown = [role for role in roles if role not in allowed]
    if unknown or not roles:
        raise DomainError(
            AccountsErrorCode.INVALID_ROLE,
            f"Choose one or more of: {', '.join(sorted(allowed))}.",
            field="roles",
        )
    return sorted(set(roles))


def organisation_application_validate(
    *, legal_name: str, country: str, code: str, requested_roles: list[str]
) -> dict[str, Any]:
    """Check an application before anything is written; returns the cleaned values."""
    legal_name = legal_name.strip()
    if not legal_name:
        raise DomainError(
            AccountsErrorCode.INVALID_STATE, "Enter the organisation's legal name.", field="legal_name"
        )
    code = _validate_party_code(code)
    roles = _validate_roles(requested_roles, allow_fmo=False)
    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise DomainError(
            AccountsErrorCode.INVALID_CODE, "Use a two-letter country code, e.g. NL.", field="country"
        )
    if Organisation.objects.filter(legal_name__iexact=legal_name).exists():
        raise DomainError(
            AccountsErrorCode.ORGANISATION_EXISTS,
            "An organisation with this name exists.",
            field="legal_name",
        )
    if Organisation.objects.filter(code=code).exists():
        raise DomainError(
            AccountsErrorCode.ORGANISATION_EXISTS, "An organisation with this code exists.", field="code"
        )
    return {"legal_name": legal_name, "country": country, "code": code, "requested_roles": roles}


@transaction.atomic
def organisation_apply(
    *, user: User, legal_name: str, country: str, code: str, requested_roles: list[str]
) -> Organisation:
    """A signed-up user applies for an organisation; it waits for the FMO's approval."""
    cleaned = organisation_application_validate(
        legal_name=legal_name, country=country, code=code, requested_roles=requested_roles
    )
    legal_name, code, roles = cleaned["legal_name"], cleaned["code"], cleaned["requested_roles"]
    organisation = Organisation.objects.create(**cleaned)
    Membership.objects.create(user=user, organisation=organisation, is_admin=True)
    audit_record(
        actor=Actor(user=user, organisation=organisation),
        action="organisation.apply",
        target=organisation,
        after={"legal_name": legal_name, "code": code, "requested_roles": roles},
    )
    for operator in Organisation.objects.filter(
        status=Organisation.Status.APPROVED, role_grants__role=Role.FMO
    ):
        notify_organisation(
            category=Notification.Category.ACCOUNT,
            organisation=operator,
            title=f"New application: {organisation}",
            body=f"{organisation} ({code}, {organisation.country}) asks for {', '.join(roles)}.",
            link=reverse("admin:accounts_organisation_change", args=[organisation.pk]),
        )
    return organisation


def _organisation_state(organisation: Organisation) -> dict:
    return {"status": organisation.status, "roles": sorted(organisation.role_codes)}


def _set_status(
    *, actor: Actor, organisation: Organisation, status: str, reason: str, action: str
) -> Organisation:
    before = _organisation_state(organisation)
    organisation.status = status
    organisation.status_reason = reason
    organisation.status_changed_at = timezone.now()
    organisation.status_changed_by = actor.user
    organisation.save(update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"])
    if hasattr(organisation, "_role_codes"):
        del organisation._role_codes
    audit_record(
        actor=actor,
        action=action,
        target=organisation,
        organisation=organisation,
        before=before,
        after=_organisation_state(organisation),
        reason=reason,
    )
    return organisation


def _require_fmo(actor: Actor) -> None:
    if not actor.is_fmo or actor.on_behalf:
        raise DomainError(AccountsErrorCode.ROLE_REQUIRED, "Only the market operator (FMO) can do this.")


@transaction.atomic
def organisation_approve(
    *, actor: Actor, organisation: Organisation, roles: list[str] | None = None, reason: str = ""
) -> Organisation:
    """The FMO approves an application and grants roles (by default, the roles asked for)."""
    _require_fmo(actor)
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if organisation.status == Organisation.Status.APPROVED:
        raise DomainError(AccountsErrorCode.INVALID_STATE, f"{organisation} is already approved.")
    granted = _validate_roles(
        roles if roles is not None else list(organisation.requested_roles), allow_fmo=True
    )
    OrganisationRole.objects.filter(organisation=organisation).exclude(role__in=granted).delete()
    for role in granted:
        OrganisationRole.objects.get_or_create(organisation=organisation, role=role)
    organisation = _set_status(
        actor=actor,
        organisation=organisation,
        status=Organisation.Status.APPROVED,
        reason=reason,
        action="organisation.approve",
    )
    notify_organisation(
        category=Notification.Category.ACCOUNT,
        organisation=organisation,
        title="Your organisation was approved",
        body=f"{organisation} may now use flexmarket as {', '.join(granted)}.",
        link="/",
        email=True,
    )
    return organisation


@transaction.atomic
def organisation_reject(*, actor: Actor, organisation: Organisation, reason: str) -> Organisation:
    _require_fmo(actor)
    if not reason.strip():
        raise DomainError(
            AccountsErrorCode.REASON_REQUIRED, "Give a reason for the rejection.", field="reason"
        )
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if organisation.status != Organisation.Status.PENDING:
        raise DomainError(AccountsErrorCode.INVALID_STATE, "Only pending applications can be rejected.")
    organisation = _set_status(
        actor=actor,
        organisation=organisation,
        status=Organisation.Status.REJECTED,
        reason=reason,
        action="organisation.reject",
    )
    notify_organisation(
        category=Notification.Category.ACCOUNT,
        organisation=organisation,
        title="Your application was rejected",
        body=reason,
        email=True,
    )
    return organisation


@transaction.atomic
def organisation_suspend(*, actor: Actor, organisation: Organisation, reason: str) -> Organisation:
    """Suspension stops trading and API access at once; history stays."""
    _require_fmo(actor)
    if not reason.strip():
        raise DomainError(
            AccountsErrorCode.REASON_REQUIRED, "Give a reason for the suspension.", field="reason"
        )
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if organisation.status != Organisation.Status.APPROVED:
        raise DomainError(AccountsErrorCode.INVALID_STATE, "Only approved organisations can be suspended.")
    return _set_status(
        actor=actor,
        organisation=organisation,
        status=Organisation.Status.SUSPENDED,
        reason=reason,
        action="organisation.suspend",
    )


@transaction.atomic
def organisation_reinstate(*, actor: Actor, organisation: Organisation, reason: str = "") -> Organisation:
    _require_fmo(actor)
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if organisation.status != Organisation.Status.SUSPENDED:
        raise DomainError(AccountsErrorCode.INVALID_STATE, "Only suspended organisations can be reinstated.")
    return _set_status(
        actor=actor,
        organisation=organisation,
        status=Organisation.Status.APPROVED,
        reason=reason,
        action="organisation.reinstate",
    )


# --- members and invitations -----------------------------------------------------------------------


def _require_org_admin(actor: Actor) -> None:
    if actor.user is None or actor.organisation is None:
        raise DomainError(AccountsErrorCode.NOT_ADMIN, "Sign in first.")
    if actor.on_behalf:
        return
    if not user_is_organisation_admin(user=actor.user, organisation=actor.organisation):
        raise DomainError(
            AccountsErrorCode.NOT_ADMIN, "Only an administrator of your organisation can do this."
        )


@transaction.atomic
def invitation_create(*, actor: Actor, email: str, is_admin: bool = False) -> Invitation:
    _require_org_admin(actor)
    email = email.strip().lower()
    if Membership.objects.filter(organisation=actor.organisation, user__email__iexact=email).exists():
        raise DomainError(AccountsErrorCode.ALREADY_MEMBER, f"{email} is already a member.", field="email")
    invitation = Invitation.objects.create(
        organisation=actor.organisation,
        email=email,
        is_admin=is_admin,
        token=secrets.token_urlsafe(32),
        invited_by=actor.user,
        expires_at=timezone.now() + INVITATION_VALIDITY,
    )
    audit_record(
        actor=actor,
        action="invitation.create",
        target=invitation,
        after={"email": email, "is_admin": is_admin},
    )
    link = f"{settings.SITE_URL.rstrip('/')}/organisation/invitations/{invitation.token}/"
    transaction.on_commit(
        lambda: send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Join {actor.organisation} on flexmarket",
            message=f"{actor.user.display_name} invited you to join {actor.organisation}.\n\nAccept: {link}\n",
            from_email=None,
            recipient_list=[email],
        )
    )
    return invitation


@transaction.atomic
def invitation_accept(*, user: User, token: str) -> Membership:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .filter(token=token)
        .select_related("organisation")
        .first()
    )
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= timezone.now():
        raise DomainError(AccountsErrorCode.INVITATION_INVALID, "This invitation is not valid any more.")
    if invitation.email.lower() != user.email.lower():
        raise DomainError(
            AccountsErrorCode.INVITATION_INVALID, "This invitation was sent to another email address."
        )
    membership, _ = Membership.objects.get_or_create(
        user=user, organisation=invitation.organisation, defaults={"is_admin": invitation.is_admin}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=Actor(user=user, organisation=invitation.organisation),
        action="invitation.accept",
        target=invitation,
        after={"user": user.email},
    )
    return membership


# --- API keys --------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, actor: Actor, name: str, expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown once and never stored."""
    _require_org_admin(actor)
    if not name.strip():
        raise DomainError(AccountsErrorCode.INVALID_STATE, "Give the key a name.", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError(
            AccountsErrorCode.EXPIRY_IN_PAST, "The expiry must be in the future.", field="expires_at"
        )
    prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
    raw_key = f"fm_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        organisation=actor.organisation,
        name=name.strip(),
        prefix=prefix,
        hashed_key=api_key_hash(raw_key),
        created_by=actor.user,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="api_key.create",
        target=key,
        after={
            "name": key.name,
            "prefix": prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, raw_key


@transaction.atomic
def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    _require_org_admin(actor)
    if api_key.revoked_at is not None:
        raise DomainError(AccountsErrorCode.INVALID_STATE, "This key is already revoked.")
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = actor.user
    api_key.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor, action="api_key.revoke", target=api_key, before={"active": True}, after={"active": False}
    )
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record the last use, at most once a minute per key to keep hot paths cheap."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# --- notifications ---------------------------------------------------------------------------------


def notify_organisation(
    *,
    organisation: Organisation,
    category: Notification.Category,
    title: str,
    body: str = "",
    link: str = "",
    email: bool = False,
) -> Notification:
    """An in-app notification, plus email to the organisation's members when asked (after commit)."""
    notification = Notification.objects.create(
        organisation=organisation, category=category, title=title, body=body, link=link
    )
    if email:
        recipients = list(organisation.memberships.values_list("user__email", flat=True))
        if recipients:
            full_link = f"{settings.SITE_URL.rstrip('/')}{link}" if link.startswith("/") else link
            transaction.on_commit(
                lambda: send_mail(
                    subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{title}",
                    message=f"{body}\n\n{full_link}".strip(),
                    from_email=None,
                    recipient_list=recipients,
                    fail_silently=True,
                )
            )
    return notification


def notify_organisations(
    items: list[dict], *, category: Notification.Category, email: bool = False
) -> list[Notification]:
    """Many in-app notifications of one category in one insert ({"organisation_id", "title", "body", "link"}
    each); with `email`, one task mails them after commit, so a busy market's hot path does not wait for mail or
    member lookups."""
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                organisation_id=item["organisation_id"],
                category=category,
                title=item["title"][:200],
                body=item.get("body", ""),
                link=item.get("link", "")[:300],
            )
            for item in items
        ]
    )
    if email and notifications:
        from accounts.tasks import notifications_email_task

        ids = [n.pk for n in notifications]
        transaction.on_commit(lambda: notifications_email_task.delay(ids))
    return notifications


def notifications_email(*, notification_ids: list[int]) -> int:
    """Mail notifications to their organisations' members; returns how many mails were sent."""
    sent = 0
    for notification in Notification.objects.filter(pk__in=notification_ids).select_related("organisation"):
        recipients = list(notification.organisation.memberships.values_list("user__email", flat=True))
        if not recipients:
            continue
        link = notification.link
        full_link = f"{settings.SITE_URL.rstrip('/')}{link}" if link.startswith("/") else link
        sent += send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{notification.title}",
            message=f"{notification.body}\n\n{full_link}".strip(),
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )
    return sent


def notification_mark_read(*, actor: Actor, notification_ids: list[int]) -> int:
    """Marks the given notifications of the actor read (others' ids are ignored); returns how many changed."""
    return (
        notifications_get_unread(actor=actor).filter(pk__in=notification_ids).update(read_at=timezone.now())
    )


def notification_mark_all_read(*, actor: Actor) -> int:
    """Marks every unread notification of the actor read (never another member's or organisation's)."""
    return notifications_get_unread(actor=actor).update(read_at=timezone.now())
