"""Response hardening and clear failures: Permissions-Policy, and a 503 when the task queue is down."""

from __future__ import annotations

import logging

from django.conf import settings
from django.shortcuts import render

from flexmarket.api.errors import BROKER_ERRORS, BROKER_UNAVAILABLE_MESSAGE, server_error_response

logger = logging.getLogger("flexmarket.request")


class PermissionsPolicyMiddleware:
    """Sets `Permissions-Policy` (settings.PERMISSIONS_POLICY: feature -> allowed origins) on every response."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(origins)})" for feature, origins in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        if self.header:
            response.headers.setdefault("Permissions-Policy", self.header)
        return response


class BrokerUnavailableMiddleware:
    """A page or API call whose work cannot be queued answers 503 with a clear message, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, BROKER_ERRORS):
            return None
        logger.error("Task queue unreachable", exc_info=exception)
        if request.path.startswith("/api/"):
            response = server_error_response(
                request, status_code=503, code="broker_unavailable", message=BROKER_UNAVAILABLE_MESSAGE
            )
        else:
            response = render(request, "503.html", {"message": BROKER_UNAVAILABLE_MESSAGE}, status=503)
        response["Retry-After"] = "60"
        return response
