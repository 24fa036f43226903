"""Sign-up through django-allauth: the person and their organisation's application, or an invitee joining."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from accounts import services
from accounts.models import AuditEvent, Membership, Organisation, User

PASSWORD = "a-Very-long-password-42"


def signup_data(**overrides):
    data = {
        "email": "nia@newflex.example",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "first_name": "Nia",
        "last_name": "Trader",
        "legal_name": "NewFlex B.V.",
        "country": "NL",
        "code": "8712345678906",
        "roles": ["ESP", "BRP"],
    }
    data.update(overrides)
    return data


def confirm_email(client):
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    return client.post(link.split("testserver")[-1])


@pytest.mark.django_db
def test_signup_creates_user_and_pending_application_and_asks_to_verify_email(client):
    response = client.post("/accounts/signup/", signup_data())
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="nia@newflex.example")
    assert (user.first_name, user.last_name) == ("Nia", "Trader")
    organisation = Organisation.objects.get(legal_name="NewFlex B.V.")
    assert organisation.status == Organisation.Status.PENDING
    assert organisation.requested_roles == ["BRP", "ESP"]
    assert organisation.role_codes == frozenset()
    assert Membership.objects.get(user=user, organisation=organisation).is_admin
    assert AuditEvent.objects.filter(action="organisation.apply", actor=user).exists()
    assert "confirm-email" in mail.outbox[-1].body
    assert not EmailAddress.objects.get(email=user.email).verified


@pytest.mark.django_db
def test_unverified_user_cannot_sign_in_until_the_email_is_confirmed(client):
    client.post("/accounts/signup/", signup_data())
    client.logout()
    response = client.post("/accounts/login/", {"login": "nia@newflex.example", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    confirm_email(client)
    assert EmailAddress.objects.get(email="nia@newflex.example").verified
    home = client.get("/")
    assert home.status_code == 200
    assert "pending approval" in home.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "10X-NOT-AN-EIC"}, "code"),
        ({"code": "871234567890"}, "code"),
        ({"legal_name": "flexy aggregation b.v."}, "legal_name"),
        ({"code": "8700000000005"}, "code"),
        ({"roles": []}, "roles"),
        ({"roles": ["FMO"]}, "roles"),
        ({"country": "N1"}, "country"),
        ({"country": "NLD"}, "country"),
        ({"legal_name": ""}, "legal_name"),
    ],
    ids=[
        "bad-eic",
        "short-ean",
        "duplicate-name",
        "duplicate-code",
        "no-roles",
        "fmo-role",
        "bad-country",
        "three-letter-country",
        "no-name",
    ],
)
def test_bad_signup_input_gets_a_field_error_and_writes_nothing(client, esp_org, overrides, field):
    organisations, users = Organisation.objects.count(), User.objects.count()
    response = client.post("/accounts/signup/", signup_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert 'class="errorlist' in response.content.decode()
    assert (Organisation.objects.count(), User.objects.count()) == (organisations, users)
    assert not EmailAddress.objects.filter(email="nia@newflex.example").exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_bad_account_fields_are_reported_with_the_organisation_fields(client):
    response = client.post(
        "/accounts/signup/", signup_data(email="not-an-email", password2="different", roles=[])
    )
    assert {"email", "roles"} <= set(response.context["form"].errors)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_invitee_signs_up_without_organisation_fields_then_accepts(client, actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="new.colleague@flexy.example")
    response = client.post(
        "/accounts/signup/",
        signup_data(email="new.colleague@flexy.example", legal_name="", code="", roles=[]),
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.colleague@flexy.example")
    assert not user.memberships.exists()
    assert Organisation.objects.count() == 1
    confirm_email(client)
    home = client.get("/").content.decode()
    assert 'data-testid="open-invitation"' in home and actor_esp.organisation.legal_name in home
    client.post(f"/organisation/invitations/{invitation.token}/")
    assert user.memberships.get().organisation == actor_esp.organisation


@pytest.mark.django_db
def test_without_an_invitation_the_organisation_fields_are_required(client):
    response = client.post("/accounts/signup/", signup_data(legal_name="", code="", roles=[]))
    assert response.status_code == 200
    assert {"legal_name", "code", "roles"} <= set(response.context["form"].errors)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_password_reset_sends_a_link_that_sets_a_new_password(client, esp_user):
    response = client.post("/accounts/password/reset/", {"email": esp_user.email})
    assert response.status_code == 302
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+/", mail.outbox[-1].body).group(0)
    form_page = client.get(link.split("testserver")[-1], follow=True)
    assert form_page.status_code == 200
    client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.split("testserver")[-1],
        {"password1": "Another-long-pass-99", "password2": "Another-long-pass-99"},
    )
    esp_user.refresh_from_db()
    assert esp_user.check_password("Another-long-pass-99")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password/reset/",
        "/accounts/confirm-email/",
    ],
)
def test_allauth_pages_use_the_portal_layout(client, url):
    body = client.get(url).content.decode()
    assert "bulma/css/style.min.css" in body and "⚡ flexmarket" in body
    assert "allauth-page" in body
