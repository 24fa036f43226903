"""Request id for the audit trail, the acting organisation, and MFA for FMO staff."""

from __future__ import annotations

import re
import uuid

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from accounts.context import current_request_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes X-Request-ID when it is sane, or makes one; audit events carry it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class OrganisationMiddleware:
    """Sets `request.actor` lazily for session users (the API re-resolves it after API-key auth)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from accounts.selectors import actor_for_request

        request.actor = SimpleLazyObject(lambda: actor_for_request(request))
        return self.get_response(request)


class FmoMfaRequiredMiddleware:
    """FMO staff must set up TOTP before using any page but the sign-in, MFA and logout pages.

    Session calls to the API get a 403 in the API's error format instead of a redirect; API-key calls are
    not session-authenticated here, so keys keep working (they are created by people who passed this check).
    """

    EXEMPT_PREFIXES = ("/accounts/", "/static/", "/media/", "/healthz")
    API_PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from accounts.selectors import user_requires_mfa_setup

        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.EXEMPT_PREFIXES)
            and user_requires_mfa_setup(user=user)
        ):
            if request.path.startswith(self.API_PREFIX):
                message = "Market operator staff must set up two-factor authentication (TOTP) first."
                return JsonResponse(
                    {"error": {"code": "mfa_required", "message": message, "fields": {}}}, status=403
                )
            return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")
        return self.get_response(request)
