"""A worker SIGKILLed mid-run: the run still ends exactly once, with no manual step (issue 8, items 5 and 10).

Each test starts a real prefork worker on PostgreSQL and Redis, freezes a run after its claim, kills the
executing process (or the whole worker, then starts a new one) and waits for the run to end by itself.
"""

import io
from datetime import timedelta

import pytest

from accounts.models import AuditEvent
from grid import services as grid
from grid.models import GridLocation, PowerFlowRun
from settlement import services as settlement
from settlement.models import DeliveryVerification, VerificationRun
from tests.grid.factories import square
from tests.reliability.harness import LEASE_SECONDS, Scenario, kill_mid_run
from tests.settlement.fixtures import DELIVERY_DAY, meter_csv

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kill", ["process", "worker"])
def test_power_flow_run_ends_once_when_its_worker_is_killed(kill, actor_dso, tmp_path):
    zone = grid.grid_location_create(
        actor=actor_dso, name="Offenburg", code="ean.kill", geometry=square(7.78, 48.41, half=0.05)
    )
    model = grid.network_model_create(actor=actor_dso, name="Oberrhein", example="mv_oberrhein")
    first_claim = []
    scenario = Scenario(
        block="grid.network.run_power_flow",
        start=lambda: grid.power_flow_run_request(
            actor=actor_dso, network_model=model, load_scaling=2.0, generation_scaling=0.0
        ),
        state=lambda: PowerFlowRun.objects.get().state,
        kill=kill,
        on_blocked=lambda: first_claim.append(PowerFlowRun.objects.get().started_at),
    )

    assert kill_mid_run(scenario, tmp_path) == "succeeded"

    run = PowerFlowRun.objects.get()
    assert run.attempts == 2 and run.error == ""  # the second attempt took the lost one over
    # ... and only once the first attempt's lease had expired (a redelivery inside it waits and retries)
    assert run.started_at >= first_claim[0] + timedelta(seconds=LEASE_SECONDS[kill])
    assert AuditEvent.objects.filter(action="power_flow.result", object_id=str(run.pk)).count() == 1
    zone.refresh_from_db()
    assert zone.status == GridLocation.Status.CONGESTED
    assert AuditEvent.objects.filter(action="grid_location.status", object_id=str(zone.pk)).count() == 1


@pytest.mark.parametrize("kill", ["process", "worker"])
def test_verification_run_ends_once_when_its_worker_is_killed(kill, actor_esp, settled_setup, tmp_path):
    asset, contract = settled_setup["asset"], settled_setup["contract"]
    readings = meter_csv(
        asset,
        DELIVERY_DAY - timedelta(days=30),
        lambda day, index: 100 if day == DELIVERY_DAY and 68 <= index < 72 else 200,
        days=31,
    )
    first_claim = []
    scenario = Scenario(
        block="settlement.baselines.verify_delivery",  # every method calls it, batch or not
        start=lambda: settlement.meter_upload_csv(
            actor=actor_esp, file=io.BytesIO(readings), filename="m.csv"
        ),
        state=lambda: VerificationRun.objects.get().state,
        kill=kill,
        on_blocked=lambda: first_claim.append(VerificationRun.objects.get().started_at),
    )

    assert kill_mid_run(scenario, tmp_path) == "succeeded"

    run = VerificationRun.objects.get()
    assert (run.attempts, run.outcome, run.error) == (2, "verified", "")
    assert run.started_at >= first_claim[0] + timedelta(seconds=LEASE_SECONDS[kill])
    verification = DeliveryVerification.objects.get(contract=contract)
    assert verification.delivered_kwh == 100
    assert AuditEvent.objects.filter(action__startswith="verification.").count() == 1


@pytest.mark.parametrize("kill", ["process", "worker"])
def test_session_clearing_ends_once_when_its_worker_is_killed(
    kill, actor_dso, actor_esp, dso_org, esp_org, tmp_path
):
    from django.utils import timezone

    from tests.grid.factories import FlexAssetFactory, GridLocationFactory
    from tests.trading.factories import ProductFactory, session_for, tomorrow
    from trading import services as trading
    from trading import tasks as trading_tasks
    from trading.models import ClearingRun, Contract, MarketSession, Product

    zone = GridLocationFactory(dso=dso_org)
    asset = FlexAssetFactory(owner=esp_org, grid_location=zone)
    session = session_for(ProductFactory(), tomorrow())
    Product.objects.filter(pk=session.product_id).update(solver_time_limit_seconds=1)
    start = session.delivery_start + timedelta(hours=17)
    trading.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[80],
        price=90,
    )
    trading.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[80], price=40
    )
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now())

    def close_and_queue():
        for session_id in trading.sessions_close_due():
            trading_tasks.session_clear_task.delay(session_id)

    first_claim = []
    scenario = Scenario(
        block="trading.services.auction.clear_auction",
        start=close_and_queue,
        state=lambda: MarketSession.objects.get(pk=session.pk).state,
        kill=kill,
        running="clearing",
        final=("cleared",),
        on_blocked=lambda: first_claim.append(ClearingRun.objects.get().claimed_at),
    )

    assert kill_mid_run(scenario, tmp_path) == "cleared"

    lost, taken_over = ClearingRun.objects.order_by("pk")
    assert lost.state == "failed" and "Lease expired" in lost.error and not lost.is_current
    assert taken_over.state == "succeeded" and taken_over.is_current
    assert taken_over.claimed_at >= first_claim[0] + timedelta(seconds=LEASE_SECONDS[kill])
    assert Contract.objects.count() == 1 and Contract.objects.get().clearing_run == taken_over
    assert AuditEvent.objects.filter(action="session.clear").count() == 1
    assert AuditEvent.objects.filter(action="session.clear_failed").count() == 1
