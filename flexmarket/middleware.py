"""Request guards and response hardening: refuse an upload far above FLEXMARKET_UPLOAD_MAX_BYTES before its body
is read; set Permissions-Policy; answer 503 when the task queue is down."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from flexmarket.api.errors import BROKER_ERRORS, BROKER_UNAVAILABLE_MESSAGE, server_error_response
from flexmarket.localtime import display_zone

# Room for the multipart envelope and the other form fields: a file just over the limit still reaches the
# import, which answers a 400 naming the file; a body far over it never gets that far.
ENVELOPE_BYTES = 64 * 1024


class UploadSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.FLEXMARKET_UPLOAD_MAX_BYTES + ENVELOPE_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit and request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            message = f"The upload is {length:,} bytes; at most {settings.FLEXMARKET_UPLOAD_MAX_BYTES:,} are accepted."
            if request.path.startswith("/api/"):
                body = {
                    "error": {"code": "upload_too_large", "message": message, "fields": {"file": [message]}}
                }
                return JsonResponse(body, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


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


class LocalTimeMiddleware:
    """Pages render times in the display zone (Django converts aware datetimes in templates and forms); the API
    keeps answering in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            return self.get_response(request)
        timezone.activate(display_zone())
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
