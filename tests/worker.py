"""Start a real Celery worker process against the test database (PostgreSQL + Redis in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from flexmarket.celery import app


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"


def start_worker() -> subprocess.Popen:
    """Launch `celery worker` with the same settings; returns once it answers a ping."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_TASK_ALWAYS_EAGER": "0"}
    log = Path(settings.VAR_DIR) / "test-worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    app.control.purge() if settings.REDIS_URL else None
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flexmarket",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker exited early; see {log}:\n{log.read_text()[-3000:]}")
        if settings.REDIS_URL:
            replies = app.control.ping(timeout=1.0)
            if replies:
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
        process.kill()
