"""Baseline engine against hand-computed values, DST days, gaps, and properties."""

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement import baselines as b


def day(d: date, values, *, event=False, weekend=None, tz="Europe/Amsterdam"):
    slots = b.day_slot_minutes(d, tz)
    values = np.broadcast_to(np.asarray(values, dtype=float), (len(slots),)).copy()
    return b.DayProfile(d, values, slots, event, d.weekday() >= 5 if weekend is None else weekend)


MONDAY = date(2026, 6, 1)
WINDOW = np.zeros(96, dtype=bool)
WINDOW[68:72] = True


def weekdays_before(target: date, levels):
    """History weekdays before `target` (most recent first) with the given flat load levels."""
    days, d = [], target
    for level in levels:
        d -= timedelta(days=1)
        while d.weekday() >= 5:
            d -= timedelta(days=1)
        days.append(day(d, level))
    return days


def test_high_2_of_4_averages_the_two_highest_days():
    history = weekdays_before(MONDAY, [10, 40, 20, 30])  # most recent first
    result = b.baseline_x_of_y(day(MONDAY, 0), history, x=2, y=4, mode="high", event_mask=WINDOW)
    assert result.complete and np.allclose(result.values, 35)  # (40 + 30) / 2
    assert len(result.days_used) == 2


def test_mid_2_of_4_drops_the_extremes():
    history = weekdays_before(MONDAY, [10, 40, 20, 30])
    result = b.baseline_x_of_y(day(MONDAY, 0), history, x=2, y=4, mode="mid", event_mask=WINDOW)
    assert np.allclose(result.values, 25)  # (30 + 20) / 2


def test_mid_4_of_6_drops_the_highest_and_the_lowest():
    history = weekdays_before(MONDAY, [10, 60, 20, 50, 30, 40])
    result = b.baseline_x_of_y(day(MONDAY, 0), history, x=4, y=6, mode="mid", event_mask=WINDOW)
    assert np.allclose(result.values, 35)  # (20 + 30 + 40 + 50) / 4
    # Five eligible days 10, 60, 20, 50, 30. Mid 3 of 5 drops 60 and 10: (50 + 30 + 20) / 3. Mid 2 of 5 has an
    # odd surplus of 3: two days go from the top (60, 50), one from the bottom (10): (30 + 20) / 2.
    three = b.baseline_x_of_y(day(MONDAY, 0), history[:5], x=3, y=5, mode="mid", event_mask=WINDOW)
    assert np.allclose(three.values, 100 / 3)
    two = b.baseline_x_of_y(day(MONDAY, 0), history[:5], x=2, y=5, mode="mid", event_mask=WINDOW)
    assert np.allclose(two.values, 25)


def test_x_of_y_rejects_bad_parameters():
    with pytest.raises(ValueError):
        b.baseline_x_of_y(day(MONDAY, 0), [], x=2, y=4, mode="low")
    with pytest.raises(ValueError):
        b.baseline_x_of_y(day(MONDAY, 0), [], x=5, y=4)


def test_event_days_days_with_gaps_and_weekends_are_excluded():
    history = weekdays_before(MONDAY, [10, 20, 30, 40])
    history[0] = b.DayProfile(
        history[0].day, history[0].values + 100, history[0].slot_minutes, is_event_day=True
    )
    gap = history[1].values.copy()
    gap[5] = np.nan
    history[1] = b.DayProfile(history[1].day, gap, history[1].slot_minutes)
    history.append(day(MONDAY - timedelta(days=2), 999))  # a Saturday
    result = b.baseline_x_of_y(day(MONDAY, 0), history, x=2, y=4, mode="high", event_mask=WINDOW)
    assert np.allclose(result.values, 35)  # only 30 and 40 are eligible


def test_too_few_days_is_incomplete_not_zero():
    result = b.baseline_x_of_y(day(MONDAY, 0), weekdays_before(MONDAY, [10]), x=2, y=4, event_mask=WINDOW)
    assert not result.complete and np.isnan(result.values).all() and "eligible" in result.note


@pytest.mark.parametrize(("target", "n"), [(date(2026, 3, 30), 96), (date(2026, 10, 26), 96)])
def test_dst_days_in_history_are_aligned_by_wall_clock(target, n):
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    switch = spring if target.month == 3 else autumn
    history_day = day(switch, 0, weekend=False)
    assert history_day.values.size == (92 if switch == spring else 100)
    values = history_day.slot_minutes / 60.0  # load = local hour
    history = [b.DayProfile(switch, values, history_day.slot_minutes), *weekdays_before(target, [0, 0])]
    history = [history[0]] + [b.DayProfile(d.day, d.slot_minutes / 60.0, d.slot_minutes) for d in history[1:]]
    result = b.baseline_x_of_y(day(target, 0), history, x=3, y=3, event_mask=WINDOW)
    assert result.values.size == n
    # Spring: 02:00–03:00 is missing on the switch day and comes from the other days; autumn: the repeated
    # hour's two readings average to the same wall-clock value.
    assert np.allclose(result.values, np.arange(96) * 15 / 60.0)


@pytest.mark.parametrize(("switch", "n"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100)])
def test_baseline_for_a_dst_target_day_has_its_own_ptu_count(switch, n):
    # History: ordinary Sundays with load = local hour of the slot (0, 0.25, ..., 23.75).
    history = [day(switch - timedelta(days=7 * k), np.arange(96) / 4, weekend=True) for k in range(1, 4)]
    target = day(switch, 0, weekend=True)
    mask = np.zeros(n, dtype=bool)
    mask[60:64] = True
    result = b.baseline_x_of_y(target, history, x=2, y=3, event_mask=mask)
    assert result.complete and result.values.size == n
    # By hand: PTUs 8–11 are 02:00–02:45 in autumn (2, 2.25, 2.5, 2.75) and again at 12–15; in spring PTU 8 is
    # 03:00 (3.0) because 02:00–03:00 does not exist.
    expected = (
        [2, 2.25, 2.5, 2.75, 2, 2.25, 2.5, 2.75] if n == 100 else [3, 3.25, 3.5, 3.75, 4, 4.25, 4.5, 4.75]
    )
    assert np.allclose(result.values[8:16], expected)
    assert np.allclose(result.values[-1], 23.75)


def test_additive_adjustment_is_capped():
    baseline = np.full(96, 100.0)
    actual = np.full(96, 150.0)
    adjusted = b.adjust_same_day(
        baseline, actual, WINDOW, kind="additive", window_ptus=4, gap_ptus=1, cap=0.2
    )
    assert np.allclose(adjusted, 120)  # +50 observed, capped at 20% of 100
    uncapped = b.adjust_same_day(baseline, actual, WINDOW, kind="additive", cap=None)
    assert np.allclose(uncapped, 150)


def test_multiplicative_adjustment():
    baseline = np.full(96, 100.0)
    actual = np.full(96, 110.0)
    assert np.allclose(b.adjust_same_day(baseline, actual, WINDOW, kind="multiplicative", cap=0.2), 110)
    assert np.allclose(
        b.adjust_same_day(baseline, np.full(96, 200.0), WINDOW, kind="multiplicative", cap=0.2), 120
    )


def test_meter_before_and_after():
    actual = np.full(96, 50.0)
    actual[66:68] = [40, 60]  # before window mean 50
    actual[72:74] = [70, 90]  # after window mean 80
    flat = b.baseline_meter_before_after(actual, WINDOW, before_ptus=2)
    assert np.allclose(flat[68:72], 50) and flat[10] == 50
    ramp = b.baseline_meter_before_after(actual, WINDOW, before_ptus=2, after_ptus=2)
    assert np.allclose(ramp[68:72], [56, 62, 68, 74])  # linear from 50 to 80 over 4 PTUs


def test_regression_recovers_a_linear_relation():
    history = []
    d = MONDAY
    for level in [10, 20, 30, 40, 50]:
        d -= timedelta(days=1)
        while d.weekday() >= 5:
            d -= timedelta(days=1)
        values = np.full(96, float(level))
        values[68:72] = 2 * level + 5  # evening load = 2 × morning level + 5
        history.append(day(d, values))
    target = np.full(96, 25.0)
    result = b.baseline_regression(day(MONDAY, target), history, y=5, event_mask=WINDOW)
    assert result.complete and np.allclose(result.values[68:72], 55, atol=1e-6)


def test_nominated_and_dispatcher():
    target = day(MONDAY, 0)
    nominated = np.full(96, 42.0)
    assert np.allclose(
        b.compute_baseline(
            "nominated", {}, target=target, history=[], event_mask=WINDOW, nominated=nominated
        ).values,
        42,
    )
    missing = b.compute_baseline("nominated", {}, target=target, history=[], event_mask=WINDOW)
    assert not missing.complete and "D-prognosis" in missing.note
    with pytest.raises(ValueError):
        b.compute_baseline("crystal_ball", {}, target=target, history=[], event_mask=WINDOW)


def test_verification_statuses_and_ratios():
    baseline = np.array([100.0, 100, 100, 100, np.nan, 100])
    metered = np.array([0.0, 50, 100, 150, 20, 90])
    contracted = np.array([100.0, 100, 100, 100, 100, 0])
    result = b.verify_delivery("up", baseline, metered, contracted, tolerance=0.1)
    assert result.delivered[:4].tolist() == [100, 50, 0, -50]
    assert result.status.tolist() == [
        "delivered",
        "partial",
        "failed",
        "failed",
        "awaiting_data",
        "not_contracted",
    ]
    assert result.ratio[1] == 0.5
    down = b.verify_delivery("down", np.array([100.0]), np.array([195.0]), np.array([100.0]), tolerance=0.1)
    assert down.status[0] == "delivered" and down.ratio[0] == pytest.approx(0.95)


def test_accuracy_of_a_perfect_prediction():
    assert b.accuracy_scores(np.array([1.0, 2, 3]), np.array([1.0, 2, 3])) == {
        "bias": 0.0,
        "nmae": 0.0,
        "n": 3,
    }
    assert b.accuracy_scores(np.array([2.0, 2]), np.array([1.0, 1]))["bias"] == 1.0


def test_score_methods_ranks_methods_on_days_without_events():
    days = [day(MONDAY - timedelta(days=k), 50.0 + (k % 3)) for k in range(1, 30)]
    scores = b.score_methods(days, {"high_x_of_y": {"x": 5, "y": 10}, "mid_x_of_y": {"x": 4, "y": 6}})
    assert scores["high_x_of_y"]["n"] > 0 and scores["mid_x_of_y"]["nmae"] is not None


@pytest.mark.parametrize(("mode", "x", "y"), [("high", 3, 10), ("mid", 4, 6), ("mid", 3, 10)])
def test_batch_x_of_y_matches_the_single_asset_function(mode, x, y):
    rng = np.random.default_rng(1)
    history = rng.uniform(10, 100, size=(4, 12, 96))
    history[0, 5:7] = history[0, 4]  # ties: the more recent day wins in both
    eligible = np.ones((4, 12), dtype=bool)
    eligible[1, -1] = False
    history[2, -2, 10] = np.nan  # a day with a gap
    eligible[3, :] = False
    eligible[3, :2] = True  # too few days
    batch = b.baseline_x_of_y_batch(history, eligible, WINDOW, x=x, y=y, mode=mode)
    for asset in range(4):
        days = [
            b.DayProfile(
                MONDAY - timedelta(days=12 - i), history[asset, i], is_event_day=not eligible[asset, i]
            )
            for i in range(12)
        ]
        single = b.baseline_x_of_y(
            b.DayProfile(MONDAY, np.zeros(96)), days, x=x, y=y, mode=mode, event_mask=WINDOW
        )
        assert np.allclose(batch[asset], single.values, equal_nan=True)
    assert np.isnan(batch[3]).all()


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_batch_adjustment_matches_the_single_asset_function(kind):
    rng = np.random.default_rng(2)
    baseline = rng.uniform(10, 100, size=(5, 96))
    actual = rng.uniform(10, 100, size=(5, 96))
    actual[4, 66] = np.nan  # gap in the window: the baseline waits for the reading
    batch = b.adjust_same_day_batch(baseline, actual, WINDOW, kind=kind, window_ptus=4, gap_ptus=1, cap=0.2)
    for asset in range(5):
        single = b.adjust_same_day(baseline[asset], actual[asset], WINDOW, kind=kind, cap=0.2)
        assert np.allclose(batch[asset], single, equal_nan=True)
    assert np.isnan(batch[4]).all()


def test_day_slot_minutes_on_dst_days():
    assert len(b.day_slot_minutes(date(2026, 3, 29), "Europe/Amsterdam")) == 92
    autumn = b.day_slot_minutes(date(2026, 10, 25), "Europe/Amsterdam")
    assert len(autumn) == 100 and list(autumn[8:16]) == [120, 135, 150, 165, 120, 135, 150, 165]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 500), min_size=96, max_size=96), st.integers(1, 5))
def test_baseline_equals_the_load_when_the_load_repeats(profile, x):
    load = np.array(profile)
    history = [b.DayProfile(MONDAY - timedelta(days=k), load.copy()) for k in range(1, 11)]
    target = b.DayProfile(MONDAY, load.copy())
    result = b.baseline_x_of_y(target, history, x=x, y=10, event_mask=WINDOW)
    assert np.allclose(result.values, load)
    regression = b.baseline_regression(target, history, y=10, event_mask=WINDOW)
    assert np.allclose(regression.values, load, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-500, 500), min_size=1, max_size=20), st.sampled_from(["up", "down"]))
def test_delivered_is_zero_when_metered_equals_baseline(values, direction):
    values = np.array(values)
    assert np.allclose(b.delivered_flex(direction, values, values), 0)


def test_regression_skips_a_missing_dst_hour_in_history():
    # Weekday history with load = 2 × level at every slot; the spring-switch day (92 PTUs) lacks 02:00–03:00.
    history = [day(date(2026, 3, 29), 20.0, weekend=False), *weekdays_before(MONDAY, [10, 15, 25, 30])]
    history = [
        b.DayProfile(h.day, h.values * 2 if k else h.values, h.slot_minutes) for k, h in enumerate(history)
    ]
    target = day(MONDAY, 40.0)
    result = b.baseline_regression(target, history, y=10, event_mask=WINDOW)
    # The spring day (flat 20) fits y = x exactly like the others (2×level, flat): every slot predicts 40, and
    # the 02:00–03:00 slots, seen on 4 days only, are fitted without a zero-filled row.
    assert result.complete and np.allclose(result.values, 40.0)


def test_regression_without_pre_event_ptus_is_incomplete():
    history = weekdays_before(MONDAY, [10, 20, 30])
    mask = np.zeros(96, dtype=bool)
    mask[:4] = True
    result = b.baseline_regression(day(MONDAY, 10.0), history, event_mask=mask)
    assert not result.complete and np.isnan(result.values).all() and "before the event" in result.note


def test_score_methods_uses_the_evening_by_wall_clock_on_a_dst_day():
    autumn = date(2026, 10, 25)  # Sunday, 100 PTUs; the evening is PTUs 72–83 on this day
    history = [day(autumn - timedelta(days=7 * k), np.arange(96) / 4, weekend=True) for k in range(1, 4)]
    target = day(autumn, b.day_slot_minutes(autumn, "Europe/Amsterdam") / 60.0, weekend=True)
    scores = b.score_methods([target], {"high_x_of_y": {"x": 2, "y": 3}}, history=history)
    assert scores["high_x_of_y"] == {"bias": 0.0, "nmae": 0.0, "n": 12, "days": 1}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-500, 500).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=50))
def test_accuracy_of_a_perfect_prediction_is_zero(values):
    scores = b.accuracy_scores(np.array(values), np.array(values))
    assert scores["nmae"] == 0.0 and scores["n"] == len(values)
    assert scores["bias"] in (0.0, None)  # None only when the mean load is exactly zero


# --- DST: a skipped clock hour in history is filled by a documented rule ----------------------------------------


def test_the_skipped_spring_hour_of_a_history_day_is_interpolated():
    # High 1 of 3 on Saturday 4 April 2026: the best weekend day is Sunday 29 March, which has no 02:00-02:45.
    saturday, spring = date(2026, 4, 4), date(2026, 3, 29)
    slots = b.day_slot_minutes(spring, "Europe/Amsterdam")
    best = b.DayProfile(spring, 100 + slots / 60.0, slots, is_weekend=True)  # load = 100 + local hour
    others = [day(saturday - timedelta(days=k), 10.0) for k in (1, 7, 8)]  # Fri (weekday), Sat, Fri
    result = b.baseline_x_of_y(day(saturday, 0), [best, *others], x=1, y=3, event_mask=WINDOW)
    assert result.complete and result.days_used == (spring,)
    # 01:45 is 101.75 and 03:00 is 103; the four missing slots lie on the straight line between them.
    assert np.allclose(result.values[7:13], [101.75, 102.0, 102.25, 102.5, 102.75, 103.0])


def test_align_leaves_a_missing_reading_missing():
    spring = date(2026, 3, 29)
    values = np.full(92, 5.0)
    values[7] = np.nan  # 01:45 missing: the skipped hour next to it cannot be interpolated either
    aligned = b.align(day(spring, values, weekend=True), b.STANDARD_SLOTS)
    assert np.isnan(aligned[7:12]).all() and np.isfinite(aligned[12:]).all()


# --- same-day adjustment: waits for its inputs, reads the previous day at midnight ------------------------------


def flat_history(target: date, level: float, *, before=None):
    return [
        b.DayProfile(d.day, d.values, d.slot_minutes, before=None if before is None else np.full(96, before))
        for d in weekdays_before(target, [level] * 5)
    ]


def test_an_adjusted_baseline_waits_for_missing_pre_event_readings():
    target_values = np.full(96, 150.0)
    target_values[65] = np.nan  # one of the four PTUs before the event (gap 1) is missing
    result = b.compute_baseline(
        "high_x_of_y",
        {"x": 5, "y": 5, "adjustment": "additive", "cap": None},
        target=day(MONDAY, target_values),
        history=flat_history(MONDAY, 100.0),
        event_mask=WINDOW,
    )
    assert not result.complete and np.isnan(result.values).all() and "adjustment" in result.note


def test_the_adjustment_window_reaches_into_the_previous_day():
    # Event at 00:30 (PTU 2), window 4 PTUs ending 1 before it: the previous day's 23:15-23:45 and today's 00:00.
    mask = np.zeros(96, dtype=bool)
    mask[2:4] = True
    target = b.DayProfile(MONDAY, np.full(96, 130.0), before=np.full(96, 110.0))
    history = flat_history(MONDAY, 100.0, before=100.0)
    params = {"x": 5, "y": 5, "adjustment": "additive", "cap": None}
    result = b.compute_baseline("high_x_of_y", params, target=target, history=history, event_mask=mask)
    # Errors in the window: 10, 10, 10 (yesterday) and 30 (today): the mean is +15 over every PTU.
    assert result.complete and np.allclose(result.values, 115.0)
    without_yesterday = b.DayProfile(MONDAY, np.full(96, 130.0))
    waiting = b.compute_baseline(
        "high_x_of_y", params, target=without_yesterday, history=history, event_mask=mask
    )
    assert not waiting.complete


def test_a_positive_only_adjustment_never_lowers_the_baseline():
    low = b.adjust_same_day(np.full(96, 100.0), np.full(96, 80.0), WINDOW, cap=None, positive_only=True)
    high = b.adjust_same_day(np.full(96, 100.0), np.full(96, 120.0), WINDOW, cap=None, positive_only=True)
    scaled = b.adjust_same_day(
        np.full(96, 100.0), np.full(96, 80.0), WINDOW, kind="multiplicative", cap=None, positive_only=True
    )
    assert np.allclose(low, 100.0) and np.allclose(high, 120.0) and np.allclose(scaled, 100.0)


# --- meter before / after at midnight --------------------------------------------------------------------------


def test_meter_before_at_midnight_reads_the_previous_day():
    actual = np.full(96, 50.0)
    yesterday = np.full(96, 20.0)
    yesterday[-4:] = [10, 20, 30, 40]
    at_midnight = np.zeros(96, dtype=bool)
    at_midnight[:4] = True
    values = b.baseline_meter_before_after(actual, at_midnight, before_ptus=4, actual_before=yesterday)
    assert np.allclose(values[:4], 25.0)  # (10 + 20 + 30 + 40) / 4
    quarter_past = np.zeros(96, dtype=bool)
    quarter_past[1:3] = True
    values = b.baseline_meter_before_after(actual, quarter_past, before_ptus=4, actual_before=yesterday)
    assert np.allclose(values[1:3], 35.0)  # 20, 30, 40 from yesterday and 50 at 00:00: (20+30+40+50) / 4
    missing = b.baseline_meter_before_after(actual, at_midnight, before_ptus=4)
    assert np.isnan(missing[:4]).all()


def test_meter_after_at_the_end_of_the_day_reads_the_next_day():
    actual = np.full(96, 50.0)
    last_hour = np.zeros(96, dtype=bool)
    last_hour[92:] = True
    values = b.baseline_meter_before_after(
        actual, last_hour, before_ptus=2, after_ptus=2, actual_after=np.full(96, 110.0)
    )
    assert np.allclose(values[92:], [62, 74, 86, 98])  # from 50 to 110 in five steps
    waiting = b.baseline_meter_before_after(actual, last_hour, before_ptus=2, after_ptus=2)
    assert np.isnan(waiting[92:]).all()


# --- strict NODES: the five preceding working days, event days kept -------------------------------------------


def test_nodes_averages_the_five_preceding_working_days_with_event_days():
    # Before Monday 8 June 2026: Fri 5 (event day), Thu 4 (a holiday: not a working day), Wed 3, Tue 2, Mon 1,
    # Fri 29 May. Weekend days and the holiday are skipped; the event day counts.
    target = date(2026, 6, 8)
    history = [
        day(date(2026, 6, 7), 999),
        day(date(2026, 6, 6), 999),
        day(date(2026, 6, 5), 10, event=True),
        day(date(2026, 6, 4), 999, weekend=True),
        day(date(2026, 6, 3), 20),
        day(date(2026, 6, 2), 30),
        day(date(2026, 6, 1), 40),
        day(date(2026, 5, 29), 50),
        day(date(2026, 5, 28), 999),
    ]
    result = b.compute_baseline(
        "nodes", {"days": 5}, target=day(target, 0), history=history, event_mask=WINDOW
    )
    assert result.complete and np.allclose(result.values, 30.0)  # (10 + 20 + 30 + 40 + 50) / 5
    assert result.days_used == (
        date(2026, 5, 29),
        date(2026, 6, 1),
        date(2026, 6, 2),
        date(2026, 6, 3),
        date(2026, 6, 5),
    )


def test_nodes_does_not_refill_a_day_with_a_gap():
    gappy = np.full(96, 20.0)
    gappy[70] = np.nan
    history = [day(date(2026, 6, 5), gappy), *weekdays_before(date(2026, 6, 5), [10, 10, 10, 10, 10])]
    result = b.compute_baseline(
        "nodes", {}, target=day(date(2026, 6, 8), 0), history=history, event_mask=WINDOW
    )
    assert not result.complete and np.isnan(result.values[70]) and "missing" in result.note


def test_nodes_reference_on_random_days():
    # The strict NODES mean against a plain loop over calendar days.
    rng = np.random.default_rng(4)
    target = date(2026, 6, 10)
    history = []
    for k in range(1, 15):
        d = target - timedelta(days=k)
        history.append(
            day(d, rng.uniform(0, 100, 96), event=bool(k % 3 == 0), weekend=d.weekday() >= 5 or k == 4)
        )
    expected, count, k = np.zeros(96), 0, 0
    while count < 5:
        k += 1
        profile = history[k - 1]
        if not profile.is_weekend:
            expected += profile.values
            count += 1
    result = b.baseline_working_days(day(target, 0), history)
    assert np.allclose(result.values, expected / 5)


def test_exactly_the_tolerance_is_delivered_despite_binary_floats():
    result = b.verify_delivery("up", np.array([200.0]), np.array([110.9]), np.array([99.0]), tolerance=0.1)
    assert result.status[0] == "delivered"
    short = b.verify_delivery("up", np.array([200.0]), np.array([110.901]), np.array([99.0]), tolerance=0.1)
    assert short.status[0] == "partial"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10),
    st.integers(1, 6),
    st.integers(0, 2),
    st.lists(st.floats(0, 500), min_size=192, max_size=192),
    st.lists(st.floats(0, 500), min_size=192, max_size=192),
)
def test_midnight_adjustment_matches_a_reference_on_the_joined_days(first, window, gap, base, actual):
    # Reference: join yesterday and today into one 192-PTU array and take the window there, by hand.
    base, actual = np.array(base), np.array(actual)
    mask = np.zeros(96, dtype=bool)
    mask[first : first + 4] = True
    adjusted = b.adjust_same_day(
        base[96:],
        actual[96:],
        mask,
        window_ptus=window,
        gap_ptus=gap,
        cap=None,
        baseline_before=base[:96],
        actual_before=actual[:96],
    )
    end = 96 + first - gap
    expected = base[96:] + np.mean(actual[end - window : end] - base[end - window : end])
    assert np.allclose(adjusted, expected)
