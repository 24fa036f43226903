"""The CalTRACK-style temperature baseline against hand-built cases, a plain reference, and the gaming case."""

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement import baselines as b

TZ = "Europe/Amsterdam"
TARGET = date(2026, 1, 19)  # a Monday


def profile(d: date, values, temperatures, *, event=False, tz=TZ):
    slots = b.day_slot_minutes(d, tz)
    n = len(slots)
    values = np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()
    temps = None if temperatures is None else np.broadcast_to(np.asarray(temperatures, float), (n,)).copy()
    return b.DayProfile(d, values, slots, event, d.weekday() >= 5, temperatures=temps)


def weekdays_before(target: date, count: int) -> list[date]:
    days, d = [], target
    while len(days) < count:
        d -= timedelta(days=1)
        if d.weekday() < 5:
            days.append(d)
    return days


def heating_load(temperatures, *, a=50.0, slope=4.0, balance=14.0):
    return a + slope * np.maximum(0.0, balance - np.asarray(temperatures, dtype=float))


def day_temperatures(mean: float, swing: float = 4.0, n: int = 96) -> np.ndarray:
    hours = np.arange(n) / 4
    return mean + swing * np.sin(2 * np.pi * (hours - 9) / 24)


def history_days(target=TARGET, count=15, load=heating_load):
    days = []
    for k, d in enumerate(weekdays_before(target, count)):
        temps = day_temperatures(2.0 + (7 * k) % 29)  # means 2..30 °C in a mixed order: every stretch of days
        # has weather on both sides of the balance points
        days.append(profile(d, load(temps), temps))
    return days


def test_a_heating_relation_is_recovered_exactly():
    history = history_days()
    temps = day_temperatures(6.0)
    result = b.baseline_temperature(profile(TARGET, 0, temps), history)
    assert result.complete
    assert np.allclose(result.values, heating_load(temps), atol=1e-8)
    assert result.params["balance_points"]["720"] == [14.0, None]  # 12:00
    assert len(result.days_used) == 15


def test_the_balance_point_grid_has_48_candidates_simplest_first():
    candidates = b.temperature_candidates()
    assert len(candidates) == 48 and candidates[0] == (None, None)
    assert all(h <= c for h, c in candidates if h is not None and c is not None)


def test_a_cooling_relation_is_recovered_exactly():
    def cooling(t):
        return 30.0 + 2.5 * np.maximum(0.0, np.asarray(t) - 20.0)

    history = history_days(load=cooling)
    temps = day_temperatures(24.0)
    result = b.baseline_temperature(profile(TARGET, 0, temps), history)
    assert np.allclose(result.values, cooling(temps), atol=1e-8)
    assert result.params["balance_points"]["900"] == [None, 20.0]  # 15:00


@pytest.mark.parametrize("bucket_minutes", [15, 30, 60])
def test_every_bucket_size_recovers_the_relation(bucket_minutes):
    temps = day_temperatures(6.0)
    result = b.compute_baseline(
        "temperature",
        {"bucket_minutes": bucket_minutes},
        target=profile(TARGET, 0, temps),
        history=history_days(),
        event_mask=np.zeros(96, dtype=bool),
    )
    assert np.allclose(result.values, heating_load(temps), atol=1e-8)
    assert len(result.params["balance_points"]) == 1440 // bucket_minutes


def test_a_bucket_size_that_does_not_divide_the_hour_is_refused():
    with pytest.raises(ValueError, match="bucket_minutes"):
        b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history_days(), bucket_minutes=45)


def test_a_load_without_weather_dependence_is_its_hourly_mean():
    history = history_days(load=lambda t: np.full(np.shape(t), 42.0))
    result = b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history)
    assert np.allclose(result.values, 42.0)
    assert result.params["balance_points"]["0"] == [None, None]  # the simplest model wins a tie


def test_a_negative_heating_slope_is_not_accepted():
    # Load falls as it gets colder: no degree term may explain that, the intercept-only model is kept.
    history = history_days(load=lambda t: 100.0 - 3.0 * np.maximum(0.0, 14.0 - np.asarray(t)))
    result = b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history)
    fit_hours = result.params["balance_points"]
    assert all(points[0] is None for points in fit_hours.values())


def test_event_days_other_day_types_and_days_without_temperatures_are_left_out():
    history = history_days(count=6)
    history[0] = profile(history[0].day, 9999.0, day_temperatures(5), event=True)
    history[1] = profile(history[1].day, 9999.0, None)
    saturday = TARGET - timedelta(days=2)
    history.append(profile(saturday, 9999.0, day_temperatures(5)))
    result = b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history)
    assert not result.complete  # 4 usable weekdays < 5
    assert "only 4 like-days" in result.note and np.isnan(result.values).all()
    assert len(result.days_used) == 4


def test_five_like_days_are_enough():
    history = history_days(count=5)
    result = b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history)
    assert result.complete and len(result.days_used) == b.MIN_TEMPERATURE_DAYS


def test_only_the_y_most_recent_like_days_are_used():
    history = history_days(count=15)
    result = b.baseline_temperature(profile(TARGET, 0, day_temperatures(5)), history, y=7)
    assert sorted(result.days_used, reverse=True) == weekdays_before(TARGET, 7)


def test_missing_target_temperatures_wait_for_data():
    temps = day_temperatures(5.0)
    temps[70] = np.nan
    result = b.baseline_temperature(profile(TARGET, 0, temps), history_days())
    assert not result.complete and result.note == "awaiting the day's temperatures"
    assert np.isnan(result.values[70]) and np.isfinite(np.delete(result.values, 70)).all()
    no_temperatures = b.baseline_temperature(profile(TARGET, 0, None), history_days())
    assert not no_temperatures.complete and np.isnan(no_temperatures.values).all()


@pytest.mark.parametrize(("target", "n"), [(date(2026, 3, 30), 92), (date(2026, 10, 26), 100)])
def test_dst_days_in_history_and_as_target(target, n):
    """History across a DST switch pools by wall-clock hour; a 92/100-PTU target gets its own PTU count."""
    switch = target - timedelta(days=1)  # the Sunday of the switch: shift it to a working day
    history = []
    for k in range(12):
        d = target - timedelta(days=k + 1)
        temps = day_temperatures(2 + 1.5 * k, n=len(b.day_slot_minutes(d, TZ)))
        p = profile(d, heating_load(temps), temps)
        history.append(
            b.DayProfile(p.day, p.values, p.slot_minutes, False, False, temperatures=p.temperatures)
        )
    assert any(len(day.values) == n for day in history if day.day == switch)
    temps = day_temperatures(6, n=len(b.day_slot_minutes(target, TZ)))
    result = b.baseline_temperature(profile(target, 0, temps), history)
    assert result.complete and np.allclose(result.values, heating_load(temps), atol=1e-8)
    dst_target = profile(switch, 0, day_temperatures(6, n=n))
    dst_target = b.DayProfile(
        switch, dst_target.values, dst_target.slot_minutes, temperatures=dst_target.temperatures
    )
    on_switch = b.baseline_temperature(dst_target, [d for d in history if d.day < switch])
    assert on_switch.values.size == n and on_switch.complete
    assert np.allclose(on_switch.values, heating_load(dst_target.temperatures), atol=1e-8)


def test_dispatch_by_product_method_name():
    history = history_days()
    temps = day_temperatures(6)
    mask = np.zeros(96, dtype=bool)
    mask[68:72] = True
    result = b.compute_baseline(
        "temperature", {"y": 10}, target=profile(TARGET, 0, temps), history=history, event_mask=mask
    )
    assert result.method == "temperature" and result.params["y"] == 10 and len(result.days_used) == 10
    assert np.allclose(result.values, heating_load(temps), atol=1e-8)


# --- the weather changes in the afternoon, and the gaming case ---------------------------------------


def _afternoon_cold_snap():
    """Heating load; on the target day a cold front arrives at 12:00 and the temperature falls by 10 °C."""
    history = history_days(count=20)
    temps = day_temperatures(12.0)
    temps[48:] -= 10.0
    actual = heating_load(temps)
    mask = np.zeros(96, dtype=bool)
    mask[68:80] = True  # 17:00-20:00
    return history, temps, actual, mask


def test_the_temperature_model_beats_the_like_day_regression_when_the_afternoon_turns_cold():
    history, temps, actual, mask = _afternoon_cold_snap()
    target = profile(TARGET, actual, temps)
    temperature = b.compute_baseline("temperature", {}, target=target, history=history, event_mask=mask)
    regression = b.compute_baseline("regression", {}, target=target, history=history, event_mask=mask)
    error_t = np.mean(np.abs(temperature.values[mask] - actual[mask]))
    error_r = np.mean(np.abs(regression.values[mask] - actual[mask]))
    assert error_t < 1e-6 < error_r  # exact for the temperature model; the regression misses the front


def test_raising_the_morning_load_moves_the_regression_but_not_the_temperature_model():
    history, temps, actual, mask = _afternoon_cold_snap()
    gamed = actual.copy()
    gamed[:64] += 80.0  # the ESP runs its load up before the event
    results = {}
    for name in ("temperature", "regression"):
        honest = b.compute_baseline(
            name, {}, target=profile(TARGET, actual, temps), history=history, event_mask=mask
        )
        raised = b.compute_baseline(
            name, {}, target=profile(TARGET, gamed, temps), history=history, event_mask=mask
        )
        results[name] = raised.values[mask] - honest.values[mask]
    assert np.array_equal(results["temperature"], np.zeros(mask.sum()))
    assert (results["regression"] > 1.0).all()


def test_score_methods_ranks_the_temperature_model_beside_the_others():
    days = history_days(count=25)[::-1]  # oldest first; each day different weather
    methods = {
        "temperature": {},
        "temperature_hourly": {"bucket_minutes": 60},
        "regression": {"y": 20},
        "high_x_of_y": {"x": 5, "y": 10},
    }
    scores = {
        name: b.score_methods(days, {name.removesuffix("_hourly"): params})[name.removesuffix("_hourly")]
        for name, params in methods.items()
    }
    assert scores["temperature"]["days"] == 20  # the first 5 days only serve as history
    # Hourly buckets pool 4 PTUs a day and pin the balance point exactly; 15-minute buckets of the first scored
    # days see only 5 samples each, so a balance point between them is not identified: small errors remain.
    assert scores["temperature_hourly"]["nmae"] < 1e-9
    assert scores["temperature"]["nmae"] < 0.01
    for other in ("regression", "high_x_of_y"):
        assert scores[other]["nmae"] > 5 * scores["temperature"]["nmae"]


# --- an independent reference ------------------------------------------------------------------------


def reference_temperature_baseline(target, history, y=30, bucket_minutes=15):
    """Straight from docs/baselines.md: pick the like-days, then per hour try every balance-point pair with
    numpy's lstsq on the raw samples, one Python loop per sample."""
    like = sorted(
        (
            d
            for d in history
            if d.day < target.day
            and not d.is_event_day
            and d.is_weekend == target.is_weekend
            and np.isfinite(d.values).all()
            and d.temperatures is not None
            and np.isfinite(d.temperatures).all()
        ),
        key=lambda d: d.day,
        reverse=True,
    )[:y]
    if len(like) < 5:
        return None
    samples: dict[int, list[tuple[float, float]]] = {}
    for d in like:
        for minute, load, temperature in zip(d.slot_minutes, d.values, d.temperatures, strict=True):
            samples.setdefault(int(minute) // bucket_minutes, []).append((float(temperature), float(load)))
    pairs = [(None, None)]
    pairs += [(h, None) for h in (8, 10, 12, 14, 16, 18)]
    pairs += [(None, c) for c in (16, 18, 20, 22, 24, 26)]
    pairs += [(h, c) for h in (8, 10, 12, 14, 16, 18) for c in (16, 18, 20, 22, 24, 26) if h <= c]
    models = {}
    for hour, rows in samples.items():
        best, best_sse = None, float("inf")
        for h, c in pairs:

            def features(t, h=h, c=c):
                row = [1.0]
                if h is not None:
                    row.append(max(0.0, h - t))
                if c is not None:
                    row.append(max(0.0, t - c))
                return row

            x = np.array([features(t) for t, _ in rows])
            yv = np.array([load for _, load in rows])
            if x.shape[1] > 1 and len(rows) <= x.shape[1]:
                continue
            if np.linalg.matrix_rank(x) < x.shape[1]:
                continue
            coefficients = np.linalg.lstsq(x, yv, rcond=None)[0]
            if any(coefficient < 0 for coefficient in coefficients[1:]):
                continue
            sse = float(((x @ coefficients - yv) ** 2).sum())
            if best is None or sse < best_sse - 1e-9 * max(best_sse, 1.0):
                best, best_sse = (features, coefficients), sse
        models[hour] = best
    out = []
    for minute, temperature in zip(target.slot_minutes, target.temperatures, strict=True):
        features, coefficients = models[int(minute) // bucket_minutes]
        out.append(float(np.dot(features(float(temperature)), coefficients)))
    return np.array(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(5, 12),
    y=st.integers(5, 15),
    noise=st.sampled_from([0.0, 0.5, 5.0]),
    bucket_minutes=st.sampled_from([15, 60]),
)
def test_the_engine_matches_the_reference_on_random_inputs(seed, count, y, noise, bucket_minutes):
    rng = np.random.default_rng(seed)
    history = []
    heating, cooling = rng.uniform(0, 6), rng.uniform(0, 6)
    for d in weekdays_before(TARGET, count):
        temps = rng.uniform(-5, 30) + rng.normal(0, 3, 96)
        load = (
            40
            + heating * np.maximum(0, 13 - temps)
            + cooling * np.maximum(0, temps - 21)
            + rng.normal(0, noise, 96)
        )
        history.append(profile(d, load, temps))
    target = profile(TARGET, 0, rng.uniform(-5, 30) + rng.normal(0, 3, 96))
    engine = b.baseline_temperature(target, history, y=y, bucket_minutes=bucket_minutes)
    expected = reference_temperature_baseline(target, history, y=y, bucket_minutes=bucket_minutes)
    assert engine.complete
    np.testing.assert_allclose(engine.values, expected, rtol=1e-6, atol=1e-6)
