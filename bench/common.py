"""Shared set-up for the benchmarks: the database they run on, printed, and small helpers."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup_django() -> str:
    """Use DATABASE_URL when set, else a throwaway SQLite database; migrate; return a printable description.

    With REDIS_URL set, follow-up tasks (notification mail) are queued as in production, for a worker to run (the
    bench purges its queue at exit); without it they run inline, as in the embedded default."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='fm-bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
    queued = bool(os.environ.get("REDIS_URL"))
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0" if queued else "1"
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    settings = connection.settings_dict
    where = settings.get("HOST") or "local file"
    version = ""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = " " + cursor.fetchone()[0]
    if queued:
        import atexit

        from flexmarket.celery import app

        atexit.register(app.control.purge)
    tasks = "follow-up tasks queued to Redis" if queued else "follow-up tasks run inline"
    return f"{connection.vendor}{version}, database {settings['NAME']} on {where}; {tasks}"


def ean18(number: int) -> str:
    """An EAN-18 with a valid GS1 check digit."""
    from grid.ean import ean18_complete

    return ean18_complete(f"{number:017d}")


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Clock:
    """Wall and this process's CPU time of a block."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
