from celery import shared_task

from flexmarket.runs import LeasedRunTask
from settlement import services


@shared_task(name="settlement.verification_run", base=LeasedRunTask)
def verification_run_task(run_id: int) -> str | None:
    """Thin and idempotent: the run is claimed under a lease, so a second delivery changes nothing."""
    run = services.verification_run_execute(run_id=run_id)
    return (run.outcome or run.state) if run else None


@shared_task(name="settlement.verification_runs_batch", base=LeasedRunTask)
def verification_runs_task(run_ids: list[int]) -> dict:
    """Thin and idempotent: the runs are claimed under a lease and verified together in one batch."""
    return services.verification_runs_execute(run_ids=run_ids)


@shared_task(name="settlement.verifications_run_due")
def verifications_run_due_task() -> int:
    """Safety net: queue verification runs for recent contracts not yet verified."""
    return len(services.verification_runs_request_due())


@shared_task(name="settlement.verification_runs_sweep")
def verification_runs_sweep_task() -> dict:
    report = services.verification_runs_sweep()
    return {"requeued": report.requeued, "failed": report.failed}


@shared_task(name="settlement.accuracy_compute_due")
def accuracy_compute_due_task() -> int:
    """Daily: score the baseline methods of every asset with recent readings (idempotent within a day)."""
    return len(services.accuracy_compute_due())
