"""Periodic tasks isolate a bad item: it is flagged with its error and every other item is processed
(issue 15, item 3). On main one malformed agreement made `sessions_open_ahead` raise on every run."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from accounts.context import SYSTEM
from flexmarket.models import TaskFailure
from settlement import services as settlement
from settlement.models import DeliveryVerification, VerificationRun
from tests.grid.factories import FlexAssetFactory
from tests.settlement.fixtures import TRADED_AT
from tests.trading.factories import MarketFactory, ProductFactory
from trading import services as trading
from trading.models import AvailabilityAgreement, Contract, FlexOffer, MarketSession

pytestmark = pytest.mark.django_db

MONDAY_MORNING = datetime(2026, 6, 8, 6, 0, tzinfo=UTC)


def agreement_for(asset, product, dso_org, **fields) -> AvailabilityAgreement:
    return AvailabilityAgreement.objects.create(
        dso=dso_org,
        esp=asset.owner,
        grid_location=asset.grid_location,
        product=product,
        asset=asset,
        capacity_kw=Decimal("100"),
        availability_price=Decimal("5"),
        activation_price=Decimal("80"),
        windows=[{"days": [0, 1, 2, 3, 4, 5, 6], "start": "17:00", "end": "20:00"}],
        valid_from=date(2026, 6, 1),
        valid_to=date(2026, 6, 30),
        state=AvailabilityAgreement.State.ACTIVE,
        **fields,
    )


@pytest.mark.parametrize("windows", [[["days", "start", "end"]], [1], [None], "mon-fri 17:00-20:00"])
def test_a_malformed_agreement_is_flagged_and_the_others_still_generate_offers(
    windows, zone, product, esp_org, dso_org, esp_user
):
    good = agreement_for(FlexAssetFactory(owner=esp_org, grid_location=zone), product, dso_org)
    bad = agreement_for(FlexAssetFactory(owner=esp_org, grid_location=zone), product, dso_org)
    AvailabilityAgreement.objects.filter(pk=bad.pk).update(windows=windows)  # stored before validation

    with time_machine.travel(MONDAY_MORNING, tick=False):
        sessions = trading.sessions_open_ahead()

    still_open = [s for s in sessions if s.gate_closure > MONDAY_MORNING]  # today's gate closed yesterday
    assert len(sessions) == product.sessions_ahead_days + 1 and len(still_open) == len(sessions) - 1
    assert FlexOffer.objects.filter(availability_agreement=good).count() == len(still_open)
    assert not FlexOffer.objects.filter(availability_agreement=bad).exists()
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.generation_error and bad.generation_failed_at == MONDAY_MORNING
    assert good.generation_error == ""
    assert TaskFailure.objects.filter(task="trading.sessions_open_ahead", target_id=bad.pk).exists()


def test_a_product_that_cannot_open_sessions_does_not_stop_the_others(product):
    broken = ProductFactory(market=MarketFactory(time_zone="Mars/Olympus_Mons"))

    with time_machine.travel(MONDAY_MORNING, tick=False):
        trading.sessions_open_ahead()

    assert MarketSession.objects.filter(product=product).count() == product.sessions_ahead_days + 1
    assert not MarketSession.objects.filter(product=broken).exists()
    failure = TaskFailure.objects.get(target=f"trading.product#{broken.pk}")
    assert "Mars/Olympus_Mons" in failure.error and failure.traceback


def test_agreement_error_is_cleared_when_generation_works_again(zone, product, esp_org, dso_org, esp_user):
    agreement = agreement_for(
        FlexAssetFactory(owner=esp_org, grid_location=zone), product, dso_org, generation_error="old"
    )
    with time_machine.travel(MONDAY_MORNING, tick=False):
        trading.sessions_open_ahead()
    agreement.refresh_from_db()
    assert agreement.generation_error == "" and agreement.generation_failed_at is None


def test_agreement_page_shows_the_generation_error(client, dso_user, zone, product, esp_org, dso_org):
    agreement_for(
        FlexAssetFactory(owner=esp_org, grid_location=zone),
        product,
        dso_org,
        generation_error="TypeError: list indices must be integers",
        generation_failed_at=MONDAY_MORNING,
    )
    client.force_login(dso_user)
    page = client.get("/trading/agreements/").content.decode()
    assert 'data-testid="agreement-error"' in page and "list indices must be integers" in page


def _second_contract(settled_setup, actor_dso, actor_esp, baseline_params) -> Contract:
    """Another contract on the same asset and day, under a product with the given baseline parameters."""
    first = settled_setup["session"]
    product = ProductFactory(market=first.product.market, baseline_params=baseline_params)
    session = MarketSession.objects.create(
        product=product,
        delivery_day=first.delivery_day,
        delivery_start=first.delivery_start,
        delivery_end=first.delivery_end,
        gate_closure=first.gate_closure + timedelta(days=1),
    )
    start = first.delivery_start + timedelta(hours=19)
    zone = settled_setup["asset"].grid_location
    with time_machine.travel(
        TRADED_AT, tick=False
    ):  # traded before the gate closure, like the first contract
        trading.request_submit(
            actor=actor_dso,
            grid_location=zone,
            product=product,
            ptu_start=start,
            quantities_kw=[50],
            price=200,
        )
        trading.offer_submit(
            actor=actor_esp,
            asset=settled_setup["asset"],
            product=product,
            ptu_start=start,
            quantities_kw=[50],
            price=80,
        )
    MarketSession.objects.filter(pk=session.pk).update(state="closed")
    trading.session_clear(session=session, actor=SYSTEM)
    return Contract.objects.get(session=session)


def test_a_contract_that_cannot_be_verified_does_not_stop_the_others(
    settled_setup, actor_dso, actor_esp, django_capture_on_commit_callbacks
):
    broken = _second_contract(settled_setup, actor_dso, actor_esp, {"x": "five", "y": 10})
    later = settled_setup["session"].delivery_end + timedelta(days=1)

    # The safety net queues one verification run per contract; each run succeeds or fails on its own.
    with django_capture_on_commit_callbacks(execute=True):
        runs = settlement.verification_runs_request_due(now=later)

    assert {run.contract_id for run in runs} == {settled_setup["contract"].pk, broken.pk}
    assert DeliveryVerification.objects.filter(contract=settled_setup["contract"]).exists()
    assert not DeliveryVerification.objects.filter(contract=broken).exists()
    failed = VerificationRun.objects.get(contract=broken)
    assert failed.state == "failed" and failed.error
