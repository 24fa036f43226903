"""Verification benchmark: 10,000 assets x 96 PTUs with 30 days of history each.

Times High 5 of 10 baselines (additive same-day adjustment, capped at 20%) plus delivery verification for all
assets with the vectorised engine, and reports peak memory. Target: under 30 s and under 2 GiB.

    python bench/verification.py [--assets 10000 --days 30]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from settlement.baselines import (  # noqa: E402
    adjust_same_day_batch,
    baseline_x_of_y_batch,
    verify_delivery_batch,
)

N_PTUS = 96


def synthetic(n_assets: int, n_days: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    hours = np.arange(N_PTUS) / 4
    shape = 40 + 30 * np.exp(-((hours - 8) ** 2) / 4) + 50 * np.exp(-((hours - 18.5) ** 2) / 3)
    scale = rng.uniform(0.2, 5.0, (n_assets, 1, 1))
    history = (shape[None, None, :] * scale * rng.normal(1.0, 0.08, (n_assets, n_days, N_PTUS))).astype(
        np.float64
    )
    gaps = rng.random((n_assets, n_days)) < 0.02
    history[gaps, :5] = np.nan
    events = rng.random((n_assets, n_days)) < 0.05
    weekend = (np.arange(n_days) % 7) >= 5
    eligible = ~gaps & ~events & ~weekend[None, :]
    today = shape[None, :] * scale[:, 0, :] * rng.normal(1.0, 0.05, (n_assets, N_PTUS))
    return history, eligible, today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    tracemalloc.start()
    history, eligible, today = synthetic(args.assets, args.days)
    window = np.zeros(N_PTUS, dtype=bool)
    window[68:76] = True
    contracted = np.zeros((args.assets, N_PTUS))
    contracted[:, 68:76] = today[:, 68:76] * 0.3
    metered = today - contracted * np.random.default_rng(5).uniform(0.6, 1.1, (args.assets, 1))

    _, data_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    baseline = baseline_x_of_y_batch(history, eligible, window, x=5, y=10, mode="high")
    # Additive same-day adjustment from the 4 PTUs ending one PTU before the event, capped at 20 %.
    baseline = adjust_same_day_batch(
        baseline, today, window, kind="additive", window_ptus=4, gap_ptus=1, cap=0.2
    )
    baseline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = verify_delivery_batch("up", baseline, metered, contracted, tolerance=0.1)
    verify_seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statuses, counts = np.unique(result.status[:, window], return_counts=True)
    print(f"assets {args.assets}, PTUs {N_PTUS}, history days {args.days}")
    print(f"baseline (High 5 of 10 + additive adjustment): {baseline_seconds:.2f} s")
    print(f"verification:                                  {verify_seconds:.2f} s")
    print(
        f"total:                                         {baseline_seconds + verify_seconds:.2f} s (target < 30 s)"
    )
    print(f"peak traced memory while generating data: {data_peak / 2**20:.0f} MiB")
    print(f"peak traced memory during baseline + verification (data included): {peak / 2**20:.0f} MiB")
    print(f"peak RSS of the whole process: {rss:.0f} MiB (target < 2048 MiB)")
    print("statuses in the event window:", dict(zip(statuses.tolist(), counts.tolist(), strict=True)))


if __name__ == "__main__":
    main()
