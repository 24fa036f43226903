"""Power-flow runs never stay stuck: leases, takeover, the sweep, any exception recorded, audit (issue 8.5/8.9/8.10)."""

from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import AuditEvent
from flexmarket import runs
from flexmarket.celery import app
from grid import network, services, tasks
from grid.models import PowerFlowRun
from tests.grid.factories import square


@pytest.fixture
def cigre(actor_dso):
    """The 15-bus CIGRE MV network with one zone over it: quick to solve."""
    services.grid_location_create(
        actor=actor_dso, name="CIGRE", code="ean.cigre", geometry=square(10.0, 50.0)
    )
    return services.network_model_create(actor=actor_dso, name="CIGRE MV", example="cigre_mv")


def requested(actor, model, capture, *, send: bool) -> PowerFlowRun:
    with capture(execute=send):
        run = services.power_flow_run_request(actor=actor, network_model=model)
    run.refresh_from_db()
    return run


def make_running(run: PowerFlowRun, *, attempts: int, lease_expires_at) -> None:
    PowerFlowRun.objects.filter(pk=run.pk).update(
        state=runs.RunState.RUNNING,
        attempts=attempts,
        started_at=timezone.now(),
        lease_expires_at=lease_expires_at,
    )


@pytest.mark.django_db
def test_a_successful_run_holds_no_lease_and_its_result_is_audited(
    cigre, actor_dso, django_capture_on_commit_callbacks
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=True)
    assert (run.state, run.attempts, run.lease_expires_at, run.error) == ("succeeded", 1, None, "")
    assert run.queued_at is not None and run.started_at is not None and run.worker
    event = AuditEvent.objects.get(action="power_flow.result", object_id=str(run.pk))
    assert event.actor is None and event.organisation == cigre.dso  # the system, for the DSO
    assert event.after["max_line_loading_percent"] == run.max_line_loading_percent


@pytest.mark.django_db
def test_any_exception_is_recorded_on_the_run_and_audited(
    cigre, actor_dso, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("solver library crashed")

    monkeypatch.setattr(network, "run_power_flow", broken)
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=True)
    assert run.state == "failed" and run.error == "RuntimeError: solver library crashed"
    assert run.finished_at is not None and run.lease_expires_at is None
    assert (
        AuditEvent.objects.get(action="power_flow.failed", object_id=str(run.pk)).after["error"] == run.error
    )


@pytest.mark.django_db
def test_a_failure_while_writing_results_leaves_nothing_half_written(
    cigre, actor_dso, django_capture_on_commit_callbacks, monkeypatch
):
    def broken_statuses(*args, **kwargs):
        raise KeyError("bus 7")

    monkeypatch.setattr(network, "zone_statuses", broken_statuses)
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=True)
    assert run.state == "failed" and run.error == "KeyError: 'bus 7'"
    assert run.results is None and run.max_line_loading_percent is None
    assert not AuditEvent.objects.filter(action="power_flow.result").exists()


@pytest.mark.django_db
def test_an_expected_network_error_shows_its_own_message(
    cigre, actor_dso, django_capture_on_commit_callbacks, monkeypatch
):
    def diverges(*args, **kwargs):
        raise network.NetworkError("The power flow did not converge for this scenario.")

    monkeypatch.setattr(network, "run_power_flow", diverges)
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=True)
    assert run.error == "The power flow did not converge for this scenario."


@pytest.mark.django_db
def test_broker_down_fails_the_run_visibly_instead_of_leaving_it_pending(
    cigre, actor_dso, django_capture_on_commit_callbacks, broker_down
):
    from kombu.exceptions import OperationalError

    with pytest.raises(OperationalError), django_capture_on_commit_callbacks(execute=True):
        services.power_flow_run_request(actor=actor_dso, network_model=cigre)  # the caller hears it (503)
    run = PowerFlowRun.objects.get()
    assert (
        run.state == "failed"
        and "task broker is unreachable" in run.error
        and "Request it again" in run.error
    )


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_503_and_the_run_the_broker_refused_is_failed(
    cigre, dso_user, client_for, broker_down
):
    response = client_for(dso_user).post(f"/api/v1/network-models/{cigre.pk}/power-flow/", {}, format="json")
    assert response.status_code == 503 and response.json()["error"]["code"] == "broker_unavailable"
    run = PowerFlowRun.objects.get()  # never left pending with no message anywhere
    assert run.state == "failed" and "broker is unreachable" in run.error


@pytest.mark.django_db
def test_a_run_whose_message_was_never_sent_is_sent_by_the_sweep(
    cigre, actor_dso, django_capture_on_commit_callbacks
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    assert run.state == "pending" and run.queued_at is None
    assert services.power_flow_runs_sweep().requeued == []  # younger than a lease: maybe just slow
    later = timezone.now() + runs.lease_duration() + timedelta(seconds=1)
    report = runs.run_sweep(PowerFlowRun, task=tasks.power_flow_run_task, now=later)
    assert report.requeued == [run.pk]
    run.refresh_from_db()
    assert (run.state, run.attempts) == ("succeeded", 1)


@pytest.mark.django_db
def test_a_pending_run_no_worker_takes_fails_after_the_last_attempt(
    cigre, actor_dso, django_capture_on_commit_callbacks, settings
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    much_later = (
        timezone.now() + runs.lease_duration() * settings.FLEXMARKET_RUN_MAX_ATTEMPTS + timedelta(days=1)
    )
    report = runs.run_sweep(PowerFlowRun, task=tasks.power_flow_run_task, now=much_later)
    assert report.failed == [run.pk]
    run.refresh_from_db()
    assert run.state == "failed" and "is a Celery worker running?" in run.error


@pytest.mark.django_db
def test_a_run_that_lost_its_worker_is_taken_over_by_the_sweep(
    cigre, actor_dso, django_capture_on_commit_callbacks
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    make_running(run, attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.power_flow_runs_sweep().requeued == [run.pk]
    run.refresh_from_db()
    assert (run.state, run.attempts, run.error) == ("succeeded", 2, "")
    assert AuditEvent.objects.filter(action="power_flow.result", object_id=str(run.pk)).count() == 1


@pytest.mark.django_db
def test_a_running_run_without_a_lease_is_recovered_too(cigre, actor_dso, django_capture_on_commit_callbacks):
    """Runs left `running` before leases existed (or by a writer that forgot one) are not stuck for ever."""
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    make_running(run, attempts=0, lease_expires_at=None)
    assert services.power_flow_runs_sweep().requeued == [run.pk]
    run.refresh_from_db()
    assert run.state == "succeeded"


@pytest.mark.django_db
def test_a_run_that_lost_its_last_attempt_fails_visibly_and_is_audited(
    cigre, actor_dso, django_capture_on_commit_callbacks, settings
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    make_running(
        run,
        attempts=settings.FLEXMARKET_RUN_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(days=1),
    )
    assert services.power_flow_runs_sweep().failed == [run.pk]
    run.refresh_from_db()
    assert run.state == "failed" and "was lost without a result" in run.error
    assert AuditEvent.objects.filter(action="power_flow.failed", object_id=str(run.pk)).exists()


@pytest.mark.django_db
def test_a_delivery_inside_a_valid_lease_waits_instead_of_running_twice(
    cigre, actor_dso, django_capture_on_commit_callbacks
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    assert runs.run_claim(PowerFlowRun, pk=run.pk) == 1
    with pytest.raises(runs.RunBusy) as busy:
        services.power_flow_run_execute(run_id=run.pk)
    assert 0 < busy.value.retry_in <= runs.lease_duration().total_seconds() + 1
    run.refresh_from_db()
    assert (run.state, run.attempts) == ("running", 1)
    assert services.power_flow_runs_sweep().requeued == []  # the lease is valid: nothing to recover


@pytest.mark.django_db
def test_a_finished_run_is_left_alone_by_a_second_delivery(
    cigre, actor_dso, django_capture_on_commit_callbacks
):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=True)
    assert tasks.power_flow_run_task.delay(run.pk).get() == "succeeded"
    run.refresh_from_db()
    assert run.attempts == 1
    assert AuditEvent.objects.filter(action="power_flow.result").count() == 1


@pytest.mark.django_db
def test_only_the_current_attempt_can_finish_the_run(cigre, actor_dso, django_capture_on_commit_callbacks):
    run = requested(actor_dso, cigre, django_capture_on_commit_callbacks, send=False)
    make_running(run, attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert runs.run_claim(PowerFlowRun, pk=run.pk) == 2  # taken over: the first worker was presumed lost
    assert not runs.run_finish(PowerFlowRun, pk=run.pk, attempt=1)  # ... and comes back too late
    assert runs.run_finish(PowerFlowRun, pk=run.pk, attempt=2)
    run.refresh_from_db()
    assert (run.state, run.attempts) == ("succeeded", 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_attempt_taken_over_meanwhile_writes_nothing(cigre, actor_dso, monkeypatch):
    """A worker presumed dead that comes back: its result and audit are discarded, the new attempt owns the run."""
    original = network.run_power_flow

    def slow_then_taken_over(*args, **kwargs):
        result = original(*args, **kwargs)
        other = connections.create_connection("default")  # another worker, committing on its own
        with other.cursor() as cursor:
            cursor.execute("UPDATE grid_powerflowrun SET attempts = 2 WHERE state = 'running'")
        other.close()
        return result

    monkeypatch.setattr(network, "run_power_flow", slow_then_taken_over)
    run = services.power_flow_run_request(actor=actor_dso, network_model=cigre)  # runs inline after commit
    run.refresh_from_db()
    assert (run.state, run.attempts, run.results) == ("running", 2, None)
    assert not AuditEvent.objects.filter(action__in=["power_flow.result", "power_flow.failed"]).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_dies_ends_failed_with_the_error(cigre, actor_dso, monkeypatch):
    original = network.run_power_flow

    def connection_killed(*args, **kwargs):
        result = original(*args, **kwargs)
        victim = connection.connection.info.backend_pid
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
        other.close()
        return result

    monkeypatch.setattr(network, "run_power_flow", connection_killed)
    run = services.power_flow_run_request(actor=actor_dso, network_model=cigre)  # runs inline after commit
    run.refresh_from_db()
    assert run.state == "failed" and run.finished_at is not None
    assert run.error.startswith("OperationalError") and "terminat" in run.error
    assert run.results is None


def test_power_flow_tasks_are_acknowledged_late_and_requeued_when_the_worker_is_lost():
    task = app.tasks["grid.power_flow_run"]
    assert task.acks_late and task.reject_on_worker_lost
    assert app.conf.task_reject_on_worker_lost and app.conf.worker_prefetch_multiplier == 1


@pytest.mark.django_db
def test_beat_sweeps_power_flow_runs_every_minute():
    sweep = PeriodicTask.objects.get(task="grid.power_flow_runs_sweep")
    assert sweep.enabled and (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    assert "grid.power_flow_runs_sweep" in app.tasks
