"""The batch forms of the baselines against their single-asset forms, which serve as the reference: hand-checked
cases, then hypothesis properties that they agree exactly (the production path stores what the single path would)."""

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from settlement import baselines
from settlement.baselines import DayProfile

SPRING, AUTUMN, ORDINARY = date(2026, 3, 29), date(2026, 10, 25), date(2026, 6, 10)
TZ = "Europe/Amsterdam"
kw = st.one_of(st.just(np.nan), st.integers(0, 400_000).map(lambda v: v / 1000))


def test_align_batch_fills_the_skipped_spring_hour_and_averages_the_repeated_autumn_hour():
    spring = np.arange(92, dtype=float)[None, :]
    aligned = baselines.align_batch(spring, baselines.day_slot_minutes(SPRING, TZ), baselines.STANDARD_SLOTS)
    assert aligned[0, 7] == 7 and aligned[0, 12] == 8  # 01:45 and 03:00 as metered
    assert aligned[0, 8:12].tolist() == [7.2, 7.4, 7.6, 7.8]  # 02:00-02:45 on the line between them
    autumn = np.arange(100, dtype=float)[None, :]
    aligned = baselines.align_batch(autumn, baselines.day_slot_minutes(AUTUMN, TZ), baselines.STANDARD_SLOTS)
    assert aligned[0, 8] == (8 + 12) / 2  # 02:00 occurs twice: the mean


@settings(max_examples=60, deadline=None)
@given(
    source=st.sampled_from([SPRING, AUTUMN, ORDINARY]),
    target=st.sampled_from([SPRING, AUTUMN, ORDINARY]),
    data=st.data(),
)
def test_property_align_batch_equals_align_row_by_row(source, target, data):
    n = len(baselines.day_slot_minutes(source, TZ))
    values = data.draw(hnp.arrays(float, (3, n), elements=kw))
    slots, target_slots = baselines.day_slot_minutes(source, TZ), baselines.day_slot_minutes(target, TZ)
    batch = baselines.align_batch(values, slots, target_slots)
    for row in range(3):
        single = baselines.align(DayProfile(source, values[row], slots), target_slots)
        np.testing.assert_array_equal(batch[row], single)


def _profiles(values: np.ndarray, like: np.ndarray, first: date) -> list[DayProfile]:
    """History profiles (oldest first) whose `like` flags the single form derives from event days and gaps."""
    return [
        DayProfile(first + timedelta(days=k), values[k], is_event_day=not like[k])
        for k in range(values.shape[0])
    ]


def test_x_of_y_rows_picks_the_highest_like_days_and_keeps_the_more_recent_on_ties():
    history = np.array([[[1.0] * 4, [5.0] * 4, [3.0] * 4, [5.0] * 4]])  # oldest first
    like = np.array([[True, True, True, True]])
    result = baselines.baseline_x_of_y_rows(history, like, np.ones(4, dtype=bool), x=2, y=4, mode="high")
    assert result.values[0].tolist() == [5.0] * 4 and sorted(result.chosen[0].tolist()) == [1, 3]
    result = baselines.baseline_x_of_y_rows(history, like, np.ones(4, dtype=bool), x=1, y=4, mode="high")
    assert result.chosen[0].tolist() == [3]  # the tie between days 1 and 3 goes to the more recent


def test_x_of_y_rows_without_enough_like_days_is_incomplete_and_lists_the_like_days():
    history = np.ones((1, 4, 3))
    like = np.array([[True, False, True, False]])
    result = baselines.baseline_x_of_y_rows(history, like, np.ones(3, dtype=bool), x=3, y=4)
    assert not result.complete[0] and np.isnan(result.values[0]).all()
    assert np.flatnonzero(result.like_days[0]).tolist() == [0, 2]


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    x=st.integers(1, 6),
    extra=st.integers(0, 6),
    mode=st.sampled_from(["high", "mid"]),
    start=st.integers(0, 11),
    width=st.integers(0, 4),
)
def test_property_x_of_y_rows_equals_baseline_x_of_y(data, x, extra, mode, start, width):
    rows, days, slots = 3, 12, 12
    y = x + extra
    history = data.draw(hnp.arrays(float, (rows, days, slots), elements=st.integers(0, 50).map(float)))
    like = data.draw(hnp.arrays(bool, (rows, days)))
    window = np.zeros(slots, dtype=bool)
    window[start : start + width] = True
    result = baselines.baseline_x_of_y_rows(history, like, window, x=x, y=y, mode=mode)
    first = date(2026, 5, 1)
    for row in range(rows):
        target = DayProfile(first + timedelta(days=days), np.zeros(slots), np.arange(slots) * 15)
        history_profiles = [
            DayProfile(d.day, d.values, np.arange(slots) * 15, is_event_day=d.is_event_day)
            for d in _profiles(history[row], like[row], first)
        ]
        single = baselines.baseline_x_of_y(target, history_profiles, x=x, y=y, mode=mode, event_mask=window)
        np.testing.assert_array_equal(result.values[row], single.values)
        assert bool(result.complete[row]) == single.complete
        if single.complete:
            assert {first + timedelta(days=int(k)) for k in result.chosen[row]} == set(single.days_used)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["additive", "multiplicative"]),
    window_ptus=st.integers(1, 6),
    gap_ptus=st.integers(0, 3),
    first_event=st.integers(0, 11),
    cap=st.sampled_from([None, 0.2, 0.05]),
    positive_only=st.booleans(),
)
def test_property_adjust_same_day_batch_equals_adjust_same_day_across_midnight(
    data, kind, window_ptus, gap_ptus, first_event, cap, positive_only
):
    rows, n = 3, 12
    length = window_ptus + gap_ptus
    baseline = data.draw(hnp.arrays(float, (rows, n), elements=kw))
    actual = data.draw(hnp.arrays(float, (rows, n), elements=kw))
    baseline_before = data.draw(hnp.arrays(float, (rows, length), elements=kw))
    actual_before = data.draw(hnp.arrays(float, (rows, 8), elements=kw))
    mask = np.zeros(n, dtype=bool)
    mask[first_event : first_event + 3] = True
    options = {"kind": kind, "window_ptus": window_ptus, "gap_ptus": gap_ptus, "cap": cap}
    batch = baselines.adjust_same_day_batch(
        baseline,
        actual,
        mask,
        positive_only=positive_only,
        baseline_before=baseline_before,
        actual_before=actual_before,
        **options,
    )
    for row in range(rows):
        single = baselines.adjust_same_day(
            baseline[row],
            actual[row],
            mask,
            positive_only=positive_only,
            baseline_before=baseline_before[row],
            actual_before=actual_before[row],
            **options,
        )
        np.testing.assert_array_equal(batch[row], single)


def test_tails_mean_batch_averages_the_chosen_days_previous_day_tails_oldest_first():
    tails = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, np.nan]]])
    assert baselines.tails_mean_batch(tails, np.array([[2, 0]]))[0, 0] == 3.0
    assert np.isnan(baselines.tails_mean_batch(tails, np.array([[2, 0]]))[0, 1])


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_adjust_same_day_batch_without_the_previous_day_waits_for_it(kind):
    baseline = np.full((1, 8), 10.0)
    mask = np.zeros(8, dtype=bool)
    mask[1:3] = True
    adjusted = baselines.adjust_same_day_batch(baseline, baseline, mask, kind=kind, window_ptus=4, gap_ptus=1)
    assert np.isnan(adjusted).all()
