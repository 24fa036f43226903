"""Local time for people: pages and forms show the market's wall-clock time with its zone; storage and the API
stay in UTC. One place decides how a moment and a PTU are labelled, including both 02:xx of the autumn DST day."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

from flexmarket import ptu as ptus


def display_zone() -> ZoneInfo:
    """The zone pages show times in (FLEXMARKET_DISPLAY_TIME_ZONE; default the markets' Europe/Amsterdam)."""
    return ZoneInfo(settings.FLEXMARKET_DISPLAY_TIME_ZONE)


def clock_label(moment: datetime, zone: ZoneInfo) -> str:
    """'02:15 CEST': wall-clock time and the zone's abbreviation, so the repeated autumn hour reads apart."""
    local = moment.astimezone(zone)
    return f"{local:%H:%M} {local.tzname()}"


def moment_label(moment: datetime, zone: ZoneInfo | None = None) -> str:
    """'2026-10-25 02:15 CET': a moment in messages people read (form errors, notifications), local with its zone."""
    local = moment.astimezone(zone or display_zone())
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def ptu_value(moment: datetime) -> str:
    """A PTU start as a form value: the UTC instant in ISO 8601 (unambiguous on every day)."""
    return moment.astimezone(ptus.UTC).isoformat()


def ptu_choices(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[str, str]]:
    """Every PTU start of [start, end) as (value, local label): 92, 96 or 100 on a delivery day; the missing
    spring hour has no entry and the repeated autumn hour has two, one per offset."""
    n = int((end - start) / ptus.PTU)
    return [(ptu_value(start + i * ptus.PTU), clock_label(start + i * ptus.PTU, zone)) for i in range(n)]
