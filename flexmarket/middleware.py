"""Refuse an upload far above FLEXMARKET_UPLOAD_MAX_BYTES before its body is read or spooled to disk."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse

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
