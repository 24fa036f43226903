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
