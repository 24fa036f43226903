"""Thin Celery tasks for sessions and clearing; schedules live in django-celery-beat (editable in the admin)."""

from celery import shared_task
from django.utils import timezone

from accounts.context import SYSTEM
from flexmarket.runs import LeasedRunTask
from trading import services
from trading.models import ClearingRun
from trading.selectors import session_get


@shared_task(name="trading.sessions_open_ahead")
def sessions_open_ahead_task() -> int:
    return len(services.sessions_open_ahead())


@shared_task(name="trading.gate_closures_process")
def gate_closures_process_task() -> list[int]:
    """Close sessions past gate closure and queue the clearing of auction sessions.

    A session closed whose clearing is never queued (broker down right after the commit) is found by the sweep.
    """
    session_ids = services.sessions_close_due()
    for session_id in session_ids:
        session_clear_task.delay(session_id)
    return session_ids


@shared_task(name="trading.orders_expire_due")
def orders_expire_due_task() -> int:
    return services.orders_expire_due()


@shared_task(
    name="trading.session_clear",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def session_clear_task(self, session_id: int) -> str:
    """Idempotent: the service claims the session under a lease, so a second delivery changes nothing.

    If another worker holds a valid lease, try again when it expires: a dead worker's claim is then taken over.
    """
    run = services.session_clear(session=session_get(pk=session_id), actor=SYSTEM)
    if run.state == ClearingRun.State.RUNNING and run.lease_expires_at:
        wait = (run.lease_expires_at - timezone.now()).total_seconds()
        raise self.retry(countdown=max(1, int(wait) + 1))
    return run.state


@shared_task(name="trading.clearing_runs_sweep")
def clearing_runs_sweep_task() -> dict:
    """Fail clearing runs whose lease expired and queue every auction session still waiting to be cleared."""
    found = services.clearing_runs_sweep()
    for session_id in found["to_clear"]:
        session_clear_task.delay(session_id)
    return found


@shared_task(name="trading.clearing_replay", base=LeasedRunTask)
def clearing_replay_task(run_id: int) -> str | None:
    """Thin and idempotent: the replay is claimed under a lease, so a second delivery changes nothing."""
    replay = services.replay_execute(run_id=run_id)
    return replay.state if replay else None


@shared_task(name="trading.clearing_replays_sweep")
def clearing_replays_sweep_task() -> dict:
    report = services.replays_sweep()
    return {"requeued": report.requeued, "failed": report.failed}
