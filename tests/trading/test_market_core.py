"""Regression tests for "A market core that cannot be fooled" (issue 8), service level.

Each test names the item it proves; the concurrency and fault ones live in test_concurrency.py and
tests/reliability/.
"""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from accounts.context import SYSTEM, Actor
from accounts.models import AuditEvent
from flexmarket.errors import DomainError
from tests.factories import OrganisationFactory, member_of
from tests.grid.factories import FlexAssetFactory, PortfolioFactory
from tests.trading.factories import session_for, tomorrow
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import (
    AvailabilityAgreement,
    ClearingRun,
    Contract,
    FlexOffer,
    FlexRequest,
    MarketSession,
    OrderMode,
    OrderState,
)
from trading.services.capacity import ledger_actual, ledger_expected
from trading.services.matching import contract_reference


def aggressor_request(actor, zone, product, start, qty, price=90, **kw):
    return request(actor, zone, product, start, qty=qty, price=price, order_mode=OrderMode.AGGRESSOR, **kw)


def assert_ledger_consistent():
    """The maintained ledger equals a recomputation from offers and contracts (the independent reference)."""
    assert ledger_actual() == ledger_expected()


# --- 3. capacity is never sold twice ----------------------------------------------------------------


@pytest.mark.django_db
def test_sold_capacity_is_not_offered_again(actor_esp, actor_dso, zone, continuous_session):
    """Item 3: 240 kW up-capability, offered and filled, cannot be offered again for the same PTU."""
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("240"))
    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    offer(actor_esp, asset, product, start, qty=(240,), price=40)
    aggressor_request(actor_dso, zone, product, start, qty=(240,))
    assert Contract.objects.get().quantities_kw == [240]
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, product, start, qty=(240,), price=40)
    assert error.value.code == "above_capability"
    assert Contract.objects.count() == 1
    assert_ledger_consistent()


@pytest.mark.django_db
def test_cancelled_and_expired_offers_release_their_capacity(actor_esp, zone, continuous_session):
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    first = offer(actor_esp, asset, product, start, qty=(100,), price=40)
    services.order_cancel(actor=actor_esp, order=first)
    second = offer(actor_esp, asset, product, start, qty=(100,), price=40)
    MarketSession.objects.filter(pk=continuous_session.pk).update(gate_closure=timezone.now())
    services.sessions_close_due()
    second.refresh_from_db()
    assert second.state == OrderState.EXPIRED
    assert ledger_actual() == {} and ledger_expected() == {}


@pytest.mark.django_db
def test_accepted_agreement_reserves_capacity_and_its_offers_do_not_count_twice(
    actor_dso, actor_esp, zone, product
):
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    day = session_for(product, tomorrow()).delivery_day
    agreement = services.agreement_propose(
        actor=actor_dso,
        esp=actor_esp.organisation,
        grid_location=zone,
        product=product,
        capacity_kw=70,
        availability_price=5,
        activation_price=80,
        windows=[{"days": list(range(7)), "start": "17:00", "end": "20:00"}],
        valid_from=day,
        valid_to=day + timedelta(days=30),
        asset=asset,
    )
    services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    session = MarketSession.objects.get(product=product, delivery_day=day)
    generated = services.agreement_offers_generate(session=session)
    assert len(generated) == 1
    evening = session.delivery_start + timedelta(hours=17)
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, product, evening, qty=(31,), price=40)
    assert error.value.code == "above_capability"
    offer(actor_esp, asset, product, evening, qty=(30,), price=40)  # 70 held by the agreement, 30 free
    morning = session.delivery_start + timedelta(hours=8)
    offer(actor_esp, asset, product, morning, qty=(100,), price=40)  # outside the windows all 100 kW are free


@pytest.mark.django_db
def test_a_portfolio_agreement_holds_its_members_share_and_only_active_agreements_count(
    actor_dso, actor_esp, zone, product
):
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    b = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    portfolio = PortfolioFactory(owner=actor_esp.organisation, grid_location=zone, assets=[a, b])
    session = session_for(product, tomorrow())
    terms = {
        "actor": actor_dso,
        "esp": actor_esp.organisation,
        "grid_location": zone,
        "product": product,
        "availability_price": 5,
        "activation_price": 80,
        "windows": [{"days": list(range(7)), "start": "17:00", "end": "20:00"}],
        "valid_from": session.delivery_day,
        "valid_to": session.delivery_day,
    }
    evening = session.delivery_start + timedelta(hours=17)
    proposed = services.agreement_propose(capacity_kw=100, asset=b, **terms)
    offer(actor_esp, b, product, evening, qty=(100,), price=40)  # a proposal reserves nothing
    services.order_cancel(actor=actor_esp, order=FlexOffer.objects.get(asset=b))
    services.agreement_respond(actor=actor_esp, agreement=proposed, accept=False)
    agreement = services.agreement_propose(capacity_kw=120, portfolio=portfolio, **terms)
    services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    with pytest.raises(DomainError) as error:  # 60 of a's 100 kW are held through the portfolio
        offer(actor_esp, a, product, evening, qty=(41,), price=40)
    assert error.value.code == "above_capability"
    offer(actor_esp, a, product, evening, qty=(40,), price=40)
    offer(actor_esp, a, product, session.delivery_start + timedelta(hours=8), qty=(100,), price=40)


@pytest.mark.django_db
def test_agreement_cannot_be_accepted_over_capacity_already_offered(actor_dso, actor_esp, zone, product):
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    session = session_for(product, tomorrow())
    offer(actor_esp, asset, product, session.delivery_start + timedelta(hours=18), qty=(80,), price=40)
    agreement = services.agreement_propose(
        actor=actor_dso,
        esp=actor_esp.organisation,
        grid_location=zone,
        product=product,
        capacity_kw=50,
        availability_price=5,
        activation_price=80,
        windows=[{"days": list(range(7)), "start": "17:00", "end": "20:00"}],
        valid_from=session.delivery_day,
        valid_to=session.delivery_day,
        asset=asset,
    )
    with pytest.raises(DomainError) as error:
        services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    assert error.value.code == "above_capability" and error.value.field == "capacity_kw"
    agreement.refresh_from_db()
    assert agreement.state == AvailabilityAgreement.State.PROPOSED


# --- 14. portfolio offers reserve their members' capacity -------------------------------------------


@pytest.mark.django_db
def test_portfolio_offer_cannot_reuse_capacity_offered_on_a_member(actor_esp, zone, session, ptu17):
    """Item 14: 200 kW open on member A (200 kW), then a 250 kW portfolio offer on A+B (300 kW) is refused."""
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("200"))
    b = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    portfolio = PortfolioFactory(owner=actor_esp.organisation, grid_location=zone, assets=[a, b])
    offer(actor_esp, a, session.product, ptu17, qty=(200,))
    with pytest.raises(DomainError) as error:
        services.offer_submit(
            actor=actor_esp,
            portfolio=portfolio,
            product=session.product,
            ptu_start=ptu17,
            quantities_kw=[250],
            price=50,
        )
    assert error.value.code == "above_capability"
    placed = services.offer_submit(
        actor=actor_esp,
        portfolio=portfolio,
        product=session.product,
        ptu_start=ptu17,
        quantities_kw=[100],
        price=50,
    )
    assert placed.member_allocation == {str(a.pk): [0.0], str(b.pk): [100.0]}
    with pytest.raises(DomainError):
        offer(actor_esp, b, session.product, ptu17, qty=(1,))
    assert_ledger_consistent()


# --- 6. rules that are written are enforced ---------------------------------------------------------


@pytest.mark.django_db
def test_expired_offer_is_not_filled_and_validity_in_the_past_is_refused(
    actor_esp, actor_dso, asset, zone, continuous_session, time_machine
):
    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    with pytest.raises(DomainError) as error:
        offer(
            actor_esp,
            asset,
            product,
            start,
            qty=(50,),
            price=40,
            valid_until=timezone.now() - timedelta(seconds=1),
        )
    assert error.value.field == "valid_until"
    resting = offer(
        actor_esp,
        asset,
        product,
        start,
        qty=(50,),
        price=40,
        valid_until=timezone.now() + timedelta(minutes=5),
    )
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    aggressor_request(actor_dso, zone, product, start, qty=(50,))
    assert not Contract.objects.exists()
    assert services.orders_expire_due() == 1
    resting.refresh_from_db()
    assert resting.state == OrderState.EXPIRED and resting.state_reason == "Validity ended"
    assert ledger_actual() == {}


@pytest.mark.django_db
def test_auction_leaves_out_orders_whose_validity_ended_before_gate_closure(
    actor_esp, actor_dso, asset, zone, session, ptu17
):
    late = offer(
        actor_esp,
        asset,
        session.product,
        ptu17,
        qty=(50,),
        price=10,
        valid_until=timezone.now() + timedelta(minutes=1),
    )
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=100)
    # Gate closure comes after the offer's validity ended.
    MarketSession.objects.filter(pk=session.pk).update(
        state="closed", gate_closure=late.valid_until + timedelta(minutes=1)
    )
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and not Contract.objects.exists()
    assert run.excluded == [{"order": f"offer:{late.pk}", "reason": "validity ended before gate closure"}]
    late.refresh_from_db()
    assert late.state == OrderState.REJECTED and "validity ended" in late.state_reason


@pytest.mark.django_db
def test_offer_not_tso_eligible_is_never_sold_to_a_tso(actor_esp, actor_tso, zone, continuous_session, asset):
    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    offer(actor_esp, asset, product, start, qty=(50,), price=40, tso_eligible=False)
    tso_request = aggressor_request(actor_tso, zone, product, start, qty=(50,))
    assert not Contract.objects.exists() and tso_request.state == OrderState.CANCELLED
    eligible = offer(actor_esp, asset, product, start, qty=(50,), price=45, tso_eligible=True)
    aggressor_request(actor_tso, zone, product, start, qty=(50,))
    assert Contract.objects.get().offer == eligible


@pytest.mark.django_db
def test_tso_request_resting_is_not_hit_by_an_ineligible_offer(
    actor_esp, actor_tso, zone, continuous_session, asset
):
    product, start = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    request(actor_tso, zone, product, start, qty=(50,), price=90)
    offer(actor_esp, asset, product, start, qty=(50,), price=40, order_mode=OrderMode.AGGRESSOR)
    assert not Contract.objects.exists()


@pytest.mark.django_db
def test_suspended_asset_neither_matches_nor_clears(actor_esp, actor_dso, zone, session, continuous_session):
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone)
    start = continuous_session.delivery_start + timedelta(hours=17)
    offer(actor_esp, asset, continuous_session.product, start, qty=(50,), price=40)
    auction_offer = offer(
        actor_esp, asset, session.product, session.delivery_start + timedelta(hours=17), qty=(50,), price=40
    )
    request(
        actor_dso, zone, session.product, session.delivery_start + timedelta(hours=17), qty=(50,), price=90
    )
    asset.prequalification = "suspended"
    asset.save()
    aggressor_request(actor_dso, zone, continuous_session.product, start, qty=(50,))
    assert not Contract.objects.exists()
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and not Contract.objects.exists()
    assert (
        run.excluded[0]["order"] == f"offer:{auction_offer.pk}"
        and "no longer approved" in run.excluded[0]["reason"]
    )


# --- 7. duplicates and repricing --------------------------------------------------------------------


@pytest.mark.django_db
def test_rerun_keeps_continuous_trades_and_clears_orders_the_first_run_expired(
    actor_fmo, actor_dso, actor_esp, actor_esp2, zone, session, ptu17
):
    """Item 7: a 50 EUR/MWh trade made before gate closure stays at 50; the re-run re-clears the gate snapshot."""
    product = session.product
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone)
    asset2 = FlexAssetFactory(owner=actor_esp2.organisation, grid_location=zone)
    resting = offer(actor_esp, asset, product, ptu17, qty=(100,), price=50)
    aggressor_request(actor_dso, zone, product, ptu17, qty=(40,), price=60)  # continuous trade at 50
    continuous = Contract.objects.get()
    request(actor_dso, zone, product, ptu17, qty=(60,), price=70)
    dear = offer(actor_esp2, asset2, product, ptu17, qty=(60,), price=65)
    close(session)
    first = services.session_clear(session=session, actor=SYSTEM)
    assert first.state == "succeeded"
    dear.refresh_from_db()
    assert dear.state == OrderState.EXPIRED  # the cheaper remaining 60 kW of `resting` won
    resting.refresh_from_db()
    assert resting.state == OrderState.FILLED
    # The FMO re-runs after suspending the cheaper asset: the expired offer is cleared now.
    asset.prequalification = "suspended"
    asset.save()
    second = services.session_clear(session=session, actor=actor_fmo, rerun=True)
    assert second.state == "succeeded" and second.is_current
    continuous.refresh_from_db()
    assert continuous.state == Contract.State.ACTIVE and continuous.prices == ["50.0000"]
    auction_contracts = Contract.objects.filter(clearing_run=second, state="active")
    assert [(c.offer_id, c.quantities_kw[68]) for c in auction_contracts] == [(dear.pk, 60.0)]
    assert Contract.objects.filter(clearing_run=first).get().state == Contract.State.SUPERSEDED
    dear.refresh_from_db()
    assert dear.state == OrderState.FILLED
    assert AuditEvent.objects.filter(action="session.rerun").exists()
    assert_ledger_consistent()


@pytest.mark.django_db
def test_rerun_of_a_settled_session_is_refused(actor_fmo, actor_dso, actor_esp, asset, zone, session, ptu17):
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    offer(actor_esp, asset, session.product, ptu17, qty=(50,), price=40)
    close(session)
    services.session_clear(session=session, actor=SYSTEM)
    Contract.objects.update(state=Contract.State.SETTLED)
    with pytest.raises(DomainError) as error:
        services.session_clear(session=session, actor=actor_fmo, rerun=True)
    assert "settled" in error.value.message
    session.refresh_from_db()
    assert session.state == MarketSession.State.CLEARED


@pytest.mark.django_db
def test_agreement_offers_are_attributed_to_the_system_not_an_esp_user(
    actor_dso, actor_esp, asset, zone, product
):
    session = session_for(product, tomorrow())
    agreement = services.agreement_propose(
        actor=actor_dso,
        esp=actor_esp.organisation,
        grid_location=zone,
        product=product,
        capacity_kw=40,
        availability_price=5,
        activation_price=80,
        windows=[{"days": list(range(7)), "start": "17:00", "end": "18:00"}],
        valid_from=session.delivery_day,
        valid_to=session.delivery_day,
        asset=asset,
    )
    services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    generated = services.agreement_offers_generate(session=session)[0]
    assert generated.created_by is None
    event = AuditEvent.objects.get(action="flex_offer.submit", object_id=str(generated.pk))
    assert event.actor is None and event.organisation == actor_esp.organisation
    assert f"agreement {agreement.pk}" in event.reason


# --- 5. runs never stay stuck -----------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_lease_is_failed_visibly_and_the_session_cleared_by_the_next_claim(
    actor_dso, actor_esp, asset, zone, session, ptu17
):
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    offer(actor_esp, asset, session.product, ptu17, qty=(50,), price=40)
    close(session)
    now = timezone.now()
    # A worker claimed the session and died (no write happened).
    stale = ClearingRun.objects.create(
        session=session,
        state="running",
        claimed_at=now - timedelta(hours=1),
        lease_expires_at=now - timedelta(minutes=1),
    )
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARING)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and Contract.objects.count() == 1
    stale.refresh_from_db()
    assert stale.state == "failed" and "Lease expired" in stale.error
    assert AuditEvent.objects.filter(action="session.clear_failed").exists()


@pytest.mark.django_db
def test_a_claim_with_a_valid_lease_is_left_alone(actor_dso, session):
    close(session)
    now = timezone.now()
    holder = ClearingRun.objects.create(
        session=session, state="running", claimed_at=now, lease_expires_at=now + timedelta(minutes=5)
    )
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARING)
    assert services.session_clear(session=session, actor=SYSTEM) == holder
    assert ClearingRun.objects.count() == 1


@pytest.mark.django_db
def test_sweep_fails_expired_runs_and_lists_sessions_left_closed(session, product):
    other = session_for(product, session.delivery_day + timedelta(days=1))
    close(session)
    close(other)
    now = timezone.now()
    ClearingRun.objects.create(
        session=other, state="running", claimed_at=now, lease_expires_at=now - timedelta(seconds=1)
    )
    MarketSession.objects.filter(pk=other.pk).update(state=MarketSession.State.CLEARING)
    found = services.clearing_runs_sweep(now=now)
    assert len(found["failed"]) == 1
    assert sorted(found["to_clear"]) == sorted([session.pk, other.pk])


@pytest.mark.django_db
def test_any_exception_in_a_clearing_is_recorded_and_audited(
    actor_dso, actor_esp, asset, zone, session, ptu17, monkeypatch
):
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    offer(actor_esp, asset, session.product, ptu17, qty=(50,), price=40)
    close(session)

    def explode(*args, **kwargs):
        raise MemoryError("out of memory in the solver")

    monkeypatch.setattr(services.auction, "clear_auction", explode)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "MemoryError" in run.error
    session.refresh_from_db()
    assert session.state == MarketSession.State.CLOSED
    assert AuditEvent.objects.get(action="session.clear_failed").after["run"] == run.pk


@pytest.mark.django_db
def test_clearing_write_refuses_an_order_that_changed_after_it_was_read(
    actor_dso, actor_esp, asset, zone, session, ptu17, monkeypatch
):
    """Item 4: the clearing never overwrites a state it did not read; the run fails and nothing is written."""
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    placed = offer(actor_esp, asset, session.product, ptu17, qty=(50,), price=40)
    close(session)
    real = services.auction.clear_auction

    def solve_then_meddle(*args, **kwargs):
        result = real(*args, **kwargs)
        FlexOffer.objects.filter(pk=placed.pk).update(state=OrderState.CANCELLED)
        return result

    monkeypatch.setattr(services.auction, "clear_auction", solve_then_meddle)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "changed during the clearing" in run.error
    assert not Contract.objects.exists()
    placed.refresh_from_db()
    assert placed.state == OrderState.CANCELLED


@pytest.mark.django_db
def test_continuous_gate_closure_is_one_audited_step(actor_esp, asset, continuous_session):
    placed = offer(
        actor_esp,
        asset,
        continuous_session.product,
        continuous_session.delivery_start + timedelta(hours=17),
        qty=(10,),
    )
    MarketSession.objects.filter(pk=continuous_session.pk).update(gate_closure=timezone.now())
    assert services.sessions_close_due() == []
    continuous_session.refresh_from_db()
    placed.refresh_from_db()
    assert continuous_session.state == MarketSession.State.CLEARED and placed.state == OrderState.EXPIRED
    event = AuditEvent.objects.get(action="session.gate_closure")
    assert event.after["open_orders"] == {"requests": 0, "offers": 1} and event.actor is None


@pytest.mark.django_db
def test_cancellation_after_gate_closure_is_refused(actor_esp, asset, session, ptu17):
    placed = offer(actor_esp, asset, session.product, ptu17, qty=(10,))
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now())
    services.sessions_close_due()
    with pytest.raises(DomainError) as error:
        services.order_cancel(actor=actor_esp, order=placed)
    assert error.value.code == "gate_closed"


# --- 15.1 (clearing side). one bad order never stops the auction ------------------------------------


@pytest.mark.django_db
def test_poisoned_order_is_left_out_and_everyone_else_clears(
    actor_dso, actor_dso2, actor_esp, actor_esp2, zone, session, ptu17
):
    from tests.grid.factories import GridLocationFactory, square

    other_zone = GridLocationFactory(dso=actor_dso2.organisation, geometry=square(6.0, 52.5))
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone)
    b = FlexAssetFactory(owner=actor_esp2.organisation, grid_location=other_zone)
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    offer(actor_esp, a, session.product, ptu17, qty=(50,), price=40)
    request(actor_dso2, other_zone, session.product, ptu17, qty=(30,), price=90)
    offer(actor_esp2, b, session.product, ptu17, qty=(30,), price=40)
    poisoned = request(actor_dso, zone, session.product, ptu17, qty=(50,), price=95)
    FlexRequest.objects.filter(pk=poisoned.pk).update(remaining_kw=[1e308], quantities_kw=[1e308])
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded"
    assert sorted(sum(c.quantities_kw) for c in Contract.objects.all()) == [30, 50]
    assert run.excluded == [{"order": f"request:{poisoned.pk}", "reason": "quantities outside 0..1e+07 kW"}]
    poisoned.refresh_from_db()
    assert poisoned.state == OrderState.REJECTED


@pytest.mark.django_db
def test_a_poisoned_session_clears_everyone_else_exactly_as_without_the_poisoner(
    actor_dso, actor_dso2, actor_esp, actor_esp2, actor_stranger, zone, product
):
    """Issue 15 "poisoned market": one participant's worst-case orders (stored past the door's checks) are left out
    and every other participant's contracts and zone prices equal those of the same session without them."""
    from tests.grid.factories import GridLocationFactory, square

    other_zone = GridLocationFactory(dso=actor_dso2.organisation, geometry=square(6.0, 52.5))
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone)
    b = FlexAssetFactory(owner=actor_esp2.organisation, grid_location=other_zone)
    hostile = FlexAssetFactory(owner=actor_stranger.organisation, grid_location=zone)

    def market(day, *, poisoned):
        session = session_for(product, day)
        t = session.delivery_start + timedelta(hours=17)
        request(actor_dso, zone, product, t, qty=(50, 20), price=90)
        request(actor_dso, zone, product, t, qty=(10,), price=60)
        offer(actor_esp, a, product, t, qty=(35, 35), price=40)
        request(actor_dso2, other_zone, product, t, qty=(30,), price=90)
        offer(actor_esp2, b, product, t, qty=(30,), price=40)
        bad = []
        if poisoned:
            worst = ([1e308], [-5], ["abc"], [10] * 200, [None])
            for quantities in worst:
                order = offer(actor_stranger, hostile, product, t, qty=(10,), price=1)
                FlexOffer.objects.filter(pk=order.pk).update(
                    remaining_kw=quantities, quantities_kw=quantities
                )
                bad.append(order.pk)
        close(session)
        run = services.session_clear(session=session, actor=SYSTEM)
        assert run.state == "succeeded", run.error
        contracts = sorted(
            (c.buyer_id, c.seller_id, c.grid_location_id, c.quantities_kw, c.prices)
            for c in Contract.objects.filter(session=session)
        )
        return run, contracts, bad

    clean_run, clean, _ = market(tomorrow() + timedelta(days=1), poisoned=False)
    poisoned_run, contracts, bad = market(tomorrow(), poisoned=True)
    assert contracts == clean and clean
    assert poisoned_run.prices == clean_run.prices
    assert sorted(int(entry["order"].split(":")[1]) for entry in poisoned_run.excluded) == sorted(bad)
    assert set(FlexOffer.objects.filter(pk__in=bad).values_list("state", flat=True)) == {OrderState.REJECTED}
    assert_ledger_consistent()


@pytest.mark.django_db
def test_large_ledger_changes_take_the_copy_path_and_stay_exact(
    monkeypatch, actor_dso, actor_esp, asset, zone, session, ptu17
):
    """A clearing's ledger changes (offers x PTUs rows) go to PostgreSQL by COPY above a row count; forced down
    that path here, a partly cleared session leaves the ledger equal to its recomputation."""
    from django.db import connection

    from trading.services import capacity

    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(capacity, "COPY_ABOVE_ROWS", 0)
    request(actor_dso, zone, session.product, ptu17, qty=(40, 10), price=90)
    offer(actor_esp, asset, session.product, ptu17, qty=(30, 30, 30), price=40)
    offer(actor_esp, asset, session.product, ptu17, qty=(20,), price=50)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded"
    assert sorted(sum(c.quantities_kw) for c in Contract.objects.all()) == [10, 40]
    assert_ledger_consistent()
    assert ledger_actual()  # contracts still hold capacity


@pytest.mark.django_db
@pytest.mark.parametrize("copy_above", [0, 10_000])
def test_clearing_ledger_changes_with_portfolio_and_single_offers_on_shared_members_stay_exact(
    monkeypatch, copy_above, actor_fmo, actor_dso, actor_esp, zone, session, ptu17
):
    """The clearing adds single-asset offers' changes as arrays and portfolio offers' per contract; both meet on
    the same member rows (one summed change per row, on the COPY path and the small path), and a re-run that
    supersedes the contracts returns the ledger to what the orders hold, equal to its recomputation."""
    from trading.services import capacity

    monkeypatch.setattr(capacity, "COPY_ABOVE_ROWS", copy_above)
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("300"))
    b = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("200"))
    portfolio = PortfolioFactory(owner=actor_esp.organisation, grid_location=zone, assets=[a, b])
    offer(actor_esp, a, session.product, ptu17, qty=(100, 100, 100), price=40)
    offer(actor_esp, b, session.product, ptu17 + timedelta(minutes=15), qty=(50,), price=45)
    services.offer_submit(
        actor=actor_esp,
        portfolio=portfolio,
        product=session.product,
        ptu_start=ptu17,
        quantities_kw=[100, 100],
        price=30,
    )
    request(actor_dso, zone, session.product, ptu17, qty=(130, 170, 20), price=90)
    request(actor_dso, zone, session.product, ptu17, qty=(7,), price=80)
    close(session)
    first = services.session_clear(session=session, actor=SYSTEM)
    assert first.state == "succeeded"
    bought = [sum(c.quantities_kw) for c in Contract.objects.filter(clearing_run=first)]
    # All demand met from the offers at 30 and 40 (the one at 45 is not needed).
    assert sum(bought) == 137 + 170 + 20 and len(bought) == 3
    assert_ledger_consistent()
    second = services.session_clear(session=session, actor=actor_fmo, rerun=True)
    assert second.state == "succeeded"
    assert Contract.objects.filter(clearing_run=first, state="superseded").count() == 3
    assert_ledger_consistent()


# --- 11. continuous matching across different PTU starts --------------------------------------------


@pytest.mark.django_db
def test_aggressor_starting_later_takes_the_right_ptu_of_the_resting_offer(
    actor_esp, actor_dso, asset, zone, continuous_session
):
    """Item 11: resting [50, 50, 50] at t; twice an aggressor of 50 kW at t+15min."""
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    resting = offer(actor_esp, asset, product, t, qty=(50, 50, 50), price=40)
    aggressor_request(actor_dso, zone, product, t + timedelta(minutes=15), qty=(50,))
    second = aggressor_request(actor_dso, zone, product, t + timedelta(minutes=15), qty=(50,))
    resting.refresh_from_db()
    assert resting.remaining_kw == [50, 0, 50]
    assert second.state == OrderState.CANCELLED and Contract.objects.count() == 1
    assert_ledger_consistent()


def test_an_offer_and_a_request_with_the_same_id_get_different_contract_references():
    """Offers and requests number their ids separately; found by the reference-book property as a unique-key
    error when an offer aggressor and a request aggressor with the same id traded on the same day."""
    now = timezone.now()
    assert contract_reference(side="buy", order_id=7, number=1, now=now) != contract_reference(
        side="sell", order_id=7, number=1, now=now
    )


@pytest.mark.django_db
def test_aggressor_starting_earlier_than_the_resting_offer_does_not_crash(
    actor_esp, actor_dso, asset, zone, continuous_session
):
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    resting = offer(actor_esp, asset, product, t + timedelta(minutes=15), qty=(50,), price=40)
    aggressor_request(actor_dso, zone, product, t, qty=(0, 30))
    resting.refresh_from_db()
    assert resting.remaining_kw == [20]
    contract = Contract.objects.get()
    assert contract.ptu_start == t and contract.quantities_kw == [0.0, 30.0]


@pytest.mark.django_db
def test_resting_all_or_nothing_block_is_never_split_across_ptus(
    actor_esp, actor_dso, asset, zone, continuous_session
):
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    block = offer(actor_esp, asset, product, t, qty=(50, 50), price=40, all_or_nothing=True)
    aggressor_request(actor_dso, zone, product, t, qty=(50,))
    block.refresh_from_db()
    assert block.remaining_kw == [50, 50] and not Contract.objects.exists()
    aggressor_request(actor_dso, zone, product, t, qty=(60, 60))
    block.refresh_from_db()
    assert block.state == OrderState.FILLED and Contract.objects.get().quantities_kw == [50, 50]


# --- 14. connection EANs ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_esp_cannot_register_another_esps_connection(actor_esp, actor_esp2, zone):
    from grid import services as grid_services
    from tests.grid.test_services import asset_fields

    grid_services.asset_register(actor=actor_esp, **asset_fields())
    with pytest.raises(DomainError) as error:
        grid_services.asset_register(actor=actor_esp2, **asset_fields())
    assert error.value.code == "ean_taken" and error.value.field == "connection_ean"


def test_ean_check_digit():
    from grid.ean import check_digit, ean18_complete, ean18_is_valid

    assert check_digit("87123456789012345") == int(ean18_complete("87123456789012345")[-1])
    code = ean18_complete("87168590000000004")
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert ean18_is_valid(code) and not ean18_is_valid(wrong)


@pytest.mark.django_db
def test_fmo_transfers_a_connection_and_history_stays_with_the_old_owner(
    actor_fmo, actor_esp, actor_esp2, asset
):
    from grid import services as grid_services

    successor = grid_services.asset_transfer(
        actor=actor_fmo, asset=asset, new_owner=actor_esp2.organisation, reason="New supply contract 2026-12"
    )
    asset.refresh_from_db()
    assert asset.archived_at is not None and asset.owner == actor_esp.organisation
    assert successor.owner == actor_esp2.organisation and successor.connection_ean == asset.connection_ean
    assert successor.prequalification == "pending"
    with pytest.raises(DomainError):
        grid_services.asset_transfer(
            actor=actor_esp, asset=successor, new_owner=actor_esp.organisation, reason="x"
        )


# --- 6. BRP sees the activations in its perimeter ---------------------------------------------------


@pytest.mark.django_db
def test_brp_sees_activations_of_its_connections_without_prices(
    actor_esp, actor_dso, zone, continuous_session, client_for
):
    brp = OrganisationFactory(roles=["BRP"], legal_name="Balans B.V.")
    brp_actor = Actor(user=member_of(brp), organisation=brp)
    mine = FlexAssetFactory(
        owner=actor_esp.organisation, grid_location=zone, brp=brp, max_up_kw=Decimal("100")
    )
    other = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, max_up_kw=Decimal("100"))
    portfolio = PortfolioFactory(owner=actor_esp.organisation, grid_location=zone, assets=[mine, other])
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    services.offer_submit(
        actor=actor_esp, portfolio=portfolio, product=product, ptu_start=t, quantities_kw=[100], price=40
    )
    aggressor_request(actor_dso, zone, product, t, qty=(60,))
    contract = Contract.objects.get()
    response = client_for(brp_actor.user).get("/api/v1/activations/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["reference"] == contract.reference and row["assets"] == [mine.connection_ean]
    assert row["quantities_kw"] == [30.0] and "prices" not in row
    page = client_for(brp_actor.user).get("/trading/activations/")
    assert page.status_code == 200 and contract.reference in page.content.decode()
    assert client_for(brp_actor.user).get(f"/api/v1/contracts/{contract.pk}/").status_code == 404
    stranger_brp = OrganisationFactory(roles=["BRP"])
    assert client_for(member_of(stranger_brp)).get("/api/v1/activations/").json()["results"] == []


@pytest.mark.django_db
def test_aggressor_remaining_records_what_was_not_matched(
    actor_esp, actor_dso, asset, zone, continuous_session
):
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    offer(actor_esp, asset, product, t, qty=(30,), price=40)
    partly = aggressor_request(actor_dso, zone, product, t, qty=(50,))
    assert partly.state == OrderState.CANCELLED and partly.remaining_kw == [20]
    assert "7.5 kWh matched" in partly.state_reason
    assert np.isclose(sum(Contract.objects.get().quantities_kw), 30)


@pytest.mark.django_db
def test_observer_sees_anonymised_prices_and_volumes(
    actor_esp, actor_esp2, actor_dso, zone, continuous_session, client_for
):
    """README: observers get read-only, anonymised open data."""
    product, t = continuous_session.product, continuous_session.delivery_start + timedelta(hours=17)
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone)
    b = FlexAssetFactory(owner=actor_esp2.organisation, grid_location=zone)
    offer(actor_esp, a, product, t, qty=(30,), price=40)
    offer(actor_esp2, b, product, t, qty=(30,), price=60)
    aggressor_request(actor_dso, zone, product, t, qty=(50,))
    observer = member_of(OrganisationFactory(roles=["OBSERVER"], legal_name="Curious Researcher"))
    response = client_for(observer).get(
        f"/api/v1/open-data/?delivery_day={continuous_session.delivery_day.isoformat()}"
    )
    assert response.status_code == 200
    [row] = response.json()
    assert row["cleared_kw"] == "50.000" and row["trades"] == 2
    assert row["average_price"] == "48.0000"  # (30 x 40 + 20 x 60) / 50
    assert (row["lowest_price"], row["highest_price"]) == ("40.0000", "60.0000")
    body = response.content.decode()
    assert actor_esp.organisation.legal_name not in body and actor_dso.organisation.legal_name not in body
    page = client_for(observer).get(f"/trading/open-data/?day={continuous_session.delivery_day.isoformat()}")
    assert page.status_code == 200 and "48.00" in page.content.decode()
    assert client_for(observer).get("/api/v1/open-data/").status_code == 400


@pytest.mark.django_db
def test_auction_never_sells_an_ineligible_offer_to_a_tso(
    actor_esp, actor_esp2, actor_tso, zone, session, ptu17
):
    """Item 6 through the gate-closure auction: the TSO gets the dearer eligible offer, not the cheaper one."""
    cheap = offer(
        actor_esp,
        FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone),
        session.product,
        ptu17,
        qty=(50,),
        price=30,
    )
    eligible = offer(
        actor_esp2,
        FlexAssetFactory(owner=actor_esp2.organisation, grid_location=zone),
        session.product,
        ptu17,
        qty=(50,),
        price=60,
        tso_eligible=True,
    )
    request(actor_tso, zone, session.product, ptu17, qty=(50,), price=90)
    close(session)
    services.session_clear(session=session, actor=SYSTEM)
    assert [c.offer for c in Contract.objects.all()] == [eligible]
    cheap.refresh_from_db()
    assert cheap.state == OrderState.EXPIRED


@pytest.mark.django_db
def test_auction_respects_minimum_consecutive_ptus(actor_esp, actor_dso, asset, zone, session, ptu17):
    """Item 12(d): a 2-PTU minimum run is not cut to the one PTU the buyer wants."""
    offer(actor_esp, asset, session.product, ptu17, qty=(50, 50), price=30, min_consecutive_ptus=2)
    request(actor_dso, zone, session.product, ptu17, qty=(50,), price=90)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and not Contract.objects.exists()
