"""Sign-in throttling that slows password guessing without locking the owner out.

Failed sign-ins are counted per client (IP address) and per account (the e-mail tried). After a few free
failures each scope must wait before its next attempt, the wait doubling with each further failure up to a
cap; during the wait the password is not even checked. An attacker who knows an e-mail address can
therefore slow sign-ins to that account from new browsers, but cannot lock out its owner: a browser that
has completed a sign-in to the account before (all MFA stages included) holds a signed *trusted-device*
cookie and is throttled only on its own failures (OWASP, "Slow brute force and device cookies"). A
password reset by e-mail clears the account's counter. The numbers are in `settings.LOGIN_THROTTLE`.

The policy is pure (`Policy.wait`); counters live in Django's cache (Redis in production).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache

DEVICE_COOKIE_SALT = "flexmarket.login-throttle.device"
CACHE_PREFIX = "login-throttle"


@dataclass(frozen=True)
class Policy:
    """`free` failures cost nothing; failure number free+k then makes the scope wait base*2**(k-1) seconds,
    at most `cap`. Counters are forgotten `forget_after` seconds after the last failure."""

    free: int
    base: float
    cap: float
    forget_after: float

    def delay_after(self, failures: int) -> float:
        over = failures - self.free
        if over <= 0:
            return 0.0
        return float(min(self.base * 2 ** min(over - 1, 62), self.cap))

    def wait(self, *, failures: int, last_failure: float, now: float) -> float:
        """Seconds this scope must still wait at `now` (0 when it may try)."""
        if failures <= 0 or now - last_failure >= self.forget_after:
            return 0.0
        return max(0.0, last_failure + self.delay_after(failures) - now)


def policies() -> dict[str, Policy]:
    return {scope: Policy(**values) for scope, values in settings.LOGIN_THROTTLE.items()}


def login_key(login: str) -> str:
    """The account as the throttle knows it: a hash of the normalised e-mail (no database lookup)."""
    return hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Scope:
    name: str  # "client", "account" or "device"
    key: str

    @property
    def cache_key(self) -> str:
        return f"{CACHE_PREFIX}:{self.name}:{self.key}"


def _load(scope: Scope) -> tuple[int, float]:
    failures, last_failure = cache.get(scope.cache_key) or (0, 0.0)
    return failures, last_failure


# --- trusted devices ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """What the signed cookie holds: a random device id and the accounts that signed in from it."""

    device_id: str
    accounts: tuple[str, ...]

    def trusts(self, account: str) -> bool:
        return account in self.accounts


def device_from_request(request) -> Device | None:
    raw = request.COOKIES.get(settings.LOGIN_THROTTLE_DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_COOKIE_SALT, max_age=settings.LOGIN_THROTTLE_DEVICE_COOKIE_AGE)
        return Device(device_id=str(data["d"]), accounts=tuple(str(a) for a in data["a"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def device_cookie_value(request, *, login: str) -> str:
    """The cookie after a complete sign-in: this account added (at most 10 remembered per browser)."""
    device = device_from_request(request)
    account = login_key(login)
    device_id = device.device_id if device else secrets.token_urlsafe(16)
    accounts = [a for a in (device.accounts if device else ()) if a != account][-9:] + [account]
    return signing.dumps({"d": device_id, "a": accounts}, salt=DEVICE_COOKIE_SALT)


def set_device_cookie(response, request, *, login: str) -> None:
    response.set_cookie(
        settings.LOGIN_THROTTLE_DEVICE_COOKIE,
        device_cookie_value(request, login=login),
        max_age=settings.LOGIN_THROTTLE_DEVICE_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- one sign-in attempt --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """The scopes one attempt is counted in, and how long it must still wait."""

    scopes: tuple[Scope, ...]
    wait_seconds: float

    def failed(self, *, now: float) -> None:
        by_name = policies()
        for scope in self.scopes:
            policy = by_name[scope.name]
            failures, last = _load(scope)
            if now - last >= policy.forget_after:
                failures = 0
            cache.set(scope.cache_key, (failures + 1, now), timeout=int(policy.forget_after))

    def succeeded(self) -> None:
        """A trusted device starts afresh; client and account counters are kept (an attacker's own
        successful sign-ins must not wipe the record of its failures) and simply expire."""
        for scope in self.scopes:
            if scope.name == "device":
                cache.delete(scope.cache_key)


def attempt_begin(*, client_ip: str, login: str, device: Device | None, now: float) -> Attempt:
    account = login_key(login)
    if device is not None and device.trusts(account):
        scopes: tuple[Scope, ...] = (Scope("device", f"{device.device_id}:{account}"),)
    else:
        scopes = (Scope("client", client_ip), Scope("account", account))
    by_name = policies()
    wait = 0.0
    for scope in scopes:
        failures, last_failure = _load(scope)
        wait = max(wait, by_name[scope.name].wait(failures=failures, last_failure=last_failure, now=now))
    return Attempt(scopes=scopes, wait_seconds=wait)


def account_clear(*, login: str) -> None:
    """After a password reset by e-mail (proof of ownership): the account may be tried again at once."""
    cache.delete(Scope("account", login_key(login)).cache_key)
