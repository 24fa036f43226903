"""Temperature baseline benchmark: the engine alone, on synthetic heating loads with 30 days of history.

Times `baseline_temperature` for one asset-day with 15-minute (default) and hourly buckets, and one asset's
accuracy scoring (`score_methods` over 50 days with the five methods the accuracy service scores), the work the
daily beat task does per asset.

    python bench/temperature.py [--days 30] [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median  # noqa: E402
from settlement.baselines import STANDARD_SLOTS, DayProfile, baseline_temperature, score_methods  # noqa: E402

ACCURACY_METHODS = {
    "high_x_of_y": {"x": 5, "y": 10},
    "mid_x_of_y": {"x": 4, "y": 6},
    "regression": {"y": 20},
    "temperature": {"y": 30},
}


def days(n: int, seed: int = 5) -> list[DayProfile]:
    rng = np.random.default_rng(seed)
    first = date(2026, 1, 1)
    hours = np.arange(96) / 4
    profiles = []
    for k in range(n):
        day = first + timedelta(days=k)
        temperatures = rng.uniform(-5, 15) + 4 * np.sin(2 * np.pi * (hours - 8) / 24) + rng.normal(0, 0.5, 96)
        shape = 120 + 110 * np.exp(-((hours - 18.5) ** 2) / 3)
        load = (shape + 9 * np.maximum(0, 12 - temperatures)) * rng.uniform(0.97, 1.03, 96)
        profiles.append(
            DayProfile(day, load, STANDARD_SLOTS, is_weekend=day.weekday() >= 5, temperatures=temperatures)
        )
    return profiles


def timed(function, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    history = days(args.days + 1)
    target, past = history[-1], history[:-1]
    print(f"temperature baseline, {args.days} days of history, median of {args.repeat} runs")
    for bucket_minutes in (15, 60):
        seconds = timed(
            lambda b=bucket_minutes: baseline_temperature(target, past, bucket_minutes=b), args.repeat
        )
        print(f"  one asset-day, {bucket_minutes}-minute buckets: {seconds * 1000:.1f} ms")
    scoring = days(50)[::-1]
    seconds = timed(lambda: score_methods(scoring, ACCURACY_METHODS), max(3, args.repeat // 5))
    alone = timed(lambda: score_methods(scoring, {"temperature": {"y": 30}}), max(3, args.repeat // 5))
    print(
        f"  accuracy scoring of one asset (50 days, 4 methods): {seconds:.2f} s, of which temperature {alone:.2f} s"
    )


if __name__ == "__main__":
    main()
