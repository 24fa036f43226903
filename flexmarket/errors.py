"""One error type for business rules, raised by services and turned into 400s and form errors.

Each app keeps its codes in an `ErrorCode` enum in its own `errors.py` (Saleor's error_codes).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused an action. `field` names the input at fault, when there is one."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.code = str(getattr(code, "value", code))
        self.message = message
        self.field = field
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            data["field"] = self.field
        if self.extra:
            data["extra"] = self.extra
        return data


class ValidationErrors(DomainError):
    """Several field or row errors at once (bulk imports): nothing was written."""

    def __init__(self, code: str, message: str, errors: list[dict[str, Any]]):
        super().__init__(code, message, extra={"errors": errors})
        self.errors = errors
