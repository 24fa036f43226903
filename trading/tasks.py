"""Thin Celery tasks for sessions and clearing; schedules live in django-celery-beat (editable in the admin)."""

from celery import shared_task

from accounts.context import SYSTEM
from trading import services
from trading.selectors import session_get


@shared_task(name="trading.sessions_open_ahead")
def sessions_open_ahead_task() -> int:
    return len(services.sessions_open_ahead())


@shared_task(name="trading.gate_closures_process")
def gate_closures_process_task() -> list[int]:
    """Close sessions past gate closure and queue the clearing of auction sessions."""
    session_ids = services.sessions_close_due()
    for session_id in session_ids:
        session_clear_task.delay(session_id)
    return session_ids


@shared_task(name="trading.session_clear", acks_late=True)
def session_clear_task(session_id: int) -> str:
    """Idempotent: the service claims the session, so a second delivery changes nothing."""
    return services.session_clear(session=session_get(pk=session_id), actor=SYSTEM).state
