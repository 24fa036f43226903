"""Parallel submitters never allocate the same kW twice (row locks on PostgreSQL); a real worker clears a session."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.context import SYSTEM, Actor
from tests.factories import OrganisationFactory, member_of
from trading import services, tasks
from trading.models import Contract, FlexOffer, MarketSession, OrderMode
from trading.selectors import session_get


@pytest.mark.django_db(transaction=True)
def test_parallel_aggressors_never_share_the_same_kw(
    actor_esp, asset, zone, continuous_session, dso_org, dso_user
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers anyway")
    start = continuous_session.delivery_start + timedelta(hours=17)
    resting = services.offer_submit(
        actor=actor_esp,
        asset=asset,
        product=continuous_session.product,
        ptu_start=start,
        quantities_kw=[100],
        price=40,
        tso_eligible=True,  # the buyers are TSOs
    )
    buyers = []
    for i in range(8):
        organisation = OrganisationFactory(roles=["TSO"], legal_name=f"Buyer {i}")
        buyers.append(Actor(user=member_of(organisation), organisation=organisation))
    barrier = threading.Barrier(len(buyers))
    errors = []

    def submit(actor):
        try:
            barrier.wait(timeout=10)
            services.request_submit(
                actor=actor,
                grid_location=zone,
                product=continuous_session.product,
                ptu_start=start,
                quantities_kw=[30],
                price=50,
                order_mode=OrderMode.AGGRESSOR,
            )
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(actor,)) for actor in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    filled = sum(c.quantities_kw[0] for c in Contract.objects.filter(offer=resting))
    resting.refresh_from_db()
    assert filled == 100
    assert resting.remaining_kw == [0] and resting.state == "filled"
    assert Contract.objects.count() == 4  # 30 + 30 + 30 + 10


@pytest.mark.worker
def test_gate_closure_on_a_real_worker_produces_contracts_once(
    celery_worker, actor_dso, actor_esp, asset, zone, session
):
    start = session.delivery_start + timedelta(hours=17)
    services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[100],
        price=100,
    )
    services.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[60], price=50
    )
    MarketSession.objects.filter(pk=session.pk).update(
        state=MarketSession.State.CLOSED, gate_closure=timezone.now()
    )
    first, second = tasks.session_clear_task.delay(session.pk), tasks.session_clear_task.delay(session.pk)
    assert first.get(timeout=90) == "succeeded" and second.get(timeout=90) == "succeeded"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not Contract.objects.exists():
        time.sleep(0.3)
    assert Contract.objects.count() == 1
    assert FlexOffer.objects.get().state == "filled"


def _run_parallel(functions, timeout=60):
    """Run callables in threads released together; returns (results, errors)."""
    barrier = threading.Barrier(len(functions))
    results, errors = [], []

    def run(function):
        try:
            barrier.wait(timeout=10)
            results.append(function())
        except Exception as error:  # collected for the assertions
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(function,)) for function in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results, errors


def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers anyway")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_offers_never_exceed_the_asset_capability(actor_esp, asset, session):
    """Issue 8.3: eight 100 kW offers race for a 500 kW asset; exactly five are accepted."""
    _postgres_only()
    start = session.delivery_start + timedelta(hours=17)
    submit = lambda: services.offer_submit(  # noqa: E731
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[100], price=40
    )
    results, errors = _run_parallel([submit] * 8)
    assert len(results) == 5 and len(errors) == 3
    assert all(getattr(error, "code", None) == "above_capability" for error in errors)
    from trading.services.capacity import ledger_actual, ledger_expected

    assert ledger_actual() == ledger_expected()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_orders_racing_the_gate_closure_never_sell_more_than_offered(
    actor_esp, asset, zone, session, dso_org
):
    """Issue 8.4: aggressors keep arriving through the gate closure while it closes and clears the session."""
    _postgres_only()
    start = session.delivery_start + timedelta(hours=17)
    offer = services.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[500], price=40
    )
    buyer = Actor(user=member_of(dso_org, email="racer@dso.example"), organisation=dso_org)
    services.request_submit(
        actor=buyer,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[300],
        price=90,
    )
    gate = timezone.now() + timedelta(seconds=1.5)
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=gate)
    refused = []

    def keep_buying():
        while True:
            try:
                services.request_submit(
                    actor=buyer,
                    grid_location=zone,
                    product=session.product,
                    ptu_start=start,
                    quantities_kw=[23],
                    price=90,
                    order_mode=OrderMode.AGGRESSOR,
                )
            except Exception as error:
                refused.append(error)
                return "closed"

    def close_and_clear():
        while timezone.now() < gate:
            time.sleep(0.01)
        to_clear = services.sessions_close_due()
        return [services.session_clear(session=session_get(pk=pk), actor=SYSTEM).state for pk in to_clear]

    results, errors = _run_parallel([keep_buying] * 4 + [close_and_clear])
    assert errors == [] and ["succeeded"] in results
    assert all(getattr(error, "code", None) == "gate_closed" for error in refused)
    sold = sum(sum(c.quantities_kw) for c in Contract.objects.filter(offer=offer, state="active"))
    offer.refresh_from_db()
    assert sold <= 500 + 1e-6
    assert sold + sum(offer.remaining_kw) == pytest.approx(500)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancellation_racing_the_clearing_is_never_overwritten(actor_dso, actor_esp, asset, zone, session):
    """Issue 8.4: either the cancellation lands before the gate closes, or it is refused; never both."""
    _postgres_only()
    start = session.delivery_start + timedelta(hours=17)
    offer = services.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[50], price=40
    )
    services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[50],
        price=90,
    )
    gate = timezone.now() + timedelta(seconds=1)
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=gate)

    def cancel_at_the_gate():
        while timezone.now() < gate - timedelta(milliseconds=5):
            time.sleep(0.001)
        return services.order_cancel(actor=actor_esp, order=offer).state

    def close_and_clear():
        while timezone.now() < gate:
            time.sleep(0.001)
        for pk in services.sessions_close_due():
            services.session_clear(session=session_get(pk=pk), actor=SYSTEM)
        return "cleared"

    results, errors = _run_parallel([cancel_at_the_gate, close_and_clear])
    offer.refresh_from_db()
    contracts = Contract.objects.filter(offer=offer).count()
    if offer.state == "cancelled":
        assert contracts == 0 and "cancelled" in results
    else:
        assert offer.state == "filled" and contracts == 1
        assert [getattr(error, "code", None) for error in errors] == ["gate_closed"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sessions_open_ahead_in_parallel_generates_one_offer_per_agreement(
    actor_dso, actor_esp, asset, zone, product, time_machine
):
    """Issue 8.7: four beat runs at once create one generated offer per agreement and session."""
    _postgres_only()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.trading.factories import tomorrow

    day = tomorrow()
    # 08:00 local: tomorrow's day-ahead gate (12:00 today) is still open, as is the day after's.
    local_morning = datetime.combine(
        day - timedelta(days=1), datetime.min.time(), ZoneInfo("Europe/Amsterdam")
    )
    time_machine.move_to(local_morning + timedelta(hours=8))
    agreement = services.agreement_propose(
        actor=actor_dso,
        esp=actor_esp.organisation,
        grid_location=zone,
        product=product,
        capacity_kw=40,
        availability_price=5,
        activation_price=80,
        windows=[{"days": list(range(7)), "start": "17:00", "end": "20:00"}],
        valid_from=day,
        valid_to=day + timedelta(days=1),
        asset=asset,
    )
    services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    results, errors = _run_parallel([services.sessions_open_ahead] * 4)
    assert errors == []
    per_session = FlexOffer.objects.filter(availability_agreement=agreement).values_list("session", flat=True)
    assert len(per_session) == len(set(per_session)) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_aggressors_on_overlapping_ptus_never_over_allocate(
    actor_esp, zone, continuous_session, dso_org
):
    """Issue 10.1: aggressors on different PTUs fill the same multi-PTU resting orders at once (per-PTU locks,
    row locks only on what is filled); every resting order's contracts plus remaining equal what it offered."""
    _postgres_only()
    from decimal import Decimal

    from tests.grid.factories import FlexAssetFactory

    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100000"))
    resting = [
        services.offer_submit(
            actor=actor_esp,
            asset=asset,
            product=product,
            ptu_start=start + (i % 4) * timedelta(minutes=15),
            quantities_kw=[40.0] * 6,
            price=30 + i,
        )
        for i in range(12)
    ]
    buyer = Actor(user=member_of(dso_org, email="many@dso.example"), organisation=dso_org)

    def buyer_at(ptu_offset):
        def run():
            for _ in range(6):
                services.request_submit(
                    actor=buyer,
                    grid_location=zone,
                    product=product,
                    ptu_start=start + ptu_offset * timedelta(minutes=15),
                    quantities_kw=[25.0, 25.0],
                    price=100,
                    order_mode=OrderMode.AGGRESSOR,
                )
            return "done"

        return run

    results, errors = _run_parallel([buyer_at(k) for k in range(8)])
    assert errors == [] and results == ["done"] * 8
    for offer in resting:
        offer.refresh_from_db()
        sold = [0.0] * 6
        for contract in Contract.objects.filter(offer=offer):
            shift = round((contract.ptu_start - offer.ptu_start).total_seconds() / 900)
            for i, kw in enumerate(contract.quantities_kw):
                if kw:
                    sold[i + shift] += kw
        assert all(r >= -1e-9 for r in offer.remaining_kw)
        assert [round(s + r, 3) for s, r in zip(sold, offer.remaining_kw, strict=True)] == [40.0] * 6
    assert Contract.objects.exists()
