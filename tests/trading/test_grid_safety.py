"""The grid-safety check of plain auctions (issue 11 item 6, GOPACS' "no new congestion elsewhere"): after a plain
auction solves, every cleared trade is checked on the network of the DSO whose zone holds its offer's asset and
curtailed to the largest safe quantity, with the reason on the run and told to seller and buyer.

The feeder of test_network_sessions: line 1 (bus 1 -> 2) has 20 kW of room; the zone holds buses 1 and 2, so a
DSO request takes its kW half at each; an up offer at bus 1 pushes half its kW over line 1 (about 40 kW fit)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.context import SYSTEM
from accounts.models import Notification
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading import test_network_sessions as feeder_case
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_network_sessions import money
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import Contract, FlexOffer, FlexRequest, OrderState, Product

PTU = 68
feeder = feeder_case.feeder
offers_at_buses = feeder_case.offers_at_buses


def evening(product):
    session = session_for(product, tomorrow())
    return session, session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rule", [Product.ClearingRule.AUCTION_UNIFORM, Product.ClearingRule.AUCTION_PAY_AS_BID]
)
def test_a_plain_auction_trade_that_would_overload_a_line_is_curtailed_with_the_reason_to_both_parties(
    actor_dso, actor_esp, zone, feeder, offers_at_buses, rule
):
    product = ProductFactory(clearing_rule=rule)
    session, start = evening(product)
    wanted = request(actor_dso, zone, product, start, qty=(100,), price=200)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error

    record = run.grid_safety
    assert record["checked"] == [{"dso": zone.dso.legal_name, "network_model": "Feeder", "unmapped": []}]
    assert record["unchecked"] == []
    [cut] = record["curtailed"]
    assert (cut["offer"], cut["request"], cut["ptu"], cut["kw_cleared"]) == (cheap.pk, wanted.pk, PTU, 100.0)
    assert cut["time"] == "17:00 CET" and cut["reason"].startswith("line 1 at 17:00 CET would carry")
    # 40 kW fit on the linearised line (a little less: the AC linearisation carries the losses).
    assert cut["kw_refused"] == pytest.approx(60, abs=0.1)
    [contract] = Contract.objects.filter(clearing_run=run)
    kw = contract.quantities_kw[PTU]
    assert kw == pytest.approx(100 - cut["kw_refused"], abs=1e-6) and contract.prices[PTU] == "50.0000"
    # Money and volumes balance: the contract's value, the run's volume, what the offer and request have left.
    assert money([contract]) == Decimal(repr(kw)) * 50 / 4000
    assert float(run.cleared_volume_kwh) == pytest.approx(kw / 4, abs=1e-3)
    assert float(run.objective) == pytest.approx(
        (200 - 50) * kw / 4000, rel=1e-9
    )  # welfare of what was written
    for order in (FlexOffer.objects.get(pk=cheap.pk), FlexRequest.objects.get(pk=wanted.pk)):
        assert order.state == OrderState.EXPIRED and order.remaining_kw == [pytest.approx(100 - kw, abs=1e-3)]
    # Both parties are told why, in-app.
    for organisation in (actor_esp.organisation, actor_dso.organisation):
        told = Notification.objects.get(organisation=organisation, title__contains="grid-safety check")
        assert f"offer #{cheap.pk} to request #{wanted.pk} at 17:00 CET curtailed to" in told.title
        assert "line 1 at 17:00 CET would carry" in told.body


@pytest.mark.django_db
def test_the_cheapest_trade_gets_the_room_and_a_trade_that_relieves_the_line_passes(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    product = ProductFactory()
    session, start = evening(product)
    request(actor_dso, zone, product, start, qty=(200,), price=200)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    dear = offer(actor_esp2, offers_at_buses[1], product, start, qty=(100,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    # Checked in merit order: 100 kW from bus 1 would put 50 kW on line 1 (refused beyond 40); 100 kW from bus 2
    # takes 50 kW off it, so it passes whole.
    kw = {c.offer_id: c.quantities_kw[PTU] for c in Contract.objects.filter(clearing_run=run)}
    assert kw[dear.pk] == 100.0 and kw[cheap.pk] == pytest.approx(40, abs=0.1)
    assert [c["offer"] for c in run.grid_safety["curtailed"]] == [cheap.pk]


@pytest.mark.django_db
def test_a_tso_buyer_is_checked_on_the_dso_network_of_the_offer(
    actor_tso, actor_esp2, zone, feeder, offers_at_buses
):
    # Down: the offer at bus 2 draws 100 kW more there for the TSO (taken at the upstream grid), all of it over
    # line 1, which has 20 kW of room.
    product = ProductFactory(direction="down")
    session, start = evening(product)
    request(actor_tso, zone, product, start, qty=(100,), price=200)
    down = offer(actor_esp2, offers_at_buses[1], product, start, qty=(100,), price=50, tso_eligible=True)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    [cut] = run.grid_safety["curtailed"]
    assert cut["offer"] == down.pk and cut["kw_refused"] == pytest.approx(80, abs=0.2)
    [contract] = Contract.objects.filter(clearing_run=run)
    assert contract.quantities_kw[PTU] == pytest.approx(20, abs=0.2)


@pytest.mark.django_db
def test_contracts_made_before_gate_closure_count_and_a_trade_with_no_room_is_refused(
    actor_dso, actor_esp, zone, feeder, offers_at_buses
):
    product = ProductFactory()
    session, start = evening(product)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    # Matched continuously before gate closure: 40 kW from bus 1, all of line 1's room.
    first = request(actor_dso, zone, product, start, qty=(40,), price=200, order_mode="aggressor")
    assert [c.quantities_kw for c in Contract.objects.filter(request=first)] == [[40.0]]
    second = request(actor_dso, zone, product, start, qty=(50,), price=200)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    [cut] = run.grid_safety["curtailed"]
    assert (cut["offer"], cut["request"], cut["kw_cleared"]) == (cheap.pk, second.pk, 50.0)
    assert cut["kw_refused"] == pytest.approx(50, abs=0.1)
    assert not Contract.objects.filter(clearing_run=run, quantities_kw__0__gt=0.5).exists()
    told = Notification.objects.get(organisation=actor_dso.organisation, title__contains="grid-safety check")
    assert "refused" in told.title or "curtailed to 0" in told.title


@pytest.mark.django_db
def test_a_dso_without_a_network_model_passes_its_trades_and_the_run_says_so(
    actor_dso, actor_esp, dso_org, esp_org
):
    other = GridLocationFactory(dso=dso_org)
    product = ProductFactory()
    session, start = evening(product)
    request(actor_dso, other, product, start, qty=(100,), price=200)
    offer(
        actor_esp, FlexAssetFactory(owner=esp_org, grid_location=other), product, start, qty=(100,), price=50
    )
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    assert [c.quantities_kw[PTU] for c in Contract.objects.filter(clearing_run=run)] == [100.0]
    [unchecked] = run.grid_safety["unchecked"]
    assert unchecked["dso"] == dso_org.legal_name and "has no network model" in unchecked["reason"]
    assert run.grid_safety["curtailed"] == [] and run.grid_safety["checked"] == []


@pytest.mark.django_db
def test_the_session_page_shows_the_check_and_each_party_its_own_curtailed_trades(
    actor_dso, actor_esp, actor_esp2, actor_fmo, zone, feeder, offers_at_buses, client_for
):
    product = ProductFactory()
    session, start = evening(product)
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    close(session)
    assert services.session_clear(session=session, actor=SYSTEM).state == "succeeded"
    for user, sees_row in (
        (actor_esp.user, True),
        (actor_dso.user, True),
        (actor_fmo.user, True),
        (actor_esp2.user, False),
    ):
        page = client_for(user).get(f"/trading/sessions/{session.pk}/").content.decode()
        assert (
            'data-testid="grid-safety"' in page
            and "Checked on Feeder" in page
            and "1 trade curtailed" in page
        )
        assert (f"offer #{cheap.pk} →" in page and "line 1 at 17:00 CET would carry" in page) is sees_row
