"""Verification as leased runs: queued with the data, any failure recorded, recovered by the sweep, audited."""

import io
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import AuditEvent
from flexmarket.celery import app
from settlement import baselines, services, tasks
from settlement.models import DeliveryVerification, VerificationRun
from tests.settlement.fixtures import DELIVERY_DAY, meter_csv


def readings(asset, delivered_kw: float) -> bytes:
    """30 days of flat 200 kW and the delivery day, reduced by `delivered_kw` during the contract (17:00-18:00)."""
    return meter_csv(
        asset,
        DELIVERY_DAY - timedelta(days=30),
        lambda day, index: 200 - delivered_kw if day == DELIVERY_DAY and 68 <= index < 72 else 200,
        days=31,
    )


def upload(actor, data: bytes):
    return services.meter_upload_csv(actor=actor, file=io.BytesIO(data), filename="m.csv")


@pytest.mark.django_db
def test_meter_data_queues_one_run_per_contract_with_the_data(
    actor_esp, settled_setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload(actor_esp, readings(settled_setup["asset"], 100))
        upload(actor_esp, readings(settled_setup["asset"], 90))  # before the first run started: joins it
    run = VerificationRun.objects.get()  # committed with the readings, so no enqueue failure can lose it
    assert (run.contract, run.state, run.reason) == (settled_setup["contract"], "pending", "meter_data")
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_one_pending_run_per_contract_is_a_database_rule(settled_setup):
    VerificationRun.objects.create(contract=settled_setup["contract"], reason="meter_data")
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationRun.objects.create(contract=settled_setup["contract"], reason="safety_net")


@pytest.mark.django_db
def test_a_run_verifies_the_contract_and_audits_the_new_result(
    actor_esp, settled_setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(actor_esp, readings(settled_setup["asset"], 100))
    run = VerificationRun.objects.get()
    assert (run.state, run.outcome, run.attempts, run.lease_expires_at) == ("succeeded", "verified", 1, None)
    verification = DeliveryVerification.objects.get()
    event = AuditEvent.objects.get(action="verification.computed")
    assert event.object_id == str(verification.pk) and event.organisation == settled_setup["contract"].seller
    assert event.after["delivered_kwh"] == "100.000" and event.after["state"] == "verified"


@pytest.mark.django_db
def test_a_changed_result_is_audited_with_before_and_after_and_an_unchanged_one_is_not(
    actor_esp, settled_setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(actor_esp, readings(settled_setup["asset"], 100))
    with django_capture_on_commit_callbacks(execute=True):
        upload(actor_esp, readings(settled_setup["asset"], 60))  # a corrected delivery day
    changed = AuditEvent.objects.get(action="verification.changed")
    assert changed.before["delivered_kwh"] == "100.000" and changed.after["delivered_kwh"] == "60.000"
    services.verification_runs_request(contract_ids=[settled_setup["contract"].pk])
    run = VerificationRun.objects.filter(state="pending").get()
    services.verification_run_execute(run_id=run.pk)  # same inputs: nothing changes, nothing is audited
    assert AuditEvent.objects.filter(action__startswith="verification.").count() == 2


@pytest.mark.django_db
def test_any_exception_is_recorded_on_the_run_and_audited(
    actor_esp, settled_setup, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(baselines, "verify_delivery", broken)  # every method, batch or not, calls it
    with django_capture_on_commit_callbacks(execute=True):
        upload(actor_esp, readings(settled_setup["asset"], 100))
    run = VerificationRun.objects.get()
    assert run.state == "failed" and run.error == "ZeroDivisionError: division by zero"
    assert not DeliveryVerification.objects.exists()
    assert AuditEvent.objects.get(action="verification.failed").after["error"] == run.error


@pytest.mark.django_db
def test_broker_down_fails_the_run_visibly(
    actor_esp, settled_setup, django_capture_on_commit_callbacks, broker_down
):
    with django_capture_on_commit_callbacks(execute=True):
        result = upload(actor_esp, readings(settled_setup["asset"], 100))
    assert result.changed_count > 0  # the readings are kept
    run = VerificationRun.objects.get()
    assert run.state == "failed" and "task broker is unreachable" in run.error


@pytest.mark.django_db
def test_the_safety_net_queues_runs_for_unverified_recent_contracts(
    settled_setup, django_capture_on_commit_callbacks
):
    contract = settled_setup["contract"]
    with django_capture_on_commit_callbacks(execute=True):
        created = services.verification_runs_request_due(now=contract.ptu_start + timedelta(days=1))
    assert [(run.contract, run.reason) for run in created] == [(contract, "safety_net")]
    run = VerificationRun.objects.get()
    assert (run.state, run.outcome) == ("succeeded", "awaiting_data")  # no meter data yet
    assert services.verification_runs_request_due(now=contract.ptu_start + timedelta(days=8)) == []


@pytest.mark.django_db
def test_a_run_that_lost_its_worker_is_taken_over_by_the_sweep(
    actor_esp, settled_setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        upload(actor_esp, readings(settled_setup["asset"], 100))
    run = VerificationRun.objects.get()
    VerificationRun.objects.filter(pk=run.pk).update(
        state="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.verification_runs_sweep().requeued == [run.pk]
    run.refresh_from_db()
    assert (run.state, run.attempts, run.outcome) == ("succeeded", 2, "verified")


@pytest.mark.django_db
def test_a_run_out_of_attempts_fails_visibly(settled_setup, settings):
    run = VerificationRun.objects.create(
        contract=settled_setup["contract"],
        reason="meter_data",
        state="running",
        attempts=settings.FLEXMARKET_RUN_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    assert services.verification_runs_sweep().failed == [run.pk]
    run.refresh_from_db()
    assert run.state == "failed" and "was lost without a result" in run.error
    assert AuditEvent.objects.filter(action="verification.failed", object_id=str(run.pk)).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_database_connection_dies_ends_failed_with_the_error(
    actor_esp, settled_setup, monkeypatch
):
    original = baselines.verify_delivery

    def connection_killed(*args, **kwargs):
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
        other.close()
        return original(*args, **kwargs)

    monkeypatch.setattr(baselines, "verify_delivery", connection_killed)
    upload(actor_esp, readings(settled_setup["asset"], 100))  # the run is sent (eager: run inline) on commit
    run = VerificationRun.objects.get()
    assert run.state == "failed" and run.error.startswith("OperationalError") and "terminat" in run.error
    assert not DeliveryVerification.objects.exists()


def test_verification_tasks_are_acknowledged_late_and_requeued_when_the_worker_is_lost():
    task = app.tasks[tasks.verification_run_task.name]
    assert task.acks_late and task.reject_on_worker_lost


@pytest.mark.django_db
def test_beat_sweeps_verification_runs_every_minute():
    sweep = PeriodicTask.objects.get(task="settlement.verification_runs_sweep")
    assert sweep.enabled and (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    assert "settlement.verification_runs_sweep" in app.tasks
