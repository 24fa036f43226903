"""Baselines and delivery measurement: pure functions of numpy arrays (no Django).

A baseline estimates what an asset would have consumed without activation; delivered flexibility is measured
against it. Load is metered consumption in kW (positive = consumption; net injection is negative), one average
per 15-minute PTU; NaN means missing. Days are aligned by local wall-clock slot (`slot_minutes`), so a 92- or
100-PTU DST day and ordinary 96-PTU days combine: a repeated autumn hour takes the same history values twice, a
skipped spring hour is absent on the target day and, on a history day, is filled by linear interpolation between
the PTU before and the PTU after it (`align`). Windows that reach back past midnight read the previous day's
readings (`DayProfile.before`), windows that reach past the end of the day the next day's (`DayProfile.after`).
Methods follow digests/baselines.md (NODES, Piclo, PJM, CAISO, UK Flexibility Services, CalTRACK). The
temperature method (`baseline_temperature`) reads each day's outdoor temperatures (`DayProfile.temperatures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from flexmarket import ptu

STANDARD_SLOTS = np.arange(0, 1440, 15)
MIN_REGRESSION_DAYS = 3
EVENING = (17 * 60, 20 * 60)  # the usual congestion hours, local wall clock


@dataclass(frozen=True)
class DayProfile:
    """One local day of load. `is_weekend` means "not a working day" (weekends and public holidays). `before` holds
    the previous local day's values (its last PTU last) and `after` the next day's, when the caller has them."""

    day: date
    values: np.ndarray
    slot_minutes: np.ndarray = field(default_factory=lambda: STANDARD_SLOTS.copy())
    is_event_day: bool = False
    is_weekend: bool = False
    before: np.ndarray | None = None
    after: np.ndarray | None = None
    temperatures: np.ndarray | None = None  # °C per PTU, like `values`; None = no temperatures for the zone

    @property
    def complete(self) -> bool:
        return bool(np.isfinite(self.values).all())

    @property
    def has_temperatures(self) -> bool:
        return self.temperatures is not None and bool(np.isfinite(self.temperatures).all())


@dataclass(frozen=True)
class BaselineResult:
    values: np.ndarray
    method: str
    params: dict
    days_used: tuple[date, ...] = ()
    complete: bool = True
    note: str = ""


def day_slot_minutes(day: date, tz: str) -> np.ndarray:
    """Local wall-clock minute of each PTU start of `day` in market time zone `tz` (92, 96 or 100 entries)."""
    zone = ZoneInfo(tz)
    starts = [start.astimezone(zone) for start in ptu.ptu_starts(day, tz)]
    return np.array([start.hour * 60 + start.minute for start in starts], dtype=int)


def align(history_day: DayProfile, target_slots: np.ndarray) -> np.ndarray:
    """History values on the target day's wall-clock slots: the mean of an autumn day's repeated hour; the slots of
    a spring day's skipped hour (02:00-02:45 never occur) by linear interpolation between the PTU before (01:45)
    and the PTU after (03:00). A missing reading stays NaN."""
    sums = np.zeros(1440 // 15)
    counts = np.zeros(1440 // 15)
    index = (np.asarray(history_day.slot_minutes) // 15).astype(int)
    finite = np.isfinite(history_day.values)
    np.add.at(sums, index[finite], history_day.values[finite])
    np.add.at(counts, index[finite], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_slot = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    occurs = np.zeros(1440 // 15, dtype=bool)
    occurs[index] = True
    if occurs.any() and not occurs.all():
        by_slot = _fill_skipped_slots(by_slot, occurs)
    return by_slot[(np.asarray(target_slots) // 15).astype(int)]


def _fill_skipped_slots(by_slot: np.ndarray, occurs: np.ndarray) -> np.ndarray:
    """Each run of slots (the last axis; rows, if any, each on their own) that never occurred gets the straight
    line between its two neighbours (NaN if a neighbour is missing or the run touches the start or end of the day)."""
    filled = by_slot.copy()
    slot = 0
    while slot < occurs.size:
        if occurs[slot]:
            slot += 1
            continue
        end = slot
        while end < occurs.size and not occurs[end]:
            end += 1
        if slot > 0 and end < occurs.size:
            left, right = by_slot[..., slot - 1 : slot], by_slot[..., end : end + 1]
            steps = np.arange(1, end - slot + 1) / (end - slot + 1)
            filled[..., slot:end] = left + (right - left) * steps
        slot = end
    return filled


def _like_days(target: DayProfile, history: Sequence[DayProfile], y: int) -> list[DayProfile]:
    """The Y most recent complete, non-event days of the same day type before the target day."""
    eligible = [
        day
        for day in history
        if day.day < target.day
        and not day.is_event_day
        and day.is_weekend == target.is_weekend
        and day.complete
    ]
    return sorted(eligible, key=lambda day: day.day, reverse=True)[:y]


def _span(
    values: np.ndarray, before: np.ndarray | None, after: np.ndarray | None, start: int, end: int
) -> np.ndarray | None:
    """values[start:end] where negative indices reach into `before` (the previous day, read from its end) and
    indices past the day into `after` (the next day); None if the span reaches beyond what was given."""
    values = np.asarray(values, dtype=float)
    head = np.asarray(before, dtype=float) if before is not None else np.zeros(0)
    tail = np.asarray(after, dtype=float) if after is not None else np.zeros(0)
    if start < -head.size or end > values.size + tail.size:
        return None
    combined = np.concatenate([head, values, tail])
    return combined[start + head.size : end + head.size]


def _window(event_mask: np.ndarray | None, n: int) -> np.ndarray:
    if event_mask is None or not np.asarray(event_mask).any():
        return np.ones(n, dtype=bool)
    return np.asarray(event_mask, dtype=bool)


def baseline_nominated(nominated: np.ndarray) -> np.ndarray:
    """The ESP's D-prognosis as submitted before gate closure."""
    return np.asarray(nominated, dtype=float).copy()


def baseline_x_of_y(
    target: DayProfile,
    history: Sequence[DayProfile],
    *,
    x: int,
    y: int,
    mode: str = "high",
    event_mask: np.ndarray | None = None,
) -> BaselineResult:
    """High X of Y: average the X like-days with the highest load in the event window among the Y most recent.
    Mid X of Y: rank the Y days by that load, drop the extremes equally (an odd surplus from the top) and average
    the middle X. Days with gaps, event days and days of the other type (weekday/weekend) are excluded."""
    if not 0 < x <= y:
        raise ValueError("need 0 < x <= y")
    if mode not in ("high", "mid"):
        raise ValueError("mode is 'high' or 'mid'")
    params = {"x": x, "y": y, "mode": mode}
    n = target.values.size
    days = _like_days(target, history, y)
    if len(days) < x:
        return BaselineResult(
            np.full(n, np.nan),
            f"{mode}_x_of_y",
            params,
            tuple(d.day for d in days),
            False,
            f"only {len(days)} eligible like-days; {x} needed",
        )
    matrix = np.vstack([align(day, target.slot_minutes) for day in days])
    window = _window(event_mask, n)
    score = np.nanmean(matrix[:, window], axis=1)
    order = np.argsort(-score, kind="stable")  # highest first; ties keep the more recent day
    drop_top = 0
    if mode == "mid":
        surplus = len(days) - x
        drop_top = surplus - surplus // 2
    chosen = order[drop_top : drop_top + x]
    values = np.nanmean(matrix[chosen], axis=0)
    return BaselineResult(
        values,
        f"{mode}_x_of_y",
        params,
        tuple(days[i].day for i in sorted(chosen)),
        bool(np.isfinite(values).all()),
    )


def adjust_same_day(
    baseline: np.ndarray,
    actual: np.ndarray,
    event_mask: np.ndarray,
    *,
    kind: str = "additive",
    window_ptus: int = 4,
    gap_ptus: int = 1,
    cap: float | None = 0.2,
    positive_only: bool = False,
    baseline_before: np.ndarray | None = None,
    actual_before: np.ndarray | None = None,
) -> np.ndarray:
    """Shift (additive) or scale (multiplicative) the baseline by the error in the PTUs before the event.

    The window is `window_ptus` PTUs ending `gap_ptus` before the first event PTU; where it reaches back past
    midnight it reads `baseline_before` / `actual_before` (the PTUs just before the day, last one last). `cap`
    bounds the adjustment to ±cap × the window's mean baseline (additive) or the factor to [1 − cap, 1 + cap]
    (multiplicative). `positive_only` (UK Flexibility Services) lets the adjustment only raise the baseline. A
    window with a missing value, or reaching before the data given, gives NaN: the result waits for its inputs.
    """
    baseline = np.asarray(baseline, dtype=float)
    event = np.flatnonzero(event_mask)
    if event.size == 0 or window_ptus <= 0:
        return baseline.copy()
    end = int(event[0]) - gap_ptus
    base_window = _span(baseline, baseline_before, None, end - window_ptus, end)
    actual_window = _span(actual, actual_before, None, end - window_ptus, end)
    if (
        base_window is None
        or actual_window is None
        or not (np.isfinite(base_window).all() and np.isfinite(actual_window).all())
    ):
        return np.full(baseline.shape, np.nan)
    if kind == "additive":
        adjustment = float(np.mean(actual_window - base_window))
        if cap is not None:
            limit = cap * abs(float(np.mean(base_window)))
            adjustment = float(np.clip(adjustment, -limit, limit))
        if positive_only:
            adjustment = max(adjustment, 0.0)
        return baseline + adjustment
    if kind == "multiplicative":
        mean_base = float(np.mean(base_window))
        factor = float(np.mean(actual_window)) / mean_base if mean_base else 1.0
        if cap is not None:
            factor = float(np.clip(factor, 1 - cap, 1 + cap))
        if positive_only:
            factor = max(factor, 1.0)
        return baseline * factor
    raise ValueError("kind is 'additive' or 'multiplicative'")


def baseline_meter_before_after(
    actual: np.ndarray,
    event_mask: np.ndarray,
    *,
    before_ptus: int = 2,
    after_ptus: int = 0,
    actual_before: np.ndarray | None = None,
    actual_after: np.ndarray | None = None,
) -> np.ndarray:
    """Short activations: the mean of the `before_ptus` PTUs just before the event (and after it, interpolated
    linearly when `after_ptus` > 0) over the event PTUs; outside the event the baseline is the metered load. An
    event at the start of the day reads the previous day (`actual_before`), one at its end the next day
    (`actual_after`); a window reaching beyond the data given, or holding a missing value, gives NaN."""
    actual = np.asarray(actual, dtype=float)
    baseline = actual.copy()
    event = np.flatnonzero(event_mask)
    if event.size == 0:
        return baseline
    first, last = int(event[0]), int(event[-1])
    before = _span(actual, actual_before, None, first - max(before_ptus, 1), first)
    level_before = float(np.mean(before)) if before is not None else np.nan
    if after_ptus > 0:
        after = _span(actual, None, actual_after, last + 1, last + 1 + after_ptus)
        level_after = float(np.mean(after)) if after is not None else np.nan
        baseline[first : last + 1] = np.linspace(level_before, level_after, last - first + 3)[1:-1]
    else:
        baseline[first : last + 1] = level_before
    return baseline


def baseline_regression(
    target: DayProfile, history: Sequence[DayProfile], *, y: int = 20, event_mask: np.ndarray | None = None
) -> BaselineResult:
    """Weather-free like-day regression: per slot, load = a + b × (the day's mean load before the event), fitted
    by least squares over the Y most recent like-days and applied to the target day's own pre-event mean.

    Without an event mask the predictor is the whole day's mean. Fewer than 3 like-days, or an event starting in
    the first PTU (nothing to predict from), give an incomplete result with a note; slots seen on fewer than 3
    days (a DST hour) are NaN. A constant predictor across days gives b = 0 (the slot's mean)."""
    n = target.values.size
    params = {"y": y}
    days = _like_days(target, history, y)
    if len(days) < MIN_REGRESSION_DAYS:
        return BaselineResult(
            np.full(n, np.nan),
            "regression",
            params,
            tuple(d.day for d in days),
            False,
            "fewer than 3 like-days",
        )
    has_event = event_mask is not None and np.asarray(event_mask).any()
    first_event = int(np.flatnonzero(event_mask)[0]) if has_event else n
    if first_event == 0:
        return BaselineResult(
            np.full(n, np.nan), "regression", params, (), False, "no PTUs before the event to predict from"
        )
    matrix = np.vstack([align(day, target.slot_minutes) for day in days])  # (days, slots)
    predictor = np.nanmean(matrix[:, :first_event], axis=1)  # (days,)
    target_x = float(np.nanmean(np.asarray(target.values, dtype=float)[:first_event]))
    seen = np.isfinite(matrix) & np.isfinite(predictor)[:, None]
    count = seen.sum(axis=0)
    xs = np.where(seen, predictor[:, None], 0.0)
    ys = np.where(seen, matrix, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x, mean_y = xs.sum(axis=0) / count, ys.sum(axis=0) / count
        dx = np.where(seen, xs - mean_x, 0.0)
        variance = (dx**2).sum(axis=0)
        slope = np.where(
            variance > 1e-12 * np.maximum(mean_x**2, 1.0), (dx * (ys - mean_y)).sum(axis=0) / variance, 0.0
        )
    values = mean_y + slope * (target_x - mean_x)
    values[count < MIN_REGRESSION_DAYS] = np.nan
    return BaselineResult(
        values, "regression", params, tuple(d.day for d in days), bool(np.isfinite(values).all())
    )


# CalTRACK-style balance points (°C) tried per bucket; a heating point is never above the cooling point.
HEATING_BALANCE_POINTS = (8.0, 10.0, 12.0, 14.0, 16.0, 18.0)
COOLING_BALANCE_POINTS = (16.0, 18.0, 20.0, 22.0, 24.0, 26.0)
MIN_TEMPERATURE_DAYS = 5
# Two fits whose squared errors differ by less than this (relative) are a tie: the simpler candidate wins.
SSE_TIE = 1e-9


def temperature_candidates() -> list[tuple[float | None, float | None]]:
    """(heating point, cooling point) pairs in preference order: intercept only, heating only, cooling only,
    both; None = that term is left out."""
    heating = [(h, None) for h in HEATING_BALANCE_POINTS]
    cooling = [(None, c) for c in COOLING_BALANCE_POINTS]
    both = [(h, c) for h in HEATING_BALANCE_POINTS for c in COOLING_BALANCE_POINTS if h <= c]
    return [(None, None), *heating, *cooling, *both]


def _degree_columns(temperatures: np.ndarray, heating: float | None, cooling: float | None) -> np.ndarray:
    """Design matrix [1, max(0, Th − T), max(0, T − Tc)] with the left-out terms dropped."""
    columns = [np.ones(temperatures.size)]
    if heating is not None:
        columns.append(np.maximum(0.0, heating - temperatures))
    if cooling is not None:
        columns.append(np.maximum(0.0, temperatures - cooling))
    return np.column_stack(columns)


@dataclass(frozen=True)
class TemperatureFit:
    """One bucket's chosen model: load = intercept + heating_slope·HDD + cooling_slope·CDD."""

    heating_point: float | None
    cooling_point: float | None
    coefficients: tuple[float, ...]
    samples: int

    def predict(self, temperatures: np.ndarray) -> np.ndarray:
        design = _degree_columns(
            np.asarray(temperatures, dtype=float), self.heating_point, self.cooling_point
        )
        return design @ np.asarray(self.coefficients)


def fit_temperature_buckets(
    temperatures: np.ndarray, load: np.ndarray, counts: np.ndarray
) -> list[TemperatureFit | None]:
    """Fit every bucket at once. Row b of `temperatures` and `load` (buckets, samples) holds bucket b's samples
    in its first counts[b] columns; the rest is padding, sent to zero rows that change neither the least-squares
    solution nor its rank nor its squared error.

    Per bucket: least squares over every candidate balance-point pair; keep the lowest squared error among fits
    whose degree slopes are ≥ 0 (more heating or cooling never lowers the load) and whose design has full rank
    with more samples than coefficients. Near-ties (SSE_TIE) go to the earlier, simpler candidate. None: the
    bucket has no sample. All candidates with the same number of coefficients are solved by one stacked SVD
    (the pseudo-inverse that least squares uses)."""
    temperatures, load = np.asarray(temperatures, dtype=float), np.asarray(load, dtype=float)
    counts = np.asarray(counts, dtype=int)
    n_buckets, width = load.shape
    real = np.arange(width)[None, :] < counts[:, None]
    temperatures, load = np.where(real, temperatures, 0.0), np.where(real, load, 0.0)
    candidates = temperature_candidates()
    heating = {h: np.where(real, np.maximum(0.0, h - temperatures), 0.0) for h in HEATING_BALANCE_POINTS}
    cooling = {c: np.where(real, np.maximum(0.0, temperatures - c), 0.0) for c in COOLING_BALANCE_POINTS}
    ones = real.astype(float)
    sse = np.full((n_buckets, len(candidates)), np.inf)
    solutions = np.zeros((n_buckets, len(candidates), 3))
    for columns in (1, 2, 3):
        group = [i for i, (h, c) in enumerate(candidates) if 1 + (h is not None) + (c is not None) == columns]
        designs = np.stack(
            [
                np.stack(
                    [ones]
                    + ([heating[h]] if h is not None else [])
                    + ([cooling[c]] if c is not None else []),
                    axis=-1,
                )
                for h, c in (candidates[i] for i in group)
            ],
            axis=1,
        )  # (buckets, candidates, samples, coefficients)
        u, singular, vt = np.linalg.svd(designs, full_matrices=False)
        tolerance = (
            singular.max(axis=-1, keepdims=True)
            * np.maximum(counts, columns)[:, None, None]
            * np.finfo(float).eps
        )
        kept = singular > tolerance
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.where(kept, 1.0 / np.where(kept, singular, 1.0), 0.0)
        projected = inverse * np.einsum("bmnj,bn->bmj", u, load)
        coefficients = np.einsum("bmji,bmj->bmi", vt, projected)
        residual = np.einsum("bmnk,bmk->bmn", designs, coefficients) - load[:, None, :]
        accepted = kept.all(axis=-1) & (coefficients[..., 1:] >= 0).all(axis=-1)
        if columns > 1:
            accepted &= (counts > columns)[:, None]
        sse[:, group] = np.where(accepted, (residual**2).sum(axis=-1), np.inf)
        solutions[:, group, :columns] = coefficients
    best = np.full(n_buckets, -1)
    best_sse = np.full(n_buckets, np.inf)
    for index in range(len(candidates)):  # preference order, so a near-tie keeps the simpler candidate
        with np.errstate(invalid="ignore"):  # inf − inf before a bucket's first accepted fit
            lower = sse[:, index] < best_sse - SSE_TIE * np.maximum(best_sse, 1.0)
        better = np.isfinite(sse[:, index]) & ((best < 0) | lower)
        best = np.where(better, index, best)
        best_sse = np.where(better, sse[:, index], best_sse)
    fits: list[TemperatureFit | None] = []
    for bucket in range(n_buckets):
        if best[bucket] < 0 or counts[bucket] == 0:
            fits.append(None)
            continue
        heating_point, cooling_point = candidates[best[bucket]]
        size = 1 + (heating_point is not None) + (cooling_point is not None)
        coefficients = tuple(float(c) for c in solutions[bucket, best[bucket], :size])
        fits.append(TemperatureFit(heating_point, cooling_point, coefficients, int(counts[bucket])))
    return fits


def baseline_temperature(
    target: DayProfile, history: Sequence[DayProfile], *, y: int = 30, bucket_minutes: int = 15
) -> BaselineResult:
    """CalTRACK-style temperature model: per local wall-clock bucket h (`bucket_minutes` = 15: each PTU slot;
    60: each hour, as CalTRACK's hourly model), over the Y most recent like-days with complete load and
    temperatures, load = a_h + b_h·max(0, Th_h − T) + c_h·max(0, T − Tc_h) with the balance points chosen from a
    grid by least squares; the target day's PTUs are predicted from the target day's own temperatures, never
    from its load (so a raised morning load does not move it).

    Fewer than MIN_TEMPERATURE_DAYS such like-days → incomplete. A target PTU without a temperature is NaN
    (awaiting data). Pooling by wall-clock bucket needs no interpolation: a DST history day simply adds no
    sample, or two, to the 02:xx buckets, and a 100-PTU target predicts both of its 02:xx hours from them."""
    if bucket_minutes not in (15, 30, 60):
        raise ValueError("bucket_minutes is 15, 30 or 60")
    n = target.values.size
    params = {"y": y, "bucket_minutes": bucket_minutes}
    eligible = [day for day in _like_days(target, history, len(history)) if day.has_temperatures][:y]
    if len(eligible) < MIN_TEMPERATURE_DAYS:
        return BaselineResult(
            np.full(n, np.nan),
            "temperature",
            params,
            tuple(d.day for d in eligible),
            False,
            f"only {len(eligible)} like-days with load and temperatures; {MIN_TEMPERATURE_DAYS} needed",
        )
    buckets = np.concatenate([np.asarray(day.slot_minutes) // bucket_minutes for day in eligible])
    temperatures = np.concatenate([np.asarray(day.temperatures, dtype=float) for day in eligible])
    load = np.concatenate([np.asarray(day.values, dtype=float) for day in eligible])
    target_buckets = np.asarray(target.slot_minutes) // bucket_minutes
    target_temperatures = (
        np.full(n, np.nan) if target.temperatures is None else np.asarray(target.temperatures, dtype=float)
    )
    values = np.full(n, np.nan)
    wanted = np.unique(target_buckets)
    members = [np.flatnonzero(buckets == bucket) for bucket in wanted]
    counts = np.array([m.size for m in members])
    width = max(int(counts.max()), 1)
    padded_temperatures, padded_load = np.zeros((wanted.size, width)), np.zeros((wanted.size, width))
    for row, chosen in enumerate(members):
        padded_temperatures[row, : chosen.size] = temperatures[chosen]
        padded_load[row, : chosen.size] = load[chosen]
    fits = {}
    for bucket, fit in zip(
        wanted, fit_temperature_buckets(padded_temperatures, padded_load, counts), strict=True
    ):
        if fit is None:
            continue
        fits[int(bucket)] = fit
        slots = target_buckets == bucket
        values[slots] = fit.predict(target_temperatures[slots])
    complete = bool(np.isfinite(values).all())
    note = ""
    if not complete:
        note = (
            "awaiting the day's temperatures"
            if not np.isfinite(target_temperatures).all()
            else "a time of day has no history"
        )
    params["balance_points"] = {  # keyed by the bucket's first local minute of the day
        str(bucket * bucket_minutes): [fit.heating_point, fit.cooling_point]
        for bucket, fit in sorted(fits.items())
    }
    return BaselineResult(values, "temperature", params, tuple(d.day for d in eligible), complete, note)


def baseline_working_days(
    target: DayProfile, history: Sequence[DayProfile], *, days: int = 5
) -> BaselineResult:
    """Strict NODES: the mean of the `days` working days preceding the target day, same wall-clock slot. Event days
    are kept and nothing is refilled: a missing reading on one of those days leaves the result incomplete."""
    if days <= 0:
        raise ValueError("need days > 0")
    params = {"days": days}
    n = target.values.size
    working = sorted(
        (day for day in history if day.day < target.day and not day.is_weekend),
        key=lambda day: day.day,
        reverse=True,
    )[:days]
    used = tuple(sorted(day.day for day in working))
    if len(working) < days:
        return BaselineResult(
            np.full(n, np.nan),
            "nodes",
            params,
            used,
            False,
            f"only {len(working)} working days; {days} needed",
        )
    values = np.vstack([align(day, target.slot_minutes) for day in working]).mean(axis=0)
    complete = bool(np.isfinite(values).all())
    return BaselineResult(
        values, "nodes", params, used, complete, "" if complete else "a working day has missing readings"
    )


def _tails_mean(history: Sequence[DayProfile], days_used: Sequence[date], length: int) -> np.ndarray:
    """Mean of the previous-day tails (last `length` PTUs before midnight) of the days used; NaN where unknown."""
    chosen = set(days_used)
    tails = []
    for day in history:
        if day.day not in chosen:
            continue
        before = np.asarray(day.before, dtype=float) if day.before is not None else np.zeros(0)
        tail = np.full(length, np.nan)
        take = min(length, before.size)
        if take:
            tail[length - take :] = before[before.size - take :]
        tails.append(tail)
    return np.vstack(tails).mean(axis=0) if tails else np.full(length, np.nan)


def compute_baseline(
    method: str,
    params: dict,
    *,
    target: DayProfile,
    history: Sequence[DayProfile],
    event_mask: np.ndarray,
    nominated: np.ndarray | None = None,
) -> BaselineResult:
    """Dispatch on a product's method name and parameters; X of Y and NODES take an optional same-day adjustment."""
    params = dict(params or {})
    n = target.values.size
    if method == "nominated":
        if nominated is None or np.asarray(nominated).size != n:
            return BaselineResult(
                np.full(n, np.nan), method, params, (), False, "no D-prognosis was submitted"
            )
        values = baseline_nominated(nominated)
        return BaselineResult(values, method, params, (), bool(np.isfinite(values).all()))
    if method in ("high_x_of_y", "mid_x_of_y", "nodes"):
        if method == "nodes":
            result = baseline_working_days(target, history, days=int(params.get("days", 5)))
        else:
            result = baseline_x_of_y(
                target,
                history,
                x=int(params.get("x", 5)),
                y=int(params.get("y", 10)),
                mode=method.split("_")[0],
                event_mask=event_mask,
            )
        if result.complete and params.get("adjustment"):
            window_ptus, gap_ptus = int(params.get("window_ptus", 4)), int(params.get("gap_ptus", 1))
            adjusted = adjust_same_day(
                result.values,
                target.values,
                event_mask,
                kind=params["adjustment"],
                window_ptus=window_ptus,
                gap_ptus=gap_ptus,
                cap=params.get("cap", 0.2),
                positive_only=bool(params.get("positive_only", False)),
                baseline_before=_tails_mean(history, result.days_used, window_ptus + gap_ptus),
                actual_before=target.before,
            )
            complete = bool(np.isfinite(adjusted).all())
            note = result.note or ("" if complete else "awaiting the readings before the event (adjustment)")
            return BaselineResult(adjusted, method, params, result.days_used, complete, note)
        return BaselineResult(result.values, method, params, result.days_used, result.complete, result.note)
    if method == "meter_before_after":
        values = baseline_meter_before_after(
            target.values,
            event_mask,
            before_ptus=int(params.get("before_ptus", 2)),
            after_ptus=int(params.get("after_ptus", 0)),
            actual_before=target.before,
            actual_after=target.after,
        )
        complete = bool(np.isfinite(values[np.asarray(event_mask, dtype=bool)]).all())
        return BaselineResult(
            values, method, params, (), complete, "" if complete else "awaiting the readings around the event"
        )
    if method == "regression":
        return baseline_regression(target, history, y=int(params.get("y", 20)), event_mask=event_mask)
    if method == "temperature":
        return baseline_temperature(
            target, history, y=int(params.get("y", 30)), bucket_minutes=int(params.get("bucket_minutes", 15))
        )
    raise ValueError(f"unknown baseline method {method!r}")


def delivered_flex(direction: str, baseline: np.ndarray, metered: np.ndarray) -> np.ndarray:
    """Up: baseline − metered (less consumption); down: metered − baseline."""
    baseline, metered = np.asarray(baseline, dtype=float), np.asarray(metered, dtype=float)
    if direction == "up":
        return baseline - metered
    if direction == "down":
        return metered - baseline
    raise ValueError("direction is 'up' or 'down'")


@dataclass(frozen=True)
class VerificationResult:
    baseline: np.ndarray
    metered: np.ndarray
    delivered: np.ndarray
    contracted: np.ndarray
    ratio: np.ndarray
    status: np.ndarray


# Float slack for "within tolerance": delivered ≥ (1 − tolerance) × contracted − 1e-9 kW, so that 89.1 of 99 kW at
# 10 % (89.1 / 99 = 0.8999999999999999 in binary floating point) counts as delivered. Meter values have 0.001 kW
# resolution, so the slack never turns a real shortfall into a delivery.
TOLERANCE_SLACK_KW = 1e-9


def verify_delivery(
    direction: str, baseline: np.ndarray, metered: np.ndarray, contracted: np.ndarray, *, tolerance: float
) -> VerificationResult:
    """Per PTU, for arrays of any shape (one asset, or (assets, PTUs) in batch): delivered, ratio = delivered /
    contracted and a status. Within tolerance (delivered ≥ (1 − tolerance) × contracted) is "delivered"; a
    positive delivery below that "partial"; delivered ≤ 0 "failed"; missing baseline or meter data
    "awaiting_data"; contracted ≤ 0 "not_contracted"."""
    baseline, metered, contracted = (np.asarray(a, dtype=float) for a in (baseline, metered, contracted))
    delivered = delivered_flex(direction, baseline, metered)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(contracted > 0, delivered / np.where(contracted > 0, contracted, 1), np.nan)
        within = delivered >= (1 - tolerance) * contracted - TOLERANCE_SLACK_KW
    status = np.full(contracted.shape, "not_contracted", dtype=object)
    active = contracted > 0
    missing = active & ~(np.isfinite(baseline) & np.isfinite(metered))
    status[active & within] = "delivered"
    status[active & ~within & (delivered > 0)] = "partial"
    status[active & (delivered <= 0)] = "failed"
    status[missing] = "awaiting_data"
    return VerificationResult(baseline, metered, delivered, contracted, ratio, status)


verify_delivery_batch = verify_delivery  # the same vectorised code handles (assets, PTUs) arrays


def accuracy_scores(predicted: np.ndarray, actual: np.ndarray) -> dict:
    """Bias = mean(pred − actual) / mean(actual); nMAE = mean(|pred − actual|) / mean(|actual|); NaN ignored."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    valid = np.isfinite(predicted) & np.isfinite(actual)
    if not valid.any():
        return {"bias": None, "nmae": None, "n": 0}
    error = predicted[valid] - actual[valid]
    mean_actual, mean_abs = float(np.mean(actual[valid])), float(np.mean(np.abs(actual[valid])))
    return {
        "bias": float(np.mean(error) / mean_actual) if mean_actual else None,
        "nmae": float(np.mean(np.abs(error)) / mean_abs) if mean_abs else None,
        "n": int(valid.sum()),
    }


def score_methods(
    days: Sequence[DayProfile],
    methods: dict[str, dict],
    *,
    history: Sequence[DayProfile] | None = None,
    window: tuple[int, int] | None = EVENING,
) -> dict[str, dict]:
    """Score each method on `days` without activation: pretend an event in `window` (local minutes, start and
    end; None = whole day), build the baseline from `history` (default: `days`) and compare to the load.
    Returns {method: accuracy_scores(...) over all scored PTUs, plus "days" = days scored}."""
    history = days if history is None else history
    scores: dict[str, dict] = {}
    for name, params in methods.items():
        predicted, actual = [], []
        for target in days:
            if target.is_event_day or not target.complete:
                continue
            slots = np.asarray(target.slot_minutes)
            mask = (
                np.ones(slots.size, dtype=bool)
                if window is None
                else (slots >= window[0]) & (slots < window[1])
            )
            result = compute_baseline(name, params, target=target, history=history, event_mask=mask)
            if result.complete:
                predicted.append(result.values[mask])
                actual.append(target.values[mask])
        scores[name] = (
            accuracy_scores(np.concatenate(predicted), np.concatenate(actual))
            if predicted
            else {"bias": None, "nmae": None, "n": 0}
        )
        scores[name]["days"] = len(predicted)
    return scores


def baseline_x_of_y_batch(
    history: np.ndarray, eligible: np.ndarray, window: np.ndarray, *, x: int, y: int, mode: str = "high"
) -> np.ndarray:
    """Vectorised High/Mid X of Y for many assets on a common slot grid: history (assets, days, slots), oldest day
    first, NaN = missing; eligible (assets, days) False for event days and the other day type. Days with a gap are
    dropped. Returns (assets, slots), NaN for assets with fewer than X eligible days. Same selection as
    `baseline_x_of_y` (ties keep the more recent day)."""
    if not 0 < x <= y:
        raise ValueError("need 0 < x <= y")
    if mode not in ("high", "mid"):
        raise ValueError("mode is 'high' or 'mid'")
    recent_first = history[:, ::-1]
    eligible = eligible[:, ::-1] & np.isfinite(recent_first).all(axis=2)
    usable = eligible & (np.cumsum(eligible, axis=1) <= y)
    n_usable = usable.sum(axis=1)
    score = np.where(usable, recent_first[:, :, window].mean(axis=2), -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")  # usable days first, highest load first
    offset = np.zeros(len(history), dtype=int)
    if mode == "mid":
        surplus = np.maximum(n_usable - x, 0)
        offset = surplus - surplus // 2
    picks = np.minimum(offset[:, None] + np.arange(x)[None, :], order.shape[1] - 1)
    chosen = np.take_along_axis(order, picks, axis=1)
    values = np.take_along_axis(recent_first, chosen[:, :, None], axis=1).mean(axis=1)
    values[n_usable < x] = np.nan
    return values


def adjust_same_day_batch(
    baseline: np.ndarray,
    actual: np.ndarray,
    event_mask: np.ndarray,
    *,
    kind: str = "additive",
    window_ptus: int = 4,
    gap_ptus: int = 1,
    cap: float | None = 0.2,
    positive_only: bool = False,
    baseline_before: np.ndarray | None = None,
    actual_before: np.ndarray | None = None,
) -> np.ndarray:
    """`adjust_same_day` for (assets, slots) arrays sharing one event mask; a row with a gap in its window, or a
    window reaching before the data given (`baseline_before` / `actual_before`: (assets, PTUs) just before the
    day, last one last), is NaN (waits for its inputs), as in the single-asset function."""
    baseline = np.asarray(baseline, dtype=float)
    event = np.flatnonzero(event_mask)
    if event.size == 0 or window_ptus <= 0:
        return baseline.copy()
    end = int(event[0]) - gap_ptus
    start = end - window_ptus
    base_window = _span_rows(baseline, baseline_before, start, end)
    actual_window = _span_rows(np.asarray(actual, dtype=float), actual_before, start, end)
    if base_window is None or actual_window is None:
        return np.full(baseline.shape, np.nan)
    mean_base = base_window.mean(axis=1)
    valid = np.isfinite(base_window).all(axis=1) & np.isfinite(actual_window).all(axis=1)
    if kind == "additive":
        adjustment = (actual_window - base_window).mean(axis=1)
        if cap is not None:
            limit = cap * np.abs(mean_base)
            adjustment = np.clip(adjustment, -limit, limit)
        if positive_only:
            adjustment = np.maximum(adjustment, 0.0)
        return np.where(valid[:, None], baseline + adjustment[:, None], np.nan)
    if kind == "multiplicative":
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.where(mean_base != 0, actual_window.mean(axis=1) / mean_base, 1.0)
        if cap is not None:
            factor = np.clip(factor, 1 - cap, 1 + cap)
        if positive_only:
            factor = np.maximum(factor, 1.0)
        return np.where(valid[:, None], baseline * factor[:, None], np.nan)
    raise ValueError("kind is 'additive' or 'multiplicative'")


# --- batch forms used by the production verification path -----------------------------------------------------
# Each performs the arithmetic of its single-asset counterpart in the same order, so a batch result equals the
# per-contract result bit for bit (tests/settlement/test_verification_batch.py compares them).


def align_batch(values: np.ndarray, slot_minutes: np.ndarray, target_slots: np.ndarray) -> np.ndarray:
    """`align` for many rows of one history day at once: values (rows, PTUs of that day) -> (rows, target slots)."""
    values = np.asarray(values, dtype=float)
    rows = values.shape[0]
    sums = np.zeros((rows, 1440 // 15))
    counts = np.zeros((rows, 1440 // 15))
    index = (np.asarray(slot_minutes) // 15).astype(int)
    for position, slot in enumerate(index):  # in PTU order, as np.add.at adds in `align`
        column = values[:, position]
        finite = np.isfinite(column)
        sums[finite, slot] += column[finite]
        counts[finite, slot] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        by_slot = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    occurs = np.zeros(1440 // 15, dtype=bool)
    occurs[index] = True
    if occurs.any() and not occurs.all():
        by_slot = _fill_skipped_slots(by_slot, occurs)
    return by_slot[:, (np.asarray(target_slots) // 15).astype(int)]


@dataclass(frozen=True)
class XOfYBatch:
    """High/Mid X of Y for many rows: values (rows, slots), NaN where fewer than X like-days; `chosen` (rows, X)
    indexes the chosen days (oldest-first day axis); `like_days` (rows, days) marks the Y most recent like-days."""

    values: np.ndarray
    chosen: np.ndarray
    like_days: np.ndarray

    @property
    def complete(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)


def baseline_x_of_y_rows(
    history: np.ndarray, like: np.ndarray, window: np.ndarray, *, x: int, y: int, mode: str = "high"
) -> XOfYBatch:
    """`baseline_x_of_y` for many rows sharing one event window: history (rows, days, slots) aligned on the target
    day's slots, oldest day first; like (rows, days) True for complete, non-event days of the target's day type.
    The Y most recent like-days are ranked by their mean load in the window (ties keep the more recent day)."""
    if not 0 < x <= y:
        raise ValueError("need 0 < x <= y")
    if mode not in ("high", "mid"):
        raise ValueError("mode is 'high' or 'mid'")
    recent_first = np.ascontiguousarray(history[:, ::-1])
    like_recent = np.asarray(like, dtype=bool)[:, ::-1]
    usable = like_recent & (np.cumsum(like_recent, axis=1) <= y)
    n_usable = usable.sum(axis=1)
    window = _window(window, history.shape[2])
    scores = np.ascontiguousarray(recent_first[:, :, window]).mean(axis=2)
    score = np.where(usable, scores, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")  # usable days first, highest load first
    offset = np.zeros(len(history), dtype=int)
    if mode == "mid":
        surplus = np.maximum(n_usable - x, 0)
        offset = surplus - surplus // 2
    picks = np.minimum(offset[:, None] + np.arange(x)[None, :], order.shape[1] - 1)
    chosen = np.take_along_axis(order, picks, axis=1)
    values = np.take_along_axis(recent_first, chosen[:, :, None], axis=1).mean(axis=1)
    values[n_usable < x] = np.nan
    days = history.shape[1]
    return XOfYBatch(values, days - 1 - chosen, usable[:, ::-1])


def tails_mean_batch(tails: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """`_tails_mean` for many rows: tails (rows, days, length) are the previous-day tails of each history day
    (oldest first), chosen (rows, X) the days used; their mean, added oldest first as the single-asset form does."""
    ordered = np.sort(chosen, axis=1)
    return np.take_along_axis(tails, ordered[:, :, None], axis=1).mean(axis=1)


def _span_rows(values: np.ndarray, before: np.ndarray | None, start: int, end: int) -> np.ndarray | None:
    """`_span` for (rows, PTUs) arrays, without the next day (adjustment windows end before the event)."""
    head = np.asarray(before, dtype=float) if before is not None else np.zeros((values.shape[0], 0))
    if start < -head.shape[1] or end > values.shape[1]:
        return None
    if start >= 0:
        return values[:, start:end]
    return np.concatenate([head, values], axis=1)[:, start + head.shape[1] : end + head.shape[1]]
