from celery import shared_task

from flexmarket.runs import LeasedRunTask
from grid.services import (
    forecast_run_execute,
    forecast_runs_sweep,
    network_model_load_execute,
    network_model_loads_sweep,
    power_flow_run_execute,
    power_flow_runs_sweep,
)


@shared_task(name="grid.power_flow_run", base=LeasedRunTask)
def power_flow_run_task(run_id: int) -> str | None:
    """Thin and idempotent: the run is claimed under a lease, so a second delivery changes nothing."""
    run = power_flow_run_execute(run_id=run_id)
    return run.state if run else None


@shared_task(name="grid.power_flow_runs_sweep")
def power_flow_runs_sweep_task() -> dict:
    report = power_flow_runs_sweep()
    return {"requeued": report.requeued, "failed": report.failed}


@shared_task(name="grid.network_model_load", base=LeasedRunTask)
def network_model_load_task(run_id: int) -> str | None:
    """Thin and idempotent: the load is claimed under a lease, so a second delivery changes nothing."""
    run = network_model_load_execute(run_id=run_id)
    return run.state if run else None


@shared_task(name="grid.network_model_loads_sweep")
def network_model_loads_sweep_task() -> dict:
    report = network_model_loads_sweep()
    return {"requeued": report.requeued, "failed": report.failed}


@shared_task(name="grid.forecast_run", base=LeasedRunTask)
def forecast_run_task(run_id: int) -> str | None:
    """Thin and idempotent: the forecast is claimed under a lease, so a second delivery changes nothing."""
    run = forecast_run_execute(run_id=run_id)
    return run.state if run else None


@shared_task(name="grid.forecast_runs_sweep")
def forecast_runs_sweep_task() -> dict:
    report = forecast_runs_sweep()
    return {"requeued": report.requeued, "failed": report.failed}
