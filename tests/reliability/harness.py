"""Fault injection for leased runs: SIGKILL a real Celery worker mid-run and check that the run still ends once.

Reusable for any run kind (power flow, verification, clearing): describe it with a `Scenario` and call
`kill_mid_run`. The worker runs the pool we recommend for production (prefork) against the Redis broker with
a short lease, so recovery happens within seconds and without any manual step:

- kill="process": only the process executing the task dies (a prefork child OOM-killed). The worker's main
  process requeues the message (`task_reject_on_worker_lost`); the redelivery waits for the dead attempt's lease
  and takes the run over.
- kill="worker": the whole worker (its process group) dies, as a host would. A new worker is started; Redis
  hands it the unacknowledged message after `visibility_timeout` and it takes the run over.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis
from django.conf import settings

from flexmarket.celery import app
from tests.reliability.block_hook import BLOCK, MARKER
from tests.worker import start_worker, stop_worker

# kill="process": the redelivery comes within seconds, well inside the lease, so it must wait for the lease
# (RunBusy -> retry) before it takes over. kill="worker": Redis gives the message back after the visibility
# timeout, which (as in production) exceeds the lease.
LEASE_SECONDS = {"process": 25, "worker": 8}
VISIBILITY_TIMEOUT = {"process": 60, "worker": 12}


@dataclass
class Scenario:
    block: str  # dotted path of a function the run calls after its claim, e.g. "grid.network.run_power_flow"
    start: Callable[[], object]  # queues the run the way production does (the service enqueues on commit)
    state: Callable[[], str]  # reads the run's state from the database
    kill: Literal["process", "worker"]
    pool: str = "prefork"
    running: str = "running"  # the state that shows a claimed run
    final: tuple[str, ...] = ("succeeded", "failed")  # the states a run ends in
    on_blocked: Callable[[], object] | None = None  # called once the run is frozen, before the kill


def worker_env(kill: str, marker: Path, block: str | None) -> dict[str, str]:
    env = {
        "FLEXMARKET_RUN_LEASE_SECONDS": str(LEASE_SECONDS[kill]),
        # A clearing's lease is its product's solver time limit plus this margin (tests set the limit to 1 s).
        "CLEARING_LEASE_MARGIN_SECONDS": str(LEASE_SECONDS[kill] - 1),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT[kill]),
        MARKER: str(marker),
    }
    return env | ({BLOCK: block} if block else {})


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, worker=None) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            log = worker.log.read_text()[-4000:] if worker is not None else ""
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}.\n{log}")
        time.sleep(0.2)


def broker_idle() -> bool:
    """No message waiting in the queue and none delivered but unacknowledged (incl. retries held for later)."""
    client = broker()
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def kill_mid_run(scenario: Scenario, tmp_path: Path, *, timeout: float = 120) -> str:
    """Block the run after its claim, SIGKILL by pid, recover without manual steps; returns the final state.

    Returns only once the broker is idle, so a caller asserting "exactly once" sees every delivery's effect.
    """
    app.conf.task_always_eager = False  # messages go to the real worker (tests/conftest.py restores it)
    broker().flushdb()  # the test's own Redis database: no leftovers from earlier kills
    marker = tmp_path / "blocked.pid"
    worker = start_worker(
        pool=scenario.pool,
        env=worker_env(scenario.kill, marker, scenario.block),
        include=("tests.reliability.block_hook",),
    )
    replacement = None
    try:
        scenario.start()
        wait_until(
            lambda: scenario.state() == scenario.running, timeout=60, what="the run to start", worker=worker
        )
        pid = int(
            wait_until(
                lambda: marker.exists() and marker.read_text(), timeout=60, what="the block", worker=worker
            )
        )
        if scenario.on_blocked:
            scenario.on_blocked()
        if scenario.kill == "process":
            os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            assert scenario.state() == scenario.running  # left behind by the dead worker
            replacement = start_worker(
                pool=scenario.pool, env=worker_env(scenario.kill, marker, None), purge=False
            )
        current = replacement or worker
        wait_until(
            lambda: scenario.state() in scenario.final,
            timeout=timeout,
            what="the run to end",
            worker=current,
        )
        wait_until(broker_idle, timeout=60, what="the broker to drain", worker=current)
        return scenario.state()
    finally:
        for process in (worker, replacement):
            if process is not None:
                stop_worker(process)
