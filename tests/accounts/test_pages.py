import pytest
from allauth.mfa.models import Authenticator

from accounts.models import AuditEvent, Organisation
from tests.factories import member_of


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/organisation/", "/organisation/notifications/"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_organisation_page_shows_only_own_members_and_keys(client, esp_user, esp2_user):
    from accounts import services
    from accounts.context import Actor

    services.api_key_create(
        actor=Actor(user=esp2_user, organisation=esp2_user.memberships.get().organisation), name="secret-bot"
    )
    client.force_login(esp_user)
    body = client.get("/organisation/").content.decode()
    assert esp_user.email in body
    assert esp2_user.email not in body
    assert "secret-bot" not in body


@pytest.mark.django_db
def test_fmo_staff_without_totp_must_set_it_up(client, fmo_org):
    operator = member_of(fmo_org, is_staff=True)
    client.force_login(operator)
    for url in ["/", "/admin/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/2fa/totp/activate")
    Authenticator.objects.create(
        user=operator, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_other_roles_are_not_forced_into_mfa(client, dso_user):
    client.force_login(dso_user)
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_admin_reject_action_asks_for_a_reason_then_audits(client, fmo_user):
    pending = Organisation.objects.create(legal_name="Dubious B.V.", country="NL", code="8711111111111")
    client.force_login(fmo_user)
    form = client.post(
        "/admin/accounts/organisation/", {"action": "reject_organisations", "_selected_action": [pending.pk]}
    )
    assert form.status_code == 200 and b"reason" in form.content
    empty = client.post(
        "/admin/accounts/organisation/",
        {"action": "reject_organisations", "_selected_action": [pending.pk], "apply": "1", "reason": ""},
        follow=True,
    )
    assert "Give a reason" in empty.content.decode()
    pending.refresh_from_db()
    assert pending.status == Organisation.Status.PENDING
    client.post(
        "/admin/accounts/organisation/",
        {
            "action": "reject_organisations",
            "_selected_action": [pending.pk],
            "apply": "1",
            "reason": "No licence",
        },
    )
    pending.refresh_from_db()
    assert pending.status == Organisation.Status.REJECTED
    assert AuditEvent.objects.filter(action="organisation.reject", reason="No licence").exists()


@pytest.mark.django_db
def test_audit_events_are_read_only_in_the_admin(client, fmo_user, actor_fmo):
    from accounts.services import audit_record

    event = audit_record(actor=actor_fmo, action="test.event")
    client.force_login(fmo_user)
    assert client.get("/admin/accounts/auditevent/").status_code == 200
    page = client.get(f"/admin/accounts/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_api_key_created_in_gui_is_shown_once(client, esp_user):
    client.force_login(esp_user)
    created = client.post("/organisation/api-keys/", {"name": "EMS"}).content.decode()
    assert "shown only once" in created and "fm_" in created
    later = client.get("/organisation/").content.decode()
    assert "EMS" in later and "new-api-key-value" not in later


@pytest.mark.django_db
def test_api_key_form_errors_are_shown(client, esp_user):
    client.force_login(esp_user)
    response = client.post("/organisation/api-keys/", {"name": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


@pytest.mark.django_db
def test_fmo_switches_to_act_on_behalf_and_back(client, fmo_user, esp_org):
    client.force_login(fmo_user)
    client.post("/organisation/act-as/", {"organisation": esp_org.pk})
    assert "Acting for" in client.get("/").content.decode()
    client.post("/organisation/act-as/", {"organisation": ""})
    assert "Acting for" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_non_fmo_cannot_switch_organisation(client, esp_user, dso_org):
    client.force_login(esp_user)
    assert client.post("/organisation/act-as/", {"organisation": dso_org.pk}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "reason", "text"),
    [
        ("pending", "", "pending approval"),
        ("suspended", "Unpaid invoices", "suspended"),
        ("rejected", "Unknown party code", "rejected"),
    ],
)
def test_landing_page_explains_an_organisation_that_may_not_trade(
    client, esp_org, esp_user, status, reason, text
):
    Organisation.objects.filter(pk=esp_org.pk).update(status=status, status_reason=reason)
    client.force_login(esp_user)
    body = client.get("/").content.decode()
    assert 'data-testid="awaiting-approval"' in body and text in body
    assert reason in body
    assert 'data-testid="dashboard-title"' not in body


@pytest.mark.django_db
def test_user_without_organisation_is_told_how_to_join(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert 'data-testid="no-organisation"' in client.get("/").content.decode()


@pytest.mark.django_db
def test_admin_login_goes_through_allauth_so_totp_is_asked(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.django_db
def test_non_staff_is_refused_by_the_admin(client, esp_user):
    client.force_login(esp_user)
    assert client.get("/admin/login/").status_code == 403
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_fmo_staff_without_totp_reach_only_the_mfa_pages(client, fmo_org):
    operator = member_of(fmo_org, is_staff=True)
    client.force_login(operator)
    assert client.get("/accounts/2fa/").status_code == 200
    setup = client.get("/accounts/2fa/totp/activate/", follow=True)
    assert setup.status_code == 200 and "allauth-page" in setup.content.decode()
    assert setup.redirect_chain[-1][0].startswith("/accounts/reauthenticate/")
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "mfa_required"


def admin_action(client, action, organisation, **data):
    return client.post(
        "/admin/accounts/organisation/",
        {"action": action, "_selected_action": [organisation.pk], "apply": "1", **data},
    )


@pytest.mark.django_db
def test_admin_approval_grants_the_chosen_roles_and_audits(client, fmo_user):
    pending = Organisation.objects.create(
        legal_name="Applicant B.V.", country="NL", code="8722222222222", requested_roles=["ESP"]
    )
    client.force_login(fmo_user)
    confirm = client.post(
        "/admin/accounts/organisation/", {"action": "approve_organisations", "_selected_action": [pending.pk]}
    )
    assert confirm.status_code == 200 and b'name="roles"' in confirm.content
    assert (
        admin_action(client, "approve_organisations", pending, roles=["ESP", "BRP"], reason="KYC").status_code
        == 302
    )
    pending.refresh_from_db()
    assert pending.status == Organisation.Status.APPROVED
    assert pending.role_codes == frozenset({"ESP", "BRP"})
    event = AuditEvent.objects.get(action="organisation.approve")
    assert event.actor == fmo_user and event.reason == "KYC" and event.after["roles"] == ["BRP", "ESP"]


@pytest.mark.django_db
def test_admin_suspend_and_reinstate_are_audited(client, fmo_user, esp_org):
    client.force_login(fmo_user)
    admin_action(client, "suspend_organisations", esp_org, reason="Unpaid invoices")
    esp_org.refresh_from_db()
    assert esp_org.status == Organisation.Status.SUSPENDED
    admin_action(client, "reinstate_organisations", esp_org, reason="Paid")
    esp_org.refresh_from_db()
    assert esp_org.status == Organisation.Status.APPROVED
    actions = AuditEvent.objects.filter(object_id=str(esp_org.pk), organisation=esp_org)
    assert set(actions.values_list("action", "reason")) == {
        ("organisation.suspend", "Unpaid invoices"),
        ("organisation.reinstate", "Paid"),
    }


@pytest.mark.django_db
def test_admin_action_in_the_wrong_state_reports_an_error_and_changes_nothing(client, fmo_user, esp_org):
    client.force_login(fmo_user)
    page = client.post(
        "/admin/accounts/organisation/",
        {"action": "reinstate_organisations", "_selected_action": [esp_org.pk], "apply": "1", "reason": ""},
        follow=True,
    ).content.decode()
    assert "Only suspended organisations can be reinstated" in page
    assert not AuditEvent.objects.filter(action="organisation.reinstate").exists()


@pytest.mark.django_db
def test_gui_act_on_behalf_is_audited_with_the_operator(client, fmo_user, fmo_org, esp_org):
    from accounts.models import ApiKey

    client.force_login(fmo_user)
    client.post("/organisation/act-as/", {"organisation": esp_org.pk})
    page = client.get("/organisation/").content.decode()
    assert 'data-testid="stop-acting"' in page and esp_org.legal_name in page
    created = client.post("/organisation/api-keys/", {"name": "Set up for Flexy"})
    assert created.status_code == 200
    key = ApiKey.objects.get(name="Set up for Flexy")
    assert key.organisation == esp_org
    event = AuditEvent.objects.get(action="api_key.create")
    assert (event.actor, event.organisation, event.on_behalf_of_operator) == (fmo_user, esp_org, fmo_org)
    client.post(f"/organisation/api-keys/{key.pk}/revoke/")
    revoke = AuditEvent.objects.get(action="api_key.revoke")
    assert revoke.on_behalf_of_operator == fmo_org


@pytest.mark.django_db
def test_fmo_cannot_act_for_a_pending_organisation(client, fmo_user):
    pending = Organisation.objects.create(legal_name="Pending B.V.", country="NL", code="8733333333333")
    client.force_login(fmo_user)
    response = client.post("/organisation/act-as/", {"organisation": pending.pk}, follow=True)
    assert "Choose one of the approved organisations" in response.content.decode()
    assert "Acting for" not in response.content.decode()


@pytest.mark.django_db
def test_another_organisations_key_cannot_be_revoked_from_the_page(client, esp_user, actor_esp2):
    from accounts import services

    key, _ = services.api_key_create(actor=actor_esp2, name="theirs")
    client.force_login(esp_user)
    assert client.post(f"/organisation/api-keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.is_active


@pytest.mark.django_db
def test_api_key_page_lists_state_and_revokes(client, esp_user, actor_esp):
    from datetime import timedelta

    from django.utils import timezone

    from accounts import services
    from accounts.models import ApiKey

    active, _ = services.api_key_create(actor=actor_esp, name="live-key")
    revoked, _ = services.api_key_create(actor=actor_esp, name="old-key")
    services.api_key_revoke(actor=actor_esp, api_key=revoked)
    expired, _ = services.api_key_create(actor=actor_esp, name="stale-key")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client.force_login(esp_user)
    body = client.get("/organisation/").content.decode()
    for text in ["live-key", active.prefix, "old-key", "revoked", "stale-key", "expired"]:
        assert text in body
    assert f'data-testid="revoke-{active.pk}"' in body and f'data-testid="revoke-{revoked.pk}"' not in body
    client.post(f"/organisation/api-keys/{active.pk}/revoke/")
    active.refresh_from_db()
    assert not active.is_active


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/organisation/api-keys/", "/organisation/invitations/", "/organisation/act-as/"]
)
def test_anonymous_posts_are_sent_to_login(client, url):
    response = client.post(url, {"name": "x", "email": "x@example.com"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "suspended", "rejected"])
def test_only_approved_organisations_reach_the_market_pages(client, esp_org, esp_user, status):
    from django.urls import reverse

    url = reverse("grid:asset-list")
    client.force_login(esp_user)
    assert client.get(url).status_code == 200
    Organisation.objects.filter(pk=esp_org.pk).update(status=status)
    assert client.get(url).status_code == 403
