"""Bounds every service applies to what participants type or upload: text lengths, numbers, dates.

Each helper raises DomainError(code, message, field=...) so the API, the forms and the CSV imports report
the same clear error. Limits come from settings (docs/operations.md, "Input limits").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from flexmarket.errors import DomainError


def clean_text(value, *, field: str, code: str, max_length: int, required: bool = True) -> str:
    """Stripped text of at most `max_length` characters (the column's length)."""
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise DomainError(code, "This field is required.", field=field)
    if len(text) > max_length:
        raise DomainError(
            code, f"At most {max_length} characters are allowed (got {len(text):,}).", field=field
        )
    return text


def column_maximum(model, field_name: str) -> Decimal:
    """The largest value a DecimalField column holds (max_digits, decimal_places)."""
    column = model._meta.get_field(field_name)
    whole = column.max_digits - column.decimal_places
    return Decimal(10) ** whole - Decimal(1).scaleb(-column.decimal_places)


def bounded_decimal(
    value, *, field: str, code: str, maximum: Decimal, minimum: Decimal = Decimal("0"), unit: str = ""
) -> Decimal:
    """A finite Decimal within [minimum, maximum]; refuses NaN, infinities, 1e308 and text."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(code, f"'{str(value)[:40]}' is not a number.", field=field)
    if not number.is_finite() or not minimum <= number <= maximum:
        suffix = f" {unit}" if unit else ""
        raise DomainError(code, f"Must be between {minimum:,}{suffix} and {maximum:,}{suffix}.", field=field)
    return number


def date_window() -> tuple[date, date]:
    return (
        date.fromisoformat(settings.FLEXMARKET_EARLIEST_DATE),
        date.fromisoformat(settings.FLEXMARKET_LATEST_DATE),
    )


def check_date(day: date, *, field: str, code: str) -> date:
    """A calendar date within the platform's window (year 1 or 9999 overflows day arithmetic)."""
    earliest, latest = date_window()
    calendar_day = day.date() if isinstance(day, datetime) else day
    if not isinstance(calendar_day, date):
        raise DomainError(code, "Give a date (YYYY-MM-DD).", field=field)
    if not earliest <= calendar_day <= latest:
        raise DomainError(code, f"The date must be between {earliest} and {latest}.", field=field)
    return day


def check_moment(moment: datetime, *, field: str, code: str) -> datetime:
    """An aware datetime within the platform's date window."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise DomainError(code, "Give a time with a UTC offset (e.g. +01:00 or Z).", field=field)
    check_date(moment.date(), field=field, code=code)
    return moment


def parse_moment(text: str, *, field: str, code: str) -> datetime:
    """An ISO 8601 time with an offset, within the date window."""
    text = (text or "").strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(
            code, f"'{text[:40]}' is not an ISO 8601 time such as 2026-11-24T17:00+01:00.", field=field
        )
    return check_moment(moment, field=field, code=code)


def parse_date(text: str, *, field: str, code: str) -> date:
    text = (text or "").strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DomainError(code, f"'{text[:40]}' is not a date (YYYY-MM-DD).", field=field)
    return check_date(day, field=field, code=code)
