"""Parallel submitters never allocate the same kW twice (row locks on PostgreSQL); a real worker clears a session."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.context import Actor
from tests.factories import OrganisationFactory, member_of
from trading import services, tasks
from trading.models import Contract, FlexOffer, MarketSession, OrderMode


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
