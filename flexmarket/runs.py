"""Runs that cannot stay stuck: a claim with a lease, an attempt number that fences, a sweep that recovers.

A *run* is a row that a Celery task works on (a power flow, a verification, a clearing). Its life:

    pending --claim--> running --finish--> succeeded | failed
                          |
                          +-- lease expired (worker lost) --> taken over by the next delivery or the sweep
                              (attempt + 1), or failed once FLEXMARKET_RUN_MAX_ATTEMPTS attempts were lost

Every claim stamps `lease_expires_at = now + FLEXMARKET_RUN_LEASE_SECONDS` and increments `attempts`. Only the
holder of the current attempt can finish the run (`run_finish` is a conditional UPDATE on the attempt number), so
a worker that was presumed dead and comes back cannot overwrite its successor's result. docs/operations.md
describes the states, the recovery paths and the Celery settings they rely on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Task
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from flexmarket.errors import DomainError

logger = logging.getLogger(__name__)


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class LeasedRun(models.Model):
    """The fields a leased run needs; concrete runs add what they compute."""

    State = RunState

    state = models.CharField(max_length=12, choices=RunState.choices, default=RunState.PENDING, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Claims so far; a worker that takes over a lost attempt adds one."
    )
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When a task message was last sent.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the current attempt began.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A running run whose lease has expired is taken over or failed."
    )
    worker = models.CharField(max_length=200, blank=True, help_text="Host and pid of the current attempt.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


Run = TypeVar("Run", bound=models.Model)


class RunBusy(Exception):
    """Another attempt holds an unexpired lease on the run; try again after `retry_in` seconds."""

    def __init__(self, retry_in: float):
        super().__init__(f"The run is held by another attempt for {retry_in:.0f} s more.")
        self.retry_in = retry_in


class RunSuperseded(Exception):
    """The run was taken over (or failed) while this attempt worked; its result is discarded."""


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.FLEXMARKET_RUN_LEASE_SECONDS)


def max_attempts() -> int:
    return settings.FLEXMARKET_RUN_MAX_ATTEMPTS


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def error_text(error: BaseException, expected: tuple[type[BaseException], ...] = ()) -> str:
    """A domain or expected error shows its own message; anything else is prefixed with its type."""
    if isinstance(error, DomainError):
        return error.message
    if expected and isinstance(error, expected):
        return str(error)
    return f"{type(error).__name__}: {error}"


# --- enqueueing --------------------------------------------------------------------------------------


def run_send(model: type[Run], *, pk: int, task: Task, now: datetime | None = None) -> bool:
    """Send one task message for the run now and stamp `queued_at`; False (logged) when the broker refuses."""
    model._base_manager.filter(pk=pk).update(queued_at=now or timezone.now())
    try:
        task.delay(pk)
    except Exception:  # a broker outage must not lose the run: the caller decides what the run records
        logger.exception("Could not queue %s %s", model._meta.label, pk)
        return False
    return True


def run_enqueue_on_commit(run: models.Model, *, task: Task, refuse_when_unavailable: bool = False) -> None:
    """Queue `task(run.pk)` after the surrounding transaction commits.

    If the broker refuses the message (Redis down), the run is failed at once with a clear error rather than
    left `pending` with no message anywhere; the in-memory `run` shows it too. With `refuse_when_unavailable`
    (a run someone asked for, such as a power flow) the broker's error is then raised to the caller, so the
    API answers 503 and the page says so; without it (runs queued as a side effect, such as verification after
    a meter upload, which the safety net requests again) the caller's work stands. A run whose message was sent
    but lost is re-sent by `run_sweep`.
    """
    model = type(run)

    def enqueue() -> None:
        if run_send(model, pk=run.pk, task=task):
            return
        message = (
            "Could not be queued: the task broker is unreachable, so nothing was computed. "
            "Request it again once the service is back."
        )
        now = timezone.now()
        if model._base_manager.filter(pk=run.pk, state=RunState.PENDING).update(
            state=RunState.FAILED, error=message, finished_at=now
        ):
            run.state, run.error, run.finished_at = RunState.FAILED, message, now
        if refuse_when_unavailable:
            raise BrokerOperationalError(message)

    transaction.on_commit(enqueue)


def run_enqueue_many_on_commit(model: type[Run], *, runs: list[models.Model], task: Task, chunk: int) -> None:
    """Queue `task(pks)` once per `chunk` runs after the surrounding transaction commits (runs a worker computes
    together). A message the broker refuses fails its runs at once, as `run_enqueue_on_commit` does."""
    if not runs:
        return

    def enqueue() -> None:
        for first in range(0, len(runs), chunk):
            part = runs[first : first + chunk]
            pks = [run.pk for run in part]
            now = timezone.now()
            model._base_manager.filter(pk__in=pks).update(queued_at=now)
            try:
                task.delay(pks)
                continue
            except Exception:  # as in run_send: the runs record it, the caller's work stands
                logger.exception("Could not queue %s %s", model._meta.label, pks)
            message = (
                "Could not be queued: the task broker is unreachable, so nothing was computed. "
                "Request it again once the service is back."
            )
            model._base_manager.filter(pk__in=pks, state=RunState.PENDING).update(
                state=RunState.FAILED, error=message, finished_at=now
            )
            for run in part:
                run.state, run.error, run.finished_at = RunState.FAILED, message, now

    transaction.on_commit(enqueue)


# --- claiming and finishing --------------------------------------------------------------------------


def run_claim(model: type[Run], *, pk: int, now: datetime | None = None) -> int | None:
    """Claim the run for this worker and return the attempt number, or None when there is nothing to do.

    Claims a pending run, or takes over a running one whose lease has expired (its worker was lost). Raises
    RunBusy while another attempt's lease is valid: a redelivered message retries after the lease instead of
    returning, so a message requeued because its worker died is never silently dropped. A run that has used
    up its attempts is failed here.
    """
    now = now or timezone.now()
    with transaction.atomic():
        try:
            row = (
                model._base_manager.select_for_update(nowait=True)
                .filter(pk=pk)
                .values("state", "attempts", "lease_expires_at")
                .first()
            )
        except DatabaseError:  # the row is locked by an attempt finishing right now
            raise RunBusy(1.0)
        if row is None or row["state"] not in (RunState.PENDING, RunState.RUNNING):
            return None
        expires = row["lease_expires_at"]
        if row["state"] == RunState.RUNNING and expires is not None and expires > now:
            raise RunBusy((expires - now).total_seconds() + 1)
        if row["state"] == RunState.RUNNING and row["attempts"] >= max_attempts():
            _fail_lost(model, pk=pk, attempts=row["attempts"], expired=expires, now=now)
            return None
        attempt = row["attempts"] + 1
        claimed = model._base_manager.filter(pk=pk, state=row["state"], attempts=row["attempts"]).update(
            state=RunState.RUNNING,
            attempts=attempt,
            started_at=now,
            lease_expires_at=now + lease_duration(),
            worker=worker_name(),
        )
    return attempt if claimed else None


def run_finish(
    model: type[Run],
    *,
    pk: int,
    attempt: int,
    state: str = RunState.SUCCEEDED,
    error: str = "",
    now: datetime | None = None,
    **fields: Any,
) -> bool:
    """Record the outcome of `attempt`; False when the run is no longer that attempt's (taken over or failed)."""
    return bool(
        model._base_manager.filter(pk=pk, state=RunState.RUNNING, attempts=attempt).update(
            state=state, error=error, finished_at=now or timezone.now(), lease_expires_at=None, **fields
        )
    )


def run_fail(model: type[Run], *, pk: int, attempt: int, error: str) -> bool:
    """Record a failure of `attempt`, reconnecting first if the exception killed the database connection."""
    if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
        connection.close()
    return run_finish(model, pk=pk, attempt=attempt, state=RunState.FAILED, error=error)


def run_execute(
    model: type[Run],
    *,
    pk: int,
    work: Callable[[Run], dict[str, Any] | None],
    expected: tuple[type[BaseException], ...] = (),
    on_failed: Callable[[Run], None] | None = None,
) -> Run | None:
    """Claim run `pk`, call `work(run)` in one transaction and finish the run with the fields it returns.

    Any exception (a domain error, a bug, a database connection that died) rolls `work` back and fails the
    run with the error's text; `on_failed(run)` then runs, e.g. to write an audit event. If the run was taken
    over meanwhile, `work`'s writes are rolled back and the run is left to its new owner. Returns the run as
    stored afterwards (None if it does not exist); raises RunBusy while another attempt holds it.
    """
    attempt = run_claim(model, pk=pk)
    if attempt is None:
        return model._base_manager.filter(pk=pk).first()
    run = model._base_manager.get(pk=pk)
    try:
        with transaction.atomic():
            fields = work(run) or {}
            if not run_finish(model, pk=pk, attempt=attempt, **fields):
                raise RunSuperseded
    except RunSuperseded:
        logger.warning(
            "%s %s attempt %s was superseded; its result is discarded", model._meta.label, pk, attempt
        )
    except Exception as error:  # every failure is recorded on the run, not only domain errors
        logger.exception("%s %s attempt %s failed", model._meta.label, pk, attempt)
        if run_fail(model, pk=pk, attempt=attempt, error=error_text(error, expected)) and on_failed:
            on_failed(model._base_manager.get(pk=pk))
    return model._base_manager.get(pk=pk)


@dataclass
class Claims:
    """What `run_claim_many` claimed ({pk: attempt}) and how long until the leases it skipped expire (seconds)."""

    attempts: dict[int, int]
    busy_for: float | None = None


def run_claim_many(model: type[Run], *, pks: list[int], now: datetime | None = None) -> Claims:
    """Claim every run of `pks` that is pending, or running with an expired lease, in two queries. Runs another
    attempt holds are left to it (`busy_for`: the caller retries after their leases, as `run_claim` makes a
    single run's task do); runs that have used up their attempts are failed, as `run_claim` does."""
    now = now or timezone.now()
    busy_for = None
    with transaction.atomic():
        query = model._base_manager.filter(pk__in=pks, state__in=[RunState.PENDING, RunState.RUNNING])
        if connection.features.has_select_for_update_skip_locked:
            query = query.select_for_update(skip_locked=True)
        claimable: dict[int, int] = {}
        for pk, state, attempts, expires in query.values_list("pk", "state", "attempts", "lease_expires_at"):
            if state == RunState.RUNNING and expires is not None and expires > now:
                busy_for = max(busy_for or 0.0, (expires - now).total_seconds() + 1)
                continue
            if state == RunState.RUNNING and attempts >= max_attempts():
                _fail_lost(model, pk=pk, attempts=attempts, expired=expires, now=now)
                continue
            claimable[pk] = attempts + 1
        model._base_manager.filter(pk__in=claimable).update(
            state=RunState.RUNNING,
            attempts=models.F("attempts") + 1,
            started_at=now,
            lease_expires_at=now + lease_duration(),
            worker=worker_name(),
        )
    return Claims(claimable, busy_for)


def run_finish_many(
    model: type[Run],
    *,
    attempts: dict[int, int],
    state: str = RunState.SUCCEEDED,
    error: str = "",
    fields: dict[int, dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> int:
    """`run_finish` for many runs, one UPDATE per distinct (attempt, fields); returns how many were still theirs."""
    now = now or timezone.now()
    if (
        state == RunState.FAILED
        and not connection.in_atomic_block
        and connection.connection is not None
        and not connection.is_usable()
    ):
        connection.close()  # the error killed the connection: reconnect to record it
    groups: dict[tuple, list[int]] = {}
    for pk, attempt in attempts.items():
        extra = (fields or {}).get(pk, {})
        groups.setdefault((attempt, tuple(sorted(extra.items()))), []).append(pk)
    finished = 0
    for (attempt, extra), pks in groups.items():
        values = {"state": state, "error": error, "finished_at": now, "lease_expires_at": None, **dict(extra)}
        finished += model._base_manager.filter(pk__in=pks, state=RunState.RUNNING, attempts=attempt).update(
            **values
        )
    return finished


def _fail_lost(model: type[Run], *, pk: int, attempts: int, expired: datetime | None, now: datetime) -> bool:
    when = f" (its lease expired at {expired:%Y-%m-%d %H:%M:%S} UTC)" if expired else ""
    return bool(
        model._base_manager.filter(pk=pk, state=RunState.RUNNING, attempts=attempts).update(
            state=RunState.FAILED,
            error=f"The worker running attempt {attempts} of {max_attempts()} was lost without a result{when}; "
            "not retried again.",
            finished_at=now,
            lease_expires_at=None,
        )
    )


# --- the sweep ---------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def run_sweep(
    model: type[Run],
    *,
    task: Task,
    now: datetime | None = None,
    on_failed: Callable[[Run], None] | None = None,
) -> SweepReport:
    """Recover runs nobody is working on; beat calls this every minute for each kind of run.

    - running, lease expired (or none, e.g. from before leases existed): re-sent, so a worker takes it over (attempt + 1); failed once its attempts are
      used up.
    - pending and not picked up within one lease of its last message (the message was lost, or the process
      died between commit and enqueue): re-sent; failed when nothing picked it up within
      `max_attempts` leases of its creation.
    """
    now = now or timezone.now()
    lease, limit = lease_duration(), max_attempts()
    report = SweepReport()
    expired = model._base_manager.filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True), state=RunState.RUNNING
    )
    for pk, attempts, expires in expired.values_list("pk", "attempts", "lease_expires_at"):
        if attempts >= limit:
            if _fail_lost(model, pk=pk, attempts=attempts, expired=expires, now=now):
                report.failed.append(pk)
        elif run_send(model, pk=pk, task=task, now=now):
            report.requeued.append(pk)
    stale = model._base_manager.filter(state=RunState.PENDING).filter(
        Q(queued_at__lt=now - lease) | Q(queued_at__isnull=True, created_at__lt=now - lease)
    )
    for pk, created_at in stale.values_list("pk", "created_at"):
        if created_at < now - lease * limit:
            minutes = round(lease.total_seconds() * limit / 60)
            if model._base_manager.filter(pk=pk, state=RunState.PENDING).update(
                state=RunState.FAILED,
                error=f"No worker started the run within {minutes} minutes of its request; "
                "is a Celery worker running?",
                finished_at=now,
            ):
                report.failed.append(pk)
        elif run_send(model, pk=pk, task=task, now=now):
            report.requeued.append(pk)
    if on_failed:
        for run in model._base_manager.filter(pk__in=report.failed):
            on_failed(run)
    if report.requeued or report.failed:
        logger.warning("Swept %s: re-sent %s, failed %s", model._meta.label, report.requeued, report.failed)
    return report


# --- the Celery side ---------------------------------------------------------------------------------


class LeasedRunTask(Task):
    """Base for tasks that take a run id: idempotent, so acknowledged late and redelivered if the worker dies.

    `reject_on_worker_lost` requeues the message when the process running it is killed (a prefork child
    OOM-killed, say); the redelivered task then finds the run still leased to the dead attempt, and instead of
    returning it retries once the lease has expired and takes the run over.
    """

    acks_late = True
    reject_on_worker_lost = True
    max_retries = 5

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except RunBusy as busy:
            raise self.retry(countdown=busy.retry_in, exc=busy)
