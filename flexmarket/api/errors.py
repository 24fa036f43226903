"""One JSON error format for the whole API.

{"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}, "errors": [...]}}

Server-side failures (500, and 503 when the task queue is unreachable) also carry `request_id`, the
`X-Request-ID` under which the traceback was logged.
"""

from __future__ import annotations

import csv
import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.context import current_request_id
from flexmarket.errors import DomainError

logger = logging.getLogger("flexmarket.api")

# Raised by `task.delay()` when the Celery broker cannot be reached (kombu retries briefly first).
BROKER_ERRORS = (BrokerOperationalError,)
BROKER_UNAVAILABLE_MESSAGE = (
    "The task queue is unreachable, so this action could not be scheduled. Try again later."
)


def error_body(code: str, message: str, *, fields: dict | None = None, request_id: str = "") -> dict:
    body = {"code": code, "message": message, "fields": fields or {}}
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def server_error_response(request, *, status_code: int = 500, code: str = "server_error", message: str = ""):
    """The API's error format for failures outside DRF's handler (Django's handler500, middleware)."""
    request_id = getattr(request, "request_id", "") or current_request_id.get()
    message = message or (
        "The server failed to handle this request. It was logged; quote the request id to the market operator."
    )
    return JsonResponse(error_body(code, message, request_id=request_id), status=status_code)


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"code": exc.code, "message": exc.message, "fields": {}}
        if exc.field:
            body["fields"][exc.field] = [exc.message]
        if "errors" in exc.extra:
            body["errors"] = exc.extra["errors"]
            body["error_count"] = exc.extra.get("error_count", len(exc.extra["errors"]))
        return Response({"error": body}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BROKER_ERRORS):
        logger.error("Task queue unreachable", exc_info=exc)
        request_id = getattr(context.get("request"), "request_id", "") or current_request_id.get()
        return Response(
            error_body("broker_unavailable", BROKER_UNAVAILABLE_MESSAGE, request_id=request_id),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "60"},
        )
    if isinstance(exc, UnicodeDecodeError | csv.Error):
        # An uploaded file that is not UTF-8 CSV text; services name the row and field where they can.
        message = (
            "The file is not readable UTF-8 CSV text." if isinstance(exc, UnicodeDecodeError) else str(exc)
        )
        return Response(
            error_body("invalid_file", message, fields={"file": [message]}),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        body = {"code": "invalid", "message": "The request has invalid fields.", "fields": fields}
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = {"code": code if isinstance(code, str) else "error", "message": str(detail), "fields": {}}
    response.data = {"error": body}
    return response
