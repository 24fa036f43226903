"""Sign up → verify email → awaiting approval → FMO approves in the admin → log in → landing page."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from django.core import mail

from accounts.models import Organisation
from tests.browser.conftest import screenshot
from tests.factories import member_of

PASSWORD = "a-Very-long-password-42"
FMO_TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # the fmo_user fixture's authenticator


def totp_code(secret: str) -> str:
    """RFC 6238 code (SHA-1, 30 s, 6 digits), as an authenticator app shows it; never in a window's last 5 s
    (a slow page could submit it after the window turned)."""
    if time.time() % 30 > 25:
        time.sleep(30 - time.time() % 30 + 0.1)
    counter = struct.pack(">Q", int(time.time()) // 30)
    digest = hmac.new(base64.b32decode(secret), counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@pytest.mark.django_db(transaction=True)
def test_signup_approval_and_first_login(page, browser, live_server, fmo_user):
    page.goto("/accounts/signup/")
    screenshot(page, "signup")
    page.fill("input[name=email]", "lea@gridflex.example")
    page.fill("input[name=first_name]", "Lea")
    page.fill("input[name=last_name]", "Jansen")
    page.fill("input[name=legal_name]", "GridFlex B.V.")
    page.fill("input[name=country]", "NL")
    page.fill("input[name=code]", "8712345678906")
    page.get_by_label("Energy service provider / aggregator").check()
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/**")
    screenshot(page, "verify-email-sent")

    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link.replace("http://localhost:8000", live_server.url))
    page.get_by_role("button", name="Confirm").click()
    page.goto("/")
    assert "pending approval" in page.get_by_test_id("awaiting-approval").inner_text()
    screenshot(page, "awaiting-approval")

    operator = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    admin = operator.new_page()
    admin.goto("/accounts/login/")
    admin.fill("input[name=login]", fmo_user.email)
    admin.fill("input[name=password]", "correct horse battery")
    admin.get_by_role("button", name="Sign In").click()
    admin.wait_for_url("**/accounts/2fa/authenticate/**")
    admin.fill("input[name=code]", totp_code(FMO_TOTP_SECRET))
    admin.get_by_role("button", name="Sign In").click()
    admin.wait_for_url(f"{live_server.url}/")
    admin.goto("/admin/accounts/organisation/?status__exact=pending")
    admin.locator("tr", has_text="GridFlex B.V.").locator("input.action-select").check()
    admin.select_option("select[name=action]", "approve_organisations")
    admin.get_by_role("button", name="Go").click()
    admin.fill("textarea[name=reason]", "Licence and KYC checked")
    screenshot(admin, "admin-approve-form")
    admin.get_by_test_id("confirm-status-action").click()
    admin.get_by_text("Approve: GridFlex B.V.").wait_for()
    screenshot(admin, "admin-approved")
    operator.close()
    assert Organisation.objects.get(legal_name="GridFlex B.V.").status == Organisation.Status.APPROVED

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.goto("/accounts/login/")
    screenshot(page, "login")
    page.fill("input[name=login]", "lea@gridflex.example")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    assert "GridFlex B.V." in page.get_by_test_id("dashboard-title").inner_text()
    screenshot(page, "landing-after-approval")

    page.goto("/organisation/")
    page.fill("input[name=name]", "EMS production")
    page.get_by_test_id("create-api-key").click()
    assert page.get_by_test_id("new-api-key-value").inner_text().startswith("fm_")
    screenshot(page, "organisation-new-api-key")


@pytest.mark.django_db(transaction=True)
def test_fmo_staff_must_activate_totp_before_using_the_portal(page, fmo_org):
    operator = member_of(fmo_org, email="new.operator@fmo.example", is_staff=True)
    page.goto("/accounts/login/")
    page.fill("input[name=login]", operator.email)
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Sign In").click()
    # allauth asks for the password again before any security change, even right after signing in.
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.fill("input[name=password]", "correct horse battery")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    screenshot(page, "mfa-setup")
    secret = page.locator("#authenticator_secret").input_value()
    page.fill("input[name=code]", totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(lambda url: "/totp/activate" not in url)  # the activation is stored before we move on
    page.goto("/")
    assert "Flex Market Operator B.V." in page.get_by_test_id("dashboard-title").inner_text()
    page.goto("/admin/")
    assert "flexmarket operator console" in page.content()


@pytest.mark.django_db(transaction=True)
def test_invited_colleague_signs_up_verifies_and_joins(page, login_as, esp_user, esp_org):
    login_as(esp_user)
    page.goto("/organisation/")
    page.get_by_test_id("invitation-form").locator("input[name=email]").fill("kim@flexy.example")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to kim@flexy.example").wait_for()
    screenshot(page, "organisation-invitation-sent")
    page.context.clear_cookies()

    link = re.search(r"http://\S+/organisation/invitations/\S+/", mail.outbox[-1].body).group(0)
    page.goto(re.sub(r"^http://[^/]+", "", link))
    screenshot(page, "invitation-anonymous")
    page.get_by_test_id("invitation-sign-up").click()
    assert page.locator("input[name=email]").input_value() == "kim@flexy.example"
    page.fill("input[name=first_name]", "Kim")
    page.fill("input[name=last_name]", "de Vries")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/**")

    confirm = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    page.goto(re.sub(r"^http://[^/]+", "", confirm))
    page.get_by_role("button", name="Confirm").click()
    page.goto("/")
    page.get_by_test_id("open-invitation").get_by_role("link").click()
    screenshot(page, "invitation-accept")
    page.get_by_test_id("accept-invitation").click()
    assert "Flexy Aggregation B.V." in page.get_by_test_id("dashboard-title").inner_text()
    assert not esp_org.memberships.get(user__email="kim@flexy.example").is_admin
