from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.context import SYSTEM
from flexmarket.errors import DomainError
from tests.grid.factories import FlexAssetFactory
from tests.trading.factories import session_for
from trading import services, tasks
from trading.models import ClearingRun, Contract, FlexOffer, FlexRequest, MarketSession, OrderMode, Product


def request(actor, zone, product, start, qty=(100, 100), price=120, **kw):
    return services.request_submit(
        actor=actor,
        grid_location=zone,
        product=product,
        ptu_start=start,
        quantities_kw=list(qty),
        price=price,
        **kw,
    )


def offer(actor, asset, product, start, qty=(60, 60), price=50, **kw):
    return services.offer_submit(
        actor=actor, asset=asset, product=product, ptu_start=start, quantities_kw=list(qty), price=price, **kw
    )


def close(session):
    MarketSession.objects.filter(pk=session.pk).update(
        state=MarketSession.State.CLOSED, gate_closure=timezone.now() - timedelta(minutes=1)
    )
    session.refresh_from_db()


@pytest.mark.django_db
def test_offer_after_gate_closure_is_refused_with_a_clear_message(actor_esp, asset, session, ptu17):
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now() - timedelta(minutes=5))
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, session.product, ptu17)
    assert error.value.code == "gate_closed"
    assert "Gate closure" in error.value.message and "no longer accepted" in error.value.message
    assert not FlexOffer.objects.exists()


@pytest.mark.django_db
def test_offer_above_asset_capability_is_refused_including_open_offers(actor_esp, asset, session, ptu17):
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, session.product, ptu17, qty=(600,))
    assert error.value.code == "above_capability"
    offer(actor_esp, asset, session.product, ptu17, qty=(300,))
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, session.product, ptu17, qty=(250,))
    assert "the 200 kW of" in error.value.message and "still free" in error.value.message
    assert FlexOffer.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["pending", "rejected", "suspended"])
def test_unapproved_asset_is_refused(actor_esp, esp_org, zone, session, ptu17, state):
    unapproved = FlexAssetFactory(owner=esp_org, grid_location=zone, prequalification=state)
    with pytest.raises(DomainError) as error:
        offer(actor_esp, unapproved, session.product, ptu17)
    assert error.value.code == "asset_not_tradable"


@pytest.mark.django_db
def test_other_esps_asset_is_refused(actor_esp2, asset, session, ptu17):
    with pytest.raises(DomainError):
        offer(actor_esp2, asset, session.product, ptu17)


@pytest.mark.django_db
def test_offer_answering_a_request_in_another_zone_is_refused(
    actor_dso, actor_esp, esp_org, dso_org, session, ptu17
):
    from tests.grid.factories import GridLocationFactory, square

    here = GridLocationFactory(dso=dso_org, geometry=square(5, 52))
    there = GridLocationFactory(dso=dso_org, geometry=square(6, 52))
    asked = request(actor_dso, here, session.product, ptu17)
    elsewhere = FlexAssetFactory(owner=esp_org, grid_location=there)
    with pytest.raises(DomainError) as error:
        offer(actor_esp, elsewhere, session.product, ptu17, answers_request=asked)
    assert error.value.code == "wrong_zone"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("qty", "price", "field"),
    [
        ([], 10, "quantities_kw"),
        ([-5], 10, "quantities_kw"),
        ([0, 0], 10, "quantities_kw"),
        (["x"], 10, "quantities_kw"),
        ([10], -1, "price"),
    ],
)
def test_bad_request_input_is_refused(actor_dso, zone, session, ptu17, qty, price, field):
    with pytest.raises(DomainError) as error:
        request(actor_dso, zone, session.product, ptu17, qty=qty, price=price)
    assert error.value.field == field
    assert not FlexRequest.objects.exists()


@pytest.mark.django_db
def test_request_not_on_a_ptu_boundary_is_refused(actor_dso, zone, session, ptu17):
    with pytest.raises(DomainError) as error:
        request(actor_dso, zone, session.product, ptu17 + timedelta(minutes=7))
    assert error.value.code == "invalid_ptu"


@pytest.mark.django_db
def test_esp_cannot_post_requests_and_dso_cannot_post_in_foreign_zone(
    actor_esp, actor_dso2, zone, session, ptu17
):
    with pytest.raises(DomainError):
        request(actor_esp, zone, session.product, ptu17)
    with pytest.raises(DomainError):
        request(actor_dso2, zone, session.product, ptu17)


@pytest.mark.django_db
def test_tso_requests_are_marked(actor_tso, zone, session, ptu17):
    assert request(actor_tso, zone, session.product, ptu17).is_tso


@pytest.mark.django_db
def test_down_offers_are_stopped_in_a_congested_zone(actor_esp, esp_org, zone, ptu17):
    from tests.trading.factories import ProductFactory, tomorrow

    down = ProductFactory(direction="down")
    session_for(down, tomorrow())
    zone.status = "congested"
    zone.save()
    with pytest.raises(DomainError) as error:
        offer(actor_esp, FlexAssetFactory(owner=esp_org, grid_location=zone), down, ptu17)
    assert error.value.code == "zone_congested"


@pytest.mark.django_db
def test_owner_cancels_before_gate_closure_others_cannot(actor_esp, actor_esp2, asset, session, ptu17):
    order = offer(actor_esp, asset, session.product, ptu17)
    with pytest.raises(DomainError):
        services.order_cancel(actor=actor_esp2, order=order)
    assert services.order_cancel(actor=actor_esp, order=order).state == "cancelled"


@pytest.mark.django_db
def test_continuous_aggressor_matches_best_price_then_oldest(
    actor_dso, actor_esp, actor_esp2, asset, asset2, zone, continuous_session, ptu17
):
    product = continuous_session.product
    cheap = offer(actor_esp, asset, product, ptu17, qty=(40, 40), price=30)
    dear = offer(actor_esp2, asset2, product, ptu17, qty=(100, 100), price=45)
    bought = request(actor_dso, zone, product, ptu17, qty=(60, 60), price=50, order_mode=OrderMode.AGGRESSOR)
    contracts = {c.offer_id: c for c in Contract.objects.all()}
    assert contracts[cheap.pk].quantities_kw == [40, 40] and contracts[cheap.pk].prices == [
        "30.0000",
        "30.0000",
    ]
    assert contracts[dear.pk].quantities_kw == [20, 20] and contracts[dear.pk].prices == [
        "45.0000",
        "45.0000",
    ]
    bought.refresh_from_db()
    dear.refresh_from_db()
    assert bought.state == "filled" and dear.remaining_kw == [80, 80] and dear.state == "partially_filled"


@pytest.mark.django_db
def test_unmatched_aggressor_is_cancelled(actor_dso, zone, continuous_session, ptu17):
    order = request(actor_dso, zone, continuous_session.product, ptu17, order_mode=OrderMode.AGGRESSOR)
    assert order.state == "cancelled"


@pytest.mark.django_db
def test_gate_closure_clearing_produces_contracts_exactly_once(
    actor_dso, actor_esp, actor_esp2, asset, asset2, zone, session, ptu17
):
    request(actor_dso, zone, session.product, ptu17, qty=(100, 100), price=100)
    offer(actor_esp, asset, session.product, ptu17, qty=(60, 60), price=50)
    offer(actor_esp2, asset2, session.product, ptu17, qty=(80, 80), price=70)
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now() - timedelta(minutes=1))
    assert tasks.gate_closures_process_task() == [session.pk]
    tasks.session_clear_task(session.pk)  # the same task delivered again
    session.refresh_from_db()
    assert session.state == "cleared"
    assert ClearingRun.objects.filter(session=session).count() == 1
    run = ClearingRun.objects.get()
    assert run.state == "succeeded" and run.solver_status == "optimal"
    assert set(run.timings) >= {"load", "build", "solve", "write"}
    contracts = Contract.objects.order_by("offer__price")
    assert [c.quantities_kw[68:70] for c in contracts] == [[60, 60], [40, 40]]
    assert {c.prices[68] for c in contracts} == {"70.0000"}
    assert len(contracts[0].quantities_kw) == 96
    assert contracts[0].reference.startswith("FM-") and "-R" in contracts[0].reference


@pytest.mark.django_db
def test_fmo_rerun_keeps_old_run_and_supersedes_contracts(
    actor_dso, actor_esp, actor_fmo, asset, zone, session, ptu17
):
    request(actor_dso, zone, session.product, ptu17, price=100)
    offer(actor_esp, asset, session.product, ptu17, price=50)
    close(session)
    first = services.session_clear(session=session, actor=SYSTEM)
    with pytest.raises(DomainError):
        services.session_clear(session=session, actor=actor_dso, rerun=True)
    second = services.session_clear(session=session, actor=actor_fmo, rerun=True)
    assert second.pk != first.pk
    first.refresh_from_db()
    assert not first.is_current and second.is_current
    assert Contract.objects.filter(state="superseded").count() == 1
    assert Contract.objects.filter(state="active", clearing_run=second).count() == 1


@pytest.mark.django_db
def test_failed_clearing_is_recorded_and_the_session_can_be_cleared_again(
    actor_dso, actor_esp, asset, zone, session, ptu17, monkeypatch
):
    request(actor_dso, zone, session.product, ptu17, price=100)
    offer(actor_esp, asset, session.product, ptu17, price=50)
    close(session)
    monkeypatch.setattr(
        services.auction,
        "clear_auction",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("solver crashed")),
    )
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "solver crashed" in run.error
    session.refresh_from_db()
    assert session.state == "closed" and not Contract.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("day", "n_ptus"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100), (date(2026, 6, 1), 96)]
)
def test_sessions_on_dst_days_have_92_or_100_ptus(product, day, n_ptus):
    session = services.market_session_open(product=product, day=day)
    assert (session.delivery_end - session.delivery_start) / timedelta(minutes=15) == n_ptus
    # Day-ahead gate closure: 12:00 local on D-1.
    assert session.gate_closure.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam")).hour == 12


@pytest.mark.django_db
def test_sessions_open_ahead_is_idempotent(product):
    first = services.sessions_open_ahead()
    again = services.sessions_open_ahead()
    assert len(first) == 3 and [s.pk for s in first] == [s.pk for s in again]


@pytest.mark.django_db
def test_availability_agreement_generates_offers_once(
    actor_dso, actor_esp, esp_org, asset, zone, product, session
):
    agreement = services.agreement_propose(
        actor=actor_dso,
        esp=esp_org,
        grid_location=zone,
        product=product,
        capacity_kw=200,
        availability_price=5,
        activation_price=80,
        windows=[{"days": [0, 1, 2, 3, 4, 5, 6], "start": "17:00", "end": "20:00"}],
        valid_from=session.delivery_day,
        valid_to=session.delivery_day + timedelta(days=30),
        asset=asset,
    )
    services.agreement_respond(actor=actor_esp, agreement=agreement, accept=True)
    offers = services.agreement_offers_generate(session=session)
    assert len(offers) == 1 and offers[0].price == Decimal("80")
    assert sum(1 for kw in offers[0].quantities_kw if kw) == 12
    assert services.agreement_offers_generate(session=session) == []
    # The reserved capacity counts toward the asset's capability.
    with pytest.raises(DomainError):
        offer(actor_esp, asset, product, session.delivery_start + timedelta(hours=17), qty=(400,))


@pytest.mark.django_db
def test_pay_as_bid_product_prices_at_offers(actor_dso, actor_esp, actor_esp2, asset, asset2, zone, ptu17):
    from tests.trading.factories import ProductFactory, tomorrow

    product = ProductFactory(clearing_rule=Product.ClearingRule.AUCTION_PAY_AS_BID)
    session = session_for(product, tomorrow())
    start = session.delivery_start + timedelta(hours=17)
    request(actor_dso, zone, product, start, qty=(100,), price=100)
    offer(actor_esp, asset, product, start, qty=(60,), price=50)
    offer(actor_esp2, asset2, product, start, qty=(80,), price=70)
    close(session)
    services.session_clear(session=session, actor=SYSTEM)
    assert sorted(c.prices[68] for c in Contract.objects.all()) == ["50.0000", "70.0000"]
