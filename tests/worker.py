"""Start a real Celery worker process against the test database (PostgreSQL + Redis in CI)."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from flexmarket.celery import app

_names = itertools.count(1)


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def start_worker(
    *,
    pool: str = "solo",
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    include: tuple[str, ...] = (),
    purge: bool = True,
) -> subprocess.Popen:
    """Launch `celery worker` with the same settings; returns once it answers a ping.

    The worker leads its own process group (`os.killpg(worker.pid, SIGKILL)` kills it with its pool children),
    `env` adds environment variables, `include` imports extra modules in it (test hooks), and `purge=False`
    keeps queued messages (a restarted worker must find them).
    """
    name = f"test-{os.getpid()}-{next(_names)}"
    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_TASK_ALWAYS_EAGER": "0", **(env or {})}
    log = Path(settings.VAR_DIR) / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if purge and settings.REDIS_URL:
        app.control.purge()
    command = [sys.executable, "-m", "celery", "-A", "flexmarket", "worker", f"--pool={pool}"]
    if pool == "prefork":
        command.append(f"--concurrency={concurrency}")
    if include:
        command += ["--include", ",".join(include)]
    process = subprocess.Popen(
        [*command, "--loglevel=INFO", "-n", f"{name}@%h"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log = log
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early; see {log}:\n{log.read_text()[-3000:]}")
        if settings.REDIS_URL:
            if app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=1.0):
                return process
        elif "ready." in log.read_text():
            return process
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"Celery worker did not start in time; see {log}")


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait(timeout=20)


def wait_for_run(run, *, timeout: float = 90, states=("succeeded", "failed")):
    """Poll a run row until its state is one of `states`; returns it refreshed (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.state in states:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"{run._meta.label} {run.pk} still {run.state} after {timeout} s")
        time.sleep(0.3)
