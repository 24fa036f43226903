"""Organisation admins invite colleagues; the invitee accepts on /organisation/invitations/<token>/."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts import services
from accounts.models import AuditEvent, Invitation, Membership
from tests.factories import UserFactory, member_of


def accept_url(invitation):
    return f"/organisation/invitations/{invitation.token}/"


@pytest.mark.django_db
def test_org_admin_invites_from_the_organisation_page_and_an_email_goes_out(
    client, esp_user, esp_org, django_capture_on_commit_callbacks
):
    client.force_login(esp_user)
    page = client.get("/organisation/").content.decode()
    assert 'data-testid="invitation-form"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/organisation/invitations/", {"email": "Kim@Flexy.example", "is_admin": "on"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(organisation=esp_org)
    assert (invitation.email, invitation.is_admin) == ("kim@flexy.example", True)
    assert AuditEvent.objects.filter(action="invitation.create", object_id=str(invitation.pk)).exists()
    assert mail.outbox[-1].to == ["kim@flexy.example"]
    assert re.search(rf"/organisation/invitations/{invitation.token}/", mail.outbox[-1].body)
    assert "kim@flexy.example" in client.get("/organisation/").content.decode()


@pytest.mark.django_db
def test_invitation_form_errors_are_shown_and_nothing_is_written(client, esp_user):
    client.force_login(esp_user)
    bad = client.post("/organisation/invitations/", {"email": "not-an-email"})
    assert bad.status_code == 400 and "Enter a valid email address" in bad.content.decode()
    member = client.post("/organisation/invitations/", {"email": esp_user.email})
    assert member.status_code == 400 and "already a member" in member.content.decode()
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_plain_member_cannot_invite(client, esp_org):
    client.force_login(member_of(esp_org, is_admin=False))
    assert 'data-testid="invitation-form"' not in client.get("/organisation/").content.decode()
    response = client.post("/organisation/invitations/", {"email": "x@flexy.example"})
    assert response.status_code == 400
    assert "Only an administrator" in response.content.decode()
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_anonymous_invitee_is_asked_to_sign_in_or_sign_up_with_the_invited_email(client, actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="new@flexy.example")
    response = client.get(accept_url(invitation))
    assert response.status_code == 200
    body = response.content.decode()
    assert "new@flexy.example" in body and 'data-testid="accept-invitation"' not in body
    assert response.context["login_url"].startswith("/accounts/login/?next=%2Forganisation%2Finvitations%2F")
    assert "email=new%40flexy.example" in response.context["signup_url"]
    assert client.post(accept_url(invitation)).status_code == 200
    assert not Membership.objects.filter(user__email="new@flexy.example").exists()


@pytest.mark.django_db
def test_invitee_signed_in_with_the_right_email_accepts(client, actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="new@flexy.example", is_admin=True)
    colleague = UserFactory(email="new@flexy.example")
    client.force_login(colleague)
    assert 'data-testid="accept-invitation"' in client.get(accept_url(invitation)).content.decode()
    response = client.post(accept_url(invitation))
    assert response.status_code == 302 and response["Location"] == "/"
    membership = colleague.memberships.get()
    assert membership.organisation == actor_esp.organisation and membership.is_admin
    assert AuditEvent.objects.filter(action="invitation.accept", actor=colleague).exists()
    assert client.get(accept_url(invitation)).status_code == 404


@pytest.mark.django_db
def test_invitation_for_another_email_is_refused(client, actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="new@flexy.example")
    intruder = UserFactory(email="intruder@elsewhere.example")
    client.force_login(intruder)
    page = client.get(accept_url(invitation)).content.decode()
    assert 'data-testid="invitation-wrong-user"' in page
    refused = client.post(accept_url(invitation), follow=True).content.decode()
    assert "sent to another email address" in refused
    assert not intruder.memberships.exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.django_db
def test_expired_invitation_is_refused(client, actor_esp):
    invitation = services.invitation_create(actor=actor_esp, email="late@flexy.example")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    late = UserFactory(email="late@flexy.example")
    client.force_login(late)
    assert 'data-testid="invitation-expired"' in client.get(accept_url(invitation)).content.decode()
    refused = client.post(accept_url(invitation), follow=True).content.decode()
    assert "not valid any more" in refused
    assert not late.memberships.exists()


@pytest.mark.django_db
def test_unknown_token_is_404(client, esp_user):
    client.force_login(esp_user)
    assert client.get("/organisation/invitations/not-a-token/").status_code == 404
