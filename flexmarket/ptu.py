"""Programme Time Units: 15-minute delivery intervals in a market's local time zone.

Pure functions, no Django. A local delivery day has 92, 96 or 100 PTUs across DST changes.
Storage is always aware UTC; local time is only for display and for "which day" questions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PTU_MINUTES = 15
PTU = timedelta(minutes=PTU_MINUTES)
UTC = ZoneInfo("UTC")


def day_bounds_utc(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC start and end of a local delivery day."""
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    next_day = day + timedelta(days=1)
    end = datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def ptu_count(day: date, tz: str) -> int:
    """Number of PTUs in a local day: 96, or 92/100 on DST switch days."""
    start, end = day_bounds_utc(day, tz)
    return int((end - start) / PTU)


def ptu_starts(day: date, tz: str) -> list[datetime]:
    """The UTC start of every PTU of a local delivery day, in order."""
    start, end = day_bounds_utc(day, tz)
    return [start + i * PTU for i in range(int((end - start) / PTU))]


def is_ptu_boundary(moment: datetime) -> bool:
    """True if an aware datetime falls exactly on a quarter hour."""
    if moment.tzinfo is None:
        raise ValueError("PTU boundaries are only defined for aware datetimes")
    utc = moment.astimezone(UTC)
    return utc.second == 0 and utc.microsecond == 0 and utc.minute % PTU_MINUTES == 0


def floor_to_ptu(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % PTU_MINUTES, second=0, microsecond=0)


def local_day_of(moment: datetime, tz: str) -> date:
    return moment.astimezone(ZoneInfo(tz)).date()


def ptu_index(moment: datetime, day: date, tz: str) -> int:
    """Index (0-based) of the PTU starting at `moment` within the local day."""
    start, _ = day_bounds_utc(day, tz)
    return int((moment.astimezone(UTC) - start) / PTU)
