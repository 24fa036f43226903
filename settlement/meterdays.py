"""Packed meter days: the readings of one asset, source and UTC day as 96 little-endian int64 values in watts.

A UTC day always has 96 quarter-hour PTUs (local delivery days have 92/96/100 across DST), so every stored day
has the same shape. Readings are kW with three decimals, so an integer number of watts holds them exactly;
a PTU without a reading holds MISSING. Pure functions of numpy arrays and Decimals (no Django).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np

PTUS_PER_DAY = 96
PTU = timedelta(minutes=15)
MISSING = np.iinfo(np.int64).min
LAYOUT = np.dtype("<i8")
BYTES = PTUS_PER_DAY * LAYOUT.itemsize
_EPOCH_DAY = date(1970, 1, 1)


def empty() -> np.ndarray:
    """A day with no readings."""
    return np.full(PTUS_PER_DAY, MISSING, dtype=np.int64)


def pack(watts: np.ndarray) -> bytes:
    return np.asarray(watts, dtype=LAYOUT).tobytes()


def unpack(blob: bytes | memoryview) -> np.ndarray:
    """The day's 96 values (a writable copy); a blob of the wrong size is corrupt data and raises."""
    values = np.frombuffer(blob, dtype=LAYOUT)
    if values.size != PTUS_PER_DAY:
        raise ValueError(f"A packed meter day holds {PTUS_PER_DAY} values, not {values.size}.")
    return values.astype(np.int64)


def watts_of(kw: Decimal) -> int:
    """kW with at most three decimals as whole watts, exactly (no float on the way)."""
    watts = kw.scaleb(3)
    if watts != watts.to_integral_value():
        raise ValueError(f"{kw} kW has more than three decimals.")
    return int(watts)


def kw_of(watts: int) -> Decimal:
    """Whole watts back as kW with exactly three decimals."""
    return Decimal(int(watts)).scaleb(-3)


def position(moment: datetime) -> tuple[date, int]:
    """(UTC day, PTU index 0-95) of a PTU start; the moment must be timezone-aware and on a PTU boundary."""
    utc = moment.astimezone(UTC)
    day = utc.date()
    offset = utc - datetime.combine(day, time(0), tzinfo=UTC)
    index, rest = divmod(offset, PTU)
    if rest:
        raise ValueError(f"{moment.isoformat()} is not on a PTU boundary.")
    return day, index


def moment_of(day: date, index: int) -> datetime:
    """The PTU start of index `index` of a UTC day."""
    return datetime.combine(day, time(0), tzinfo=UTC) + index * PTU


def days_spanning(start: datetime, end: datetime) -> tuple[date, date]:
    """First and last UTC day holding a PTU start in [start, end)."""
    return start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()


def epoch_day(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH_DAY).days


def expand(
    day_numbers: np.ndarray, versions: np.ndarray, watts: np.ndarray, start_micros: int, end_micros: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Day rows (days since the epoch (n,), versions (n,), watts (n, 96)) as per-reading arrays of the readings
    whose PTU starts in [start_micros, end_micros) (microseconds since the epoch): (row of each reading, its
    microseconds, its kW as float (the correctly rounded double, as float(Decimal) gives), its day's version)."""
    ptu_micros = int(PTU / timedelta(microseconds=1))
    micros = (
        np.asarray(day_numbers, dtype=np.int64)[:, None] * (PTUS_PER_DAY * ptu_micros)
        + np.arange(PTUS_PER_DAY, dtype=np.int64)[None, :] * ptu_micros
    )
    present = (watts != MISSING) & (micros >= start_micros) & (micros < end_micros)
    rows, _ = np.nonzero(present)
    return rows, micros[present], watts[present] / 1000.0, np.asarray(versions, dtype=np.int64)[rows]
