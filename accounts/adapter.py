"""allauth adapter: sign-in throttling by client, account and trusted device (accounts.login_throttle)."""

from __future__ import annotations

import math
import time

from allauth.account.adapter import DefaultAccountAdapter
from django import forms

from accounts import login_throttle


class AccountAdapter(DefaultAccountAdapter):
    """Replaces allauth's per-e-mail lockout (which let anyone lock an owner out) for password sign-ins.

    allauth's own `login_failed` rate limit still guards the MFA code stage, which only someone who knows
    the password reaches.
    """

    def pre_authenticate(self, request, **credentials):
        login = credentials.get("email") or credentials.get("username") or ""
        self._login_attempt = login_throttle.attempt_begin(
            client_ip=self.get_client_ip(request),
            login=login,
            device=login_throttle.device_from_request(request),
            now=time.time(),
        )
        if self._login_attempt.wait_seconds > 0:
            seconds = math.ceil(self._login_attempt.wait_seconds)
            self._login_attempt = None  # refused before the password was checked: not a failure
            raise forms.ValidationError(
                f"Too many failed sign-in attempts. Try again in {seconds} second{'s' if seconds != 1 else ''}, "
                "or reset your password.",
                code="too_many_login_attempts",
            )

    def authenticate(self, request, **credentials):
        self._login_attempt = None
        user = super().authenticate(request, **credentials)
        if user is not None and self._login_attempt is not None:
            self._login_attempt.succeeded()
        return user

    def authentication_failed(self, request, **credentials):
        if getattr(self, "_login_attempt", None) is not None:
            self._login_attempt.failed(now=time.time())

    def post_login(self, request, user, **kwargs):
        """After every stage (MFA included) has passed: this browser becomes a trusted device for the account."""
        response = super().post_login(request, user, **kwargs)
        if response is not None and user.email:
            login_throttle.set_device_cookie(response, request, login=user.email)
        return response

    def _delete_login_attempts_cached_email(self, request, **credentials):
        super()._delete_login_attempts_cached_email(request, **credentials)
        login_throttle.account_clear(login=credentials.get("email", credentials.get("username", "")))
