"""Every log record carries the request id (`X-Request-ID`) of the request that produced it, or "-"."""

from __future__ import annotations

import logging

from accounts.context import current_request_id


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", "") or current_request_id.get() or "-"
        return True
