"""The API base every app relies on: keys, error format, pagination, filters, ordering, throttling, on-behalf."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts import services
from accounts.models import ApiKey, AuditEvent, Organisation
from tests.factories import OrganisationFactory, member_of


def key_client(api_client, raw_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return api_client


@pytest.mark.django_db
def test_expired_key_is_refused(api_client, actor_esp):
    key, raw = services.api_key_create(
        actor=actor_esp, name="short-lived", expires_at=timezone.now() + timedelta(hours=1)
    )
    client = key_client(api_client, raw)
    assert client.get("/api/v1/me/").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid, revoked or expired API key."


@pytest.mark.django_db
def test_key_use_is_recorded_and_the_key_acts_for_its_organisation(api_client, actor_esp):
    key, raw = services.api_key_create(actor=actor_esp, name="EMS")
    me = key_client(api_client, raw).get("/api/v1/me/").json()
    assert me["api_key"] == key.prefix
    assert me["organisation"]["id"] == actor_esp.organisation.pk
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Api-Key", "Api-Key    ", "Bearer abc", "Api-Key fm_00000000_wrong"])
def test_malformed_or_unknown_credentials_answer_401(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/organisations/")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.django_db
def test_key_of_a_deactivated_creator_is_refused(api_client, actor_esp):
    _, raw = services.api_key_create(actor=actor_esp, name="EMS")
    actor_esp.user.is_active = False
    actor_esp.user.save()
    assert key_client(api_client, raw).get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_domain_error_answers_400_with_the_field(client_for, esp_user):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = client_for(esp_user).post("/api/v1/api-keys/", {"name": "late", "expires_at": past})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "expiry_in_past",
            "message": "The expiry must be in the future.",
            "fields": {"expires_at": ["The expiry must be in the future."]},
        }
    }
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_foreign_or_missing_object_answers_404_in_the_error_format(client_for, esp_user):
    response = client_for(esp_user).get("/api/v1/api-keys/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_pending_organisation_may_ask_who_it_is_but_not_use_the_market(client_for):
    pending = Organisation.objects.create(legal_name="Pending B.V.", country="NL", code="8744444444444")
    client = client_for(member_of(pending))
    assert client.get("/api/v1/me/").json()["organisation"]["status"] == "pending"
    response = client.get("/api/v1/organisations/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_list_is_paginated(client_for, esp_user):
    for _ in range(11):
        OrganisationFactory(roles=["ESP"])
    client = client_for(esp_user)
    first = client.get("/api/v1/organisations/?page_size=5").json()
    assert first["count"] == 12 and len(first["results"]) == 5
    assert first["previous"] is None and "page=2" in first["next"]
    last = client.get("/api/v1/organisations/?page_size=5&page=3").json()
    assert len(last["results"]) == 2 and last["next"] is None
    assert client.get("/api/v1/organisations/?page=99").status_code == 404


@pytest.mark.django_db
def test_list_filters_and_ordering(client_for, fmo_user, esp_org):
    OrganisationFactory(legal_name="Alpha Belgium NV", country="BE", roles=["ESP"])
    Organisation.objects.create(legal_name="Waiting B.V.", country="NL", code="8755555555555")
    client = client_for(fmo_user)
    pending = client.get("/api/v1/organisations/?status=pending").json()
    assert [org["legal_name"] for org in pending["results"]] == ["Waiting B.V."]
    belgian = client.get("/api/v1/organisations/?country=BE").json()
    assert [org["legal_name"] for org in belgian["results"]] == ["Alpha Belgium NV"]
    names = [
        org["legal_name"]
        for org in client.get("/api/v1/organisations/?ordering=-legal_name").json()["results"]
    ]
    assert names == sorted(names, reverse=True)
    bad = client.get("/api/v1/organisations/?status=nonsense")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]


@pytest.mark.django_db
def test_organisation_list_query_count_does_not_grow_with_rows(
    client_for, esp_user, django_assert_num_queries
):
    """Session, user, the FMO-MFA check, the actor's organisation and roles, count, page, prefetched roles."""
    client = client_for(esp_user)
    client.get("/api/v1/organisations/")  # warm up content types and the like
    with django_assert_num_queries(8):
        assert client.get("/api/v1/organisations/").json()["count"] == 1
    for _ in range(20):
        OrganisationFactory(roles=["ESP", "BRP"])
    with django_assert_num_queries(8):
        assert client.get("/api/v1/organisations/").json()["count"] == 21


@pytest.mark.django_db
def test_members_of_your_own_organisation_are_listed(client_for, esp_user, esp_org):
    colleague = member_of(esp_org, is_admin=False, email="colleague@esp.example")
    members = client_for(esp_user).get(f"/api/v1/organisations/{esp_org.pk}/members/").json()
    assert {(m["email"], m["is_admin"]) for m in members} == {
        (esp_user.email, True),
        (colleague.email, False),
    }


@pytest.mark.django_db
def test_fmo_sees_any_organisations_members(client_for, fmo_user, esp_org, esp_user):
    members = client_for(fmo_user).get(f"/api/v1/organisations/{esp_org.pk}/members/").json()
    assert [m["email"] for m in members] == [esp_user.email]


@pytest.mark.django_db
def test_on_behalf_header_from_a_non_fmo_is_ignored(client_for, esp_user, esp_org, dso_org):
    client = client_for(esp_user)
    me = client.get("/api/v1/me/", HTTP_X_ON_BEHALF_OF=str(dso_org.pk)).json()
    assert me["organisation"]["id"] == esp_org.pk and me["acting_on_behalf"] is False
    client.post("/api/v1/api-keys/", {"name": "mine"}, HTTP_X_ON_BEHALF_OF=str(dso_org.pk))
    assert dso_org.api_keys.count() == 0
    assert AuditEvent.objects.get(action="api_key.create").on_behalf_of_operator is None


@pytest.mark.django_db
def test_fmo_revokes_a_key_on_behalf_and_it_is_audited(client_for, fmo_user, fmo_org, actor_esp):
    key, _ = services.api_key_create(actor=actor_esp, name="leaked")
    client = client_for(fmo_user)
    response = client.delete(
        f"/api/v1/api-keys/{key.pk}/", HTTP_X_ON_BEHALF_OF=str(actor_esp.organisation.pk)
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    event = AuditEvent.objects.get(action="api_key.revoke")
    assert (event.actor, event.organisation, event.on_behalf_of_operator) == (
        fmo_user,
        actor_esp.organisation,
        fmo_org,
    )


@pytest.fixture
def tiny_throttle_rates(settings, monkeypatch):
    """DRF binds the rates when it imports the throttles, so both the settings and the class change."""
    rates = {"anon": "2/minute", "user": "3/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", api_settings.DEFAULT_THROTTLE_RATES)
    cache.clear()
    yield rates
    cache.clear()


@pytest.mark.django_db
def test_anonymous_requests_are_throttled(api_client, tiny_throttle_rates):
    """DRF checks permissions before throttles, so the open schema endpoint shows the anonymous rate."""
    statuses = [api_client.get("/api/schema/?format=json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    body = api_client.get("/api/schema/?format=json")
    assert body.json()["error"]["code"] == "throttled"
    assert int(body["Retry-After"]) > 0


@pytest.mark.django_db
def test_api_key_requests_are_throttled_per_user(api_client, actor_esp, tiny_throttle_rates):
    _, raw = services.api_key_create(actor=actor_esp, name="EMS")
    client = key_client(api_client, raw)
    statuses = [client.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
