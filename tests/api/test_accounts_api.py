import re

import pytest
from django.core import mail

from accounts import services
from accounts.models import Organisation


def api_key_for(actor):
    _, raw = services.api_key_create(actor=actor, name="test key")
    return raw


@pytest.mark.django_db
def test_signup_approval_login_api_key_and_me(client, fmo_user, fmo_org, api_client):
    """The whole onboarding path: sign-up → email verification → FMO approval in the admin → login → key → /me/."""
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new.trader@newflex.example",
            "password1": "a-Very-long-password-42",
            "password2": "a-Very-long-password-42",
            "first_name": "Nia",
            "last_name": "Trader",
            "legal_name": "NewFlex B.V.",
            "country": "NL",
            "code": "8712345678906",
            "roles": ["ESP"],
        },
    )
    assert response.status_code == 302
    organisation = Organisation.objects.get(legal_name="NewFlex B.V.")
    assert organisation.status == Organisation.Status.PENDING
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    client.post(link.split("testserver")[-1])

    client.logout()
    assert client.login(email="new.trader@newflex.example", password="a-Very-long-password-42")
    assert (
        "awaiting approval" in client.get("/").content.decode().lower()
        or "pending" in client.get("/").content.decode().lower()
    )
    client.logout()

    admin = client
    admin.force_login(fmo_user)
    response = admin.post(
        "/admin/accounts/organisation/",
        {
            "action": "approve_organisations",
            "_selected_action": [organisation.pk],
            "apply": "1",
            "reason": "KYC ok",
        },
    )
    assert response.status_code == 302
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.APPROVED
    admin.logout()

    assert client.login(email="new.trader@newflex.example", password="a-Very-long-password-42")
    response = client.post("/organisation/api-keys/", {"name": "EMS"})
    assert response.status_code == 200
    raw_key = re.search(r"fm_[0-9a-f]{8}_[A-Za-z0-9_-]+", response.content.decode()).group(0)

    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    me = api_client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["email"] == "new.trader@newflex.example"
    assert me.json()["organisation"]["legal_name"] == "NewFlex B.V."
    assert me.json()["organisation"]["roles"] == ["ESP"]


@pytest.mark.django_db
def test_suspended_organisations_key_is_refused(api_client, actor_esp, actor_fmo):
    raw = api_key_for(actor_esp)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api_client.get("/api/v1/me/").status_code == 200
    services.organisation_suspend(actor=actor_fmo, organisation=actor_esp.organisation, reason="fraud check")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The organisation is suspended."


@pytest.mark.django_db
def test_revoked_and_unknown_keys_are_refused(api_client, actor_esp):
    raw = api_key_for(actor_esp)
    key = actor_esp.organisation.api_keys.get()
    services.api_key_revoke(actor=actor_esp, api_key=key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api_client.get("/api/v1/me/").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION="Api-Key fm_nope_nope")
    assert api_client.get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/me/", "/api/v1/organisations/", "/api/v1/api-keys/"])
def test_anonymous_gets_401(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert set(response.json()["error"]) >= {"code", "message", "fields"}


@pytest.mark.django_db
def test_members_and_keys_of_another_organisation_are_invisible(client_for, esp_user, actor_esp2, esp2_org):
    api_key_for(actor_esp2)
    client = client_for(esp_user)
    members = client.get(f"/api/v1/organisations/{esp2_org.pk}/members/")
    assert members.status_code == 200 and members.json() == []
    keys = client.get("/api/v1/api-keys/").json()
    assert keys["count"] == 0
    other_key = esp2_org.api_keys.get()
    assert client.get(f"/api/v1/api-keys/{other_key.pk}/").status_code == 404
    assert client.delete(f"/api/v1/api-keys/{other_key.pk}/").status_code == 404
    other_key.refresh_from_db()
    assert other_key.is_active


@pytest.mark.django_db
def test_pending_organisations_are_visible_only_to_fmo(client_for, esp_user, fmo_user):
    pending = Organisation.objects.create(legal_name="Pending B.V.", country="NL", code="8799999999999")
    assert client_for(esp_user).get(f"/api/v1/organisations/{pending.pk}/").status_code == 404
    assert client_for(fmo_user).get(f"/api/v1/organisations/{pending.pk}/").status_code == 200


@pytest.mark.django_db
def test_create_and_revoke_api_key_by_api(client_for, esp_user):
    client = client_for(esp_user)
    created = client.post("/api/v1/api-keys/", {"name": "Trading bot"})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("fm_") and body["is_active"]
    assert "key" not in client.get(f"/api/v1/api-keys/{body['id']}/").json()
    revoked = client.delete(f"/api/v1/api-keys/{body['id']}/")
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False


@pytest.mark.django_db
def test_bad_api_key_input_gets_field_errors(client_for, esp_user):
    response = client_for(esp_user).post("/api/v1/api-keys/", {"name": "", "expires_at": "yesterday"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"name", "expires_at"}


@pytest.mark.django_db
def test_plain_member_cannot_create_keys(client_for, esp_org):
    from tests.factories import member_of

    response = client_for(member_of(esp_org, is_admin=False)).post("/api/v1/api-keys/", {"name": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_organisation_admin"


@pytest.mark.django_db
def test_fmo_acts_on_behalf_through_the_api(client_for, fmo_user, fmo_org, esp_org):
    client = client_for(fmo_user)
    me = client.get("/api/v1/me/", HTTP_X_ON_BEHALF_OF=str(esp_org.pk)).json()
    assert me["organisation"]["id"] == esp_org.pk and me["acting_on_behalf"] is True
    created = client.post("/api/v1/api-keys/", {"name": "for them"}, HTTP_X_ON_BEHALF_OF=str(esp_org.pk))
    assert created.status_code == 201
    from accounts.models import AuditEvent

    assert AuditEvent.objects.get(action="api_key.create").on_behalf_of_operator == fmo_org


@pytest.mark.django_db
def test_signup_service_approval_login_key_by_api_and_me(client, actor_fmo, api_client):
    """The same path with the FMO approving through the service and the key created through the API."""
    client.post(
        "/accounts/signup/",
        {
            "email": "ops@gridbatt.example",
            "password1": "a-Very-long-password-42",
            "password2": "a-Very-long-password-42",
            "first_name": "Ops",
            "last_name": "Team",
            "legal_name": "GridBatt GmbH",
            "country": "de",
            "code": "11XGRIDBATT---1Z",
            "roles": ["ESP"],
        },
    )
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    client.post(link.split("testserver")[-1])
    client.logout()
    organisation = Organisation.objects.get(code="11XGRIDBATT---1Z")
    assert organisation.country == "DE"

    assert client.login(email="ops@gridbatt.example", password="a-Very-long-password-42")
    assert client.post("/api/v1/api-keys/", {"name": "too early"}).status_code == 403
    services.organisation_approve(actor=actor_fmo, organisation=organisation, reason="KYC ok")

    created = client.post("/api/v1/api-keys/", {"name": "EMS"}, content_type="application/json")
    assert created.status_code == 201
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {created.json()['key']}")
    me = api_client.get("/api/v1/me/").json()
    assert me["organisation"]["legal_name"] == "GridBatt GmbH" and me["organisation"]["status"] == "approved"
