from celery import shared_task

from grid.services import power_flow_run_execute


@shared_task(name="grid.power_flow_run", acks_late=True)
def power_flow_run_task(run_id: int) -> str:
    """Thin: run one queued power flow (idempotent: a claimed or finished run is left alone)."""
    return power_flow_run_execute(run_id=run_id).state
