"""Seconds to refuse the ReDoS input "mon " + "-" * N + " x" (issue 15, item 5), length bound lifted.

The parser splits instead of backtracking, so time grows linearly with N (main: 0.67 s at 10k, 57 s at 100k).
Run: python bench/availability.py
"""

import contextlib
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
django.setup()

from django.conf import settings  # noqa: E402

from flexmarket.errors import DomainError  # noqa: E402
from grid.services import availability_clean  # noqa: E402

settings.FLEXMARKET_AVAILABILITY_MAX_CHARS = 10**9
for n in (10_000, 40_000, 100_000, 1_000_000, 10_000_000):
    started = time.perf_counter()
    with contextlib.suppress(DomainError):
        availability_clean("mon " + "-" * n + " x")
    print(f"N = {n:>10,}: {time.perf_counter() - started:.4f} s")
