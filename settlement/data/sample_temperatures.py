"""Writes sample_temperatures.csv: a synthetic, deterministic hourly outdoor temperature series for the demo.

No weather service is reachable from where this project is built, so the series is made up, not measured: a
January in the Upper Rhine valley as a smooth seasonal mean (about 2 °C), a daily cycle (coldest near 02:00 UTC,
warmest near 14:00 UTC, ±3 °C), passing weather systems (sines of 3.1, 5.3 and 8.7 days, ±6 °C together) and
seeded AR(1) noise (σ 0.4 °C). Run `python settlement/data/sample_temperatures.py` to write it again; the
result is byte-identical.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIRST = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 32 * 24  # a demo replays days 2-32 on its 31 days; day 1 covers the hours before local midnight
PATH = Path(__file__).with_name("sample_temperatures.csv")


def series() -> list[tuple[datetime, float]]:
    rng = random.Random(20260101)
    noise, rows = 0.0, []
    for hour in range(HOURS):
        moment = FIRST + timedelta(hours=hour)
        days = hour / 24
        daily = 3.0 * math.sin(2 * math.pi * (moment.hour - 8) / 24)
        weather = (
            3.0 * math.sin(2 * math.pi * days / 3.1)
            + 2.0 * math.sin(2 * math.pi * days / 5.3 + 1.0)
            + 1.5 * math.sin(2 * math.pi * days / 8.7 + 2.0)
        )
        noise = 0.8 * noise + rng.gauss(0, 0.4)
        rows.append((moment, round(2.0 + daily + weather + noise, 1)))
    return rows


def write(path: Path = PATH) -> None:
    lines = ["start,celsius"] + [f"{moment:%Y-%m-%dT%H:%MZ},{celsius}" for moment, celsius in series()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write()
