from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services
from accounts.context import Actor
from accounts.models import ApiKey, AuditEvent, Membership, Organisation
from accounts.selectors import actor_build, api_key_find_active
from flexmarket.errors import DomainError
from tests.factories import OrganisationFactory, UserFactory, member_of


def apply(user, **overrides):
    data = {
        "legal_name": "New Flex B.V.",
        "country": "nl",
        "code": "8712345678906",
        "requested_roles": ["ESP"],
    }
    data.update(overrides)
    return services.organisation_apply(user=user, **data)


@pytest.mark.django_db
def test_application_creates_pending_organisation_with_admin_member():
    user = UserFactory()
    organisation = apply(user)
    assert organisation.status == Organisation.Status.PENDING
    assert organisation.country == "NL"
    assert Membership.objects.get(user=user, organisation=organisation).is_admin
    assert AuditEvent.objects.filter(action="organisation.apply", object_id=str(organisation.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "12345"}, "code"),
        ({"requested_roles": []}, "roles"),
        ({"requested_roles": ["FMO"]}, "roles"),
        ({"country": "Netherlands"}, "country"),
        ({"legal_name": "  "}, "legal_name"),
    ],
)
def test_bad_application_is_refused_and_nothing_is_written(overrides, field):
    user = UserFactory()
    with pytest.raises(DomainError) as error:
        apply(user, **overrides)
    assert error.value.field == field
    assert not Organisation.objects.exists()
    assert not Membership.objects.exists()


@pytest.mark.django_db
def test_the_fmo_is_notified_of_a_new_application(fmo_org, esp_org):
    organisation = apply(UserFactory())
    notification = fmo_org.notifications.get()
    assert notification.title == "New application: New Flex B.V."
    assert notification.link == f"/admin/accounts/organisation/{organisation.pk}/change/"
    assert not esp_org.notifications.exists()


@pytest.mark.django_db
def test_duplicate_organisation_name_is_refused(esp_org):
    with pytest.raises(DomainError) as error:
        apply(UserFactory(), legal_name=esp_org.legal_name.upper())
    assert error.value.field == "legal_name"


@pytest.mark.django_db
def test_fmo_approval_grants_requested_roles_and_is_audited(actor_fmo):
    organisation = apply(UserFactory())
    services.organisation_approve(actor=actor_fmo, organisation=organisation, reason="KYC done")
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.APPROVED
    assert organisation.has_role("ESP")
    event = AuditEvent.objects.get(action="organisation.approve")
    assert event.actor == actor_fmo.user
    assert event.before["status"] == "pending" and event.after["status"] == "approved"
    assert event.reason == "KYC done"
    assert organisation.notifications.filter(title__icontains="approved").exists()


@pytest.mark.django_db
def test_only_fmo_may_approve(actor_dso):
    organisation = apply(UserFactory())
    with pytest.raises(DomainError):
        services.organisation_approve(actor=actor_dso, organisation=organisation)
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.PENDING


@pytest.mark.django_db
def test_rejection_needs_a_reason_and_is_audited(actor_fmo):
    organisation = apply(UserFactory())
    with pytest.raises(DomainError) as error:
        services.organisation_reject(actor=actor_fmo, organisation=organisation, reason=" ")
    assert error.value.field == "reason"
    services.organisation_reject(actor=actor_fmo, organisation=organisation, reason="Unknown party code")
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.REJECTED
    assert AuditEvent.objects.filter(action="organisation.reject", reason="Unknown party code").exists()


@pytest.mark.django_db
def test_suspension_and_reinstatement_are_audited(actor_fmo, esp_org):
    services.organisation_suspend(actor=actor_fmo, organisation=esp_org, reason="Unpaid invoices")
    esp_org.refresh_from_db()
    assert esp_org.status == Organisation.Status.SUSPENDED
    services.organisation_reinstate(actor=actor_fmo, organisation=esp_org)
    esp_org.refresh_from_db()
    assert esp_org.status == Organisation.Status.APPROVED
    assert list(AuditEvent.objects.filter(object_id=str(esp_org.pk)).values_list("action", flat=True)) == [
        "organisation.reinstate",
        "organisation.suspend",
    ]


@pytest.mark.django_db
def test_api_key_is_stored_hashed_and_found_by_its_secret(actor_esp):
    key, raw = services.api_key_create(actor=actor_esp, name="EMS")
    assert raw not in (key.hashed_key, key.prefix)
    assert raw.startswith(f"fm_{key.prefix}_")
    assert api_key_find_active(raw_key=raw) == key
    assert AuditEvent.objects.filter(action="api_key.create", object_id=str(key.pk)).exists()


@pytest.mark.django_db
def test_revoked_and_expired_keys_are_not_active(actor_esp):
    revoked, raw_revoked = services.api_key_create(actor=actor_esp, name="old")
    services.api_key_revoke(actor=actor_esp, api_key=revoked)
    assert api_key_find_active(raw_key=raw_revoked) is None
    assert AuditEvent.objects.filter(action="api_key.revoke").exists()
    expiring, raw_expiring = services.api_key_create(
        actor=actor_esp, name="short", expires_at=timezone.now() + timedelta(seconds=1)
    )
    ApiKey.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_key_find_active(raw_key=raw_expiring) is None


@pytest.mark.django_db
def test_api_key_needs_organisation_admin_and_a_future_expiry(esp_org):
    plain_member = member_of(esp_org, is_admin=False)
    with pytest.raises(DomainError):
        services.api_key_create(actor=Actor(user=plain_member, organisation=esp_org), name="x")
    admin = member_of(esp_org)
    with pytest.raises(DomainError) as error:
        services.api_key_create(
            actor=Actor(user=admin, organisation=esp_org),
            name="x",
            expires_at=timezone.now() - timedelta(days=1),
        )
    assert error.value.field == "expires_at"
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_invitation_accept_joins_the_organisation(actor_esp, mailoutbox):
    invitation = services.invitation_create(actor=actor_esp, email="Colleague@Flexy.example")
    colleague = UserFactory(email="colleague@flexy.example")
    membership = services.invitation_accept(user=colleague, token=invitation.token)
    assert membership.organisation == actor_esp.organisation
    assert not membership.is_admin


@pytest.mark.django_db
def test_invitation_for_another_email_or_expired_is_refused(actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="a@flexy.example")
    with pytest.raises(DomainError):
        services.invitation_accept(user=UserFactory(email="b@flexy.example"), token=invitation.token)
    invitation.expires_at = timezone.now() - timedelta(minutes=1)
    invitation.save()
    with pytest.raises(DomainError):
        services.invitation_accept(user=UserFactory(email="a@flexy.example"), token=invitation.token)
    assert not Membership.objects.filter(user__email="a@flexy.example").exists()


@pytest.mark.django_db
def test_fmo_acting_on_behalf_is_audited_with_the_operator(fmo_user, fmo_org, esp_org):
    actor = actor_build(user=fmo_user, organisation=fmo_org, on_behalf_of_id=esp_org.pk)
    assert actor.organisation == esp_org and actor.operator == fmo_org
    key, _ = services.api_key_create(actor=actor, name="set up for the ESP")
    assert key.organisation == esp_org
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.organisation == esp_org
    assert event.on_behalf_of_operator == fmo_org
    assert event.actor == fmo_user


@pytest.mark.django_db
def test_non_fmo_cannot_act_on_behalf(dso_user, dso_org, esp_org):
    actor = actor_build(user=dso_user, organisation=dso_org, on_behalf_of_id=esp_org.pk)
    assert actor.organisation == dso_org and actor.operator is None


@pytest.mark.django_db
def test_audit_events_are_append_only(actor_fmo):
    event = services.audit_record(actor=actor_fmo, action="test.event")
    event.action = "changed"
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
    with pytest.raises(ValidationError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(ValidationError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


@pytest.mark.django_db
def test_organisation_factory_roles_are_granted():
    organisation = OrganisationFactory(roles=["DSO", "TSO"])
    assert organisation.role_codes == frozenset({"DSO", "TSO"})
