"""Network-aware sessions: only PTUs where offers and requests meet are linearised and reported (a held limit is
not "binding" in a PTU without orders), and a buyer never pays above its limit price. The feeder of
test_network_sessions (line 1 from bus 1 to bus 2; the zone holds buses 1 and 2)."""

from __future__ import annotations

import math
from decimal import Decimal

import pandapower as pp
import pytest

from accounts.context import SYSTEM
from grid import services as grid_services
from grid.sensitivity import linearise
from tests.trading import test_network_sessions as feeder_case
from tests.trading.test_network_sessions import PTU, money, network_product, trade
from trading import services
from trading.models import Contract

feeder = feeder_case.feeder
offers_at_buses = feeder_case.offers_at_buses


@pytest.fixture
def overloaded(actor_dso, zone):
    """The feeder with line 1 already 10 kW beyond its limit at the point (held there by the clearing)."""
    net = pp.from_json_string(feeder_case.feeder_json())
    point = linearise(net)
    row = list(point.branch_index).index(1)
    rating = math.hypot(point.base_flow_mw[row] - 0.010, point.base_flow_mvar[row])
    net.line.loc[1, "max_i_ka"] = rating / (math.sqrt(3) * 20.0)
    model = grid_services.network_model_create(
        actor=actor_dso, name="Overloaded", network_json=pp.to_json(net)
    )
    grid_services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zone, buses=[1, 2])
    return model


@pytest.mark.django_db
def test_only_ptus_with_offers_and_requests_are_linearised_and_reported(
    actor_dso, actor_esp, actor_esp2, zone, overloaded, esp_org, esp2_org
):
    from tests.grid.factories import FlexAssetFactory

    assets = []
    for owner, bus in ((esp_org, 1), (esp2_org, 2)):
        asset = FlexAssetFactory(owner=owner, grid_location=zone)
        grid_services.asset_bus_set(actor=actor_dso, network_model=overloaded, asset=asset, bus_index=bus)
        assets.append(asset)
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, assets)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    stored = run.network
    # Line 1 is held at its forecast flow; it binds where orders meet, and nowhere else is anything reported.
    assert list(stored.binding) == [str(PTU)]
    row = stored.branches.index(["line", 1])
    for t in (0, PTU - 1, PTU + 1, 95):
        assert stored.flow_before_mw[row][t] is None and stored.flow_after_mw[row][t] is None
        assert stored.ac_loading_percent[row][t] is None and stored.dlmp[0][t] is None
    assert stored.flow_before_mw[row][PTU] is not None and stored.ac_loading_percent[row][PTU] is not None
    assert all(set(h["relinearised_ptus"]) <= {PTU} for h in stored.ac_history)


@pytest.mark.django_db
def test_no_buyer_pays_above_its_limit_and_no_seller_gets_below_its_price(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    # 100 kW wanted at 120 at most. Without the pairing rows the clearing took 70 kW at bus 1 (50) and 30 kW at
    # bus 2, whose D-LMP 150 the buyer then paid for them: above its limit. No request pays 150, so the offer at
    # 150 cannot be paired: the request takes what line 1 lets through from bus 1 (40 kW, a little less with
    # the linearisation's losses) at 50.
    from tests.trading.factories import session_for, tomorrow
    from tests.trading.test_services import close, offer, request

    product = network_product()
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    wanted = request(actor_dso, zone, product, start, qty=(100,), price=120)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    offer(actor_esp2, offers_at_buses[1], product, start, qty=(100,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    contracts = list(Contract.objects.filter(clearing_run=run).select_related("offer", "request"))
    assert [(c.offer_id, c.request_id) for c in contracts] == [(cheap.pk, wanted.pk)]
    assert contracts[0].quantities_kw[PTU] == pytest.approx(40, abs=0.2)
    for contract in contracts:
        price = Decimal(contract.prices[PTU])
        assert contract.offer.price <= price <= contract.request.price
    # Money: the buyer pays what the seller gets, the accepted kW at the contract price.
    kw = contracts[0].quantities_kw[PTU]
    assert money(contracts) == Decimal(repr(kw)) * Decimal(contracts[0].prices[PTU]) / 4000
    assert run.network.binding[str(PTU)] == [{"kind": "line", "index": 1, "side": 1}]
