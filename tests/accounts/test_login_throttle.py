"""Sign-in throttling: an attacker who knows an e-mail address is slowed, and cannot lock out its owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from accounts.login_throttle import Policy
from tests.factories import OrganisationFactory, member_of

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
OWNER_IP = "198.51.100.7"
ATTACKER_IP = "203.0.113.66"
TOTP_SECRET = "JBSWY3DPEHPK3PXP"
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
LOCKED_OUT = "Too many failed sign-in attempts"


@pytest.fixture
def owner(db):
    return member_of(OrganisationFactory(roles=["DSO"]), email="planner@grid.example")


def sign_in(client: Client, email: str, password: str, ip: str):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def sign_out(client: Client) -> None:
    """Through the page, which keeps the browser's other cookies (Client.logout() would drop them all)."""
    client.post("/accounts/logout/", REMOTE_ADDR=OWNER_IP)
    assert "_auth_user_id" not in client.session


def signed_in(response) -> bool:
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def totp_now() -> str:
    import time

    return format_hotp_value(hotp_value(TOTP_SECRET, int(time.time()) // 30))


# --- the policy --------------------------------------------------------------------------------------


def test_policy_waits_nothing_for_free_failures_then_doubles_up_to_the_cap():
    policy = Policy(free=3, base=2.0, cap=20.0, forget_after=3600.0)
    assert [policy.delay_after(n) for n in range(1, 9)] == [0, 0, 0, 2, 4, 8, 16, 20]
    assert policy.wait(failures=4, last_failure=100.0, now=101.5) == 0.5
    assert policy.wait(failures=4, last_failure=100.0, now=102.0) == 0
    assert policy.wait(failures=50, last_failure=100.0, now=100.0 + 3600) == 0  # forgotten


def reference_delay(failures: int, free: int, base: float, cap: float) -> float:
    delay = 0.0
    for n in range(1, failures + 1):
        if n > free:
            delay = base if delay == 0 else min(delay * 2, cap)
    return min(delay, cap)


@given(
    failures=st.integers(min_value=0, max_value=200),
    free=st.integers(min_value=0, max_value=20),
    base=st.floats(min_value=0.5, max_value=10),
    cap=st.floats(min_value=10, max_value=3600),
)
def test_policy_delay_matches_a_step_by_step_reference(failures, free, base, cap):
    policy = Policy(free=free, base=base, cap=cap, forget_after=86400.0)
    assert policy.delay_after(failures) == pytest.approx(reference_delay(failures, free, base, cap))
    assert 0 <= policy.delay_after(failures) <= cap


# --- through the sign-in page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_thirty_wrong_passwords_do_not_lock_the_owner_out_of_a_browser_that_signed_in_before(owner):
    browser = Client()
    with time_machine.travel(T0, tick=False):
        assert signed_in(sign_in(browser, owner.email, PASSWORD, OWNER_IP))
        sign_out(browser)
    attacker = Client()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False) as clock:
        for _ in range(30):
            sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
            clock.shift(1)
        assert signed_in(sign_in(browser, owner.email, PASSWORD, OWNER_IP))


@pytest.mark.django_db
def test_the_attacker_is_slowed_and_a_throttled_attempt_is_not_even_checked(owner):
    attacker = Client()
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(5):  # the account's free failures
            response = sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
            assert LOCKED_OUT not in response.content.decode()
        response = sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
        assert not signed_in(response) and LOCKED_OUT not in response.content.decode()  # 6th: counted
        # The account must now wait 2 s: even the right password is refused unchecked, and not counted.
        response = sign_in(attacker, owner.email, PASSWORD, ATTACKER_IP)
        assert not signed_in(response)
        assert f"{LOCKED_OUT}. Try again in 2 seconds" in response.content.decode()
        clock.shift(2)
        sign_in(attacker, owner.email, WRONG, ATTACKER_IP)  # 7th failure: 4 s
        clock.shift(3)
        assert (
            "Try again in 1 second," in sign_in(attacker, owner.email, PASSWORD, ATTACKER_IP).content.decode()
        )
        clock.shift(1)
        assert signed_in(sign_in(attacker, owner.email, PASSWORD, ATTACKER_IP))


@pytest.mark.django_db
def test_one_client_guessing_many_accounts_is_slowed_by_its_address(db):
    organisation = OrganisationFactory(roles=["ESP"])
    users = [member_of(organisation, email=f"trader{n}@esp.example") for n in range(12)]
    attacker = Client()
    with time_machine.travel(T0, tick=False):
        for user in users[:10]:
            sign_in(attacker, user.email, WRONG, ATTACKER_IP)
        sign_in(attacker, users[10].email, WRONG, ATTACKER_IP)  # the client's 11th failure
        response = sign_in(attacker, users[11].email, PASSWORD, ATTACKER_IP)
        assert LOCKED_OUT in response.content.decode() and not signed_in(response)
        # Another client is not affected by that address's failures.
        assert signed_in(sign_in(Client(), users[11].email, PASSWORD, OWNER_IP))


@pytest.mark.django_db
def test_a_password_reset_lets_the_owner_in_from_a_new_browser(owner, mailoutbox):
    attacker = Client()
    new_browser = Client()
    with time_machine.travel(T0, tick=False):
        for _ in range(30):
            sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
        assert LOCKED_OUT in sign_in(new_browser, owner.email, PASSWORD, OWNER_IP).content.decode()
        new_browser.post("/accounts/password/reset/", {"email": owner.email}, REMOTE_ADDR=OWNER_IP)
        link = next(
            line for line in mailoutbox[-1].body.splitlines() if "/accounts/password/reset/key/" in line
        )
        path = link[link.index("/accounts/") :].strip()
        form_url = new_browser.get(path, REMOTE_ADDR=OWNER_IP)["Location"]
        new_password = "a brand new passphrase 42"
        new_browser.post(
            form_url, {"password1": new_password, "password2": new_password}, REMOTE_ADDR=OWNER_IP
        )
        assert signed_in(sign_in(new_browser, owner.email, new_password, OWNER_IP))


@pytest.mark.django_db
def test_an_mfa_owner_signs_in_with_password_and_code_while_under_attack(owner):
    Authenticator.objects.create(user=owner, type=Authenticator.Type.TOTP, data={"secret": TOTP_SECRET})
    browser = Client()
    with time_machine.travel(T0, tick=False):
        response = sign_in(browser, owner.email, PASSWORD, OWNER_IP)
        assert response["Location"] == "/accounts/2fa/authenticate/"
        response = browser.post("/accounts/2fa/authenticate/", {"code": totp_now()}, REMOTE_ADDR=OWNER_IP)
        assert signed_in(response)
        assert settings.LOGIN_THROTTLE_DEVICE_COOKIE in response.cookies
        sign_out(browser)
    attacker = Client()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False) as clock:
        for _ in range(30):
            sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
            clock.shift(1)
        response = sign_in(browser, owner.email, PASSWORD, OWNER_IP)
        assert response["Location"] == "/accounts/2fa/authenticate/"
        response = browser.post("/accounts/2fa/authenticate/", {"code": totp_now()}, REMOTE_ADDR=OWNER_IP)
        assert signed_in(response)


@pytest.mark.django_db
def test_the_trusted_browser_is_throttled_on_its_own_failures(owner):
    browser = Client()
    with time_machine.travel(T0, tick=False):
        assert signed_in(sign_in(browser, owner.email, PASSWORD, OWNER_IP))
        sign_out(browser)
        for _ in range(6):  # 5 free, the 6th makes this device wait 1 s
            sign_in(browser, owner.email, WRONG, OWNER_IP)
        assert LOCKED_OUT in sign_in(browser, owner.email, PASSWORD, OWNER_IP).content.decode()


@pytest.mark.django_db
def test_a_forged_device_cookie_is_not_trusted(owner):
    attacker = Client()
    attacker.cookies[settings.LOGIN_THROTTLE_DEVICE_COOKIE] = "forged:value"
    with time_machine.travel(T0, tick=False):
        for _ in range(6):
            sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
        assert LOCKED_OUT in sign_in(attacker, owner.email, PASSWORD, ATTACKER_IP).content.decode()


@pytest.mark.django_db
def test_a_successful_sign_in_does_not_wipe_the_account_failures(owner):
    attacker = Client()
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(6):
            sign_in(attacker, owner.email, WRONG, ATTACKER_IP)
        clock.shift(2)
        assert signed_in(sign_in(Client(), owner.email, PASSWORD, OWNER_IP))  # the wait was over
        sign_in(attacker, owner.email, WRONG, ATTACKER_IP)  # the 7th failure, not a fresh first one
        assert "Try again in 4 seconds" in sign_in(attacker, owner.email, WRONG, ATTACKER_IP).content.decode()
