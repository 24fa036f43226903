"""Network-aware sessions (issue 11 item 4): `session_clear` of a product with `network_aware` clears on the DSO's
network at the forecast point and prices each contract at the D-LMP of its offer's bus.

The network: a 20 kV feeder, slack at bus 0, line 0 (0-1) wide, line 1 (1-2) with 20 kW of room above the 2 MW
that bus 2's load draws. The zone holds buses 1 and 2, so a request there spreads half on each; the cheap offer
(50 EUR/MWh) sits at bus 1, the dear one (150) at bus 2. The plain auction takes 100 kW of the cheap offer. On the
network, serving the request from bus 1 pushes 50 kW - x2 more over line 1, so at least 30 kW must come from bus 2:
70 kW at 50 and 30 kW at 150, with D-LMPs 50 at bus 1 and 150 at bus 2 (the line's shadow price 100).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pandapower as pp
import pytest
from django.core.exceptions import ValidationError

from accounts.context import SYSTEM
from flexmarket.errors import DomainError
from grid import services as grid_services
from grid.models import ZoneBusMapping
from grid.sensitivity import linearise
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, PortfolioFactory
from tests.trading.factories import MarketFactory, ProductFactory, session_for, tomorrow
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import ClearingReplay, ClearingRunNetwork, Contract, MarketSession, Product

ROOM_MW = 0.020
PTU = 68  # 17:00 local on a 96-PTU day


def feeder_json() -> str:
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn_kv=20.0, name=f"bus {n}") for n in range(3)]
    pp.create_ext_grid(net, buses[0], vm_pu=1.0)
    for a, b, max_i in ((0, 1, 1.0), (1, 2, 1.0)):
        pp.create_line_from_parameters(
            net, buses[a], buses[b], length_km=1.0, r_ohm_per_km=0.1, x_ohm_per_km=0.1, c_nf_per_km=0.0,
            max_i_ka=max_i,
        )  # fmt: skip
    pp.create_load(net, buses[2], p_mw=2.0, q_mvar=0.0)
    # Line 1's rating: its base active flow plus ROOM_MW (the active-flow limit is sqrt(rating^2 - Q^2)).
    point = linearise(net)
    row = list(point.branch_index).index(1)
    rating = math.hypot(point.base_flow_mw[row] + ROOM_MW, point.base_flow_mvar[row])
    net.line.loc[1, "max_i_ka"] = rating / (math.sqrt(3) * 20.0)
    return pp.to_json(net)


@pytest.fixture
def feeder(actor_dso, zone):
    model = grid_services.network_model_create(actor=actor_dso, name="Feeder", network_json=feeder_json())
    grid_services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zone, buses=[1, 2])
    return model


@pytest.fixture
def offers_at_buses(actor_dso, esp_org, esp2_org, zone, feeder):
    cheap = FlexAssetFactory(owner=esp_org, grid_location=zone)
    dear = FlexAssetFactory(owner=esp2_org, grid_location=zone)
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=cheap, bus_index=1)
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=dear, bus_index=2)
    return cheap, dear


def network_product(**fields) -> Product:
    return ProductFactory(network_aware=True, **fields)


def trade(product, actors, zone, assets):
    """The same orders in a session of `product`: 100 kW wanted at 200 EUR/MWh, 100 kW at 50 and at 150."""
    actor_dso, actor_esp, actor_esp2 = actors
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    offer(actor_esp, assets[0], product, start, qty=(100,), price=50)
    offer(actor_esp2, assets[1], product, start, qty=(100,), price=150)
    close(session)
    return session


def money(contracts) -> Decimal:
    """EUR over all contracts: kW x price x 0.25 h / 1000, in Decimal from the stored values."""
    total = Decimal(0)
    for contract in contracts:
        for kw, price in zip(contract.quantities_kw, contract.prices, strict=True):
            total += Decimal(repr(kw)) * Decimal(price)
    return total / Decimal(4000)


@pytest.mark.django_db
def test_a_binding_line_makes_the_network_aware_clearing_take_other_offers_at_other_prices(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    actors = (actor_dso, actor_esp, actor_esp2)
    plain = trade(ProductFactory(), actors, zone, offers_at_buses)
    aware = trade(network_product(), actors, zone, offers_at_buses)
    plain_run = services.session_clear(session=plain, actor=SYSTEM)
    run = services.session_clear(session=aware, actor=SYSTEM)
    assert plain_run.state == run.state == "succeeded", run.error
    assert run.pricing_rule == "dlmp" and plain_run.pricing_rule == "uniform"

    plain_kw = {c.offer.price: c.quantities_kw[PTU] for c in Contract.objects.filter(clearing_run=plain_run)}
    aware_contracts = list(Contract.objects.filter(clearing_run=run).select_related("offer"))
    aware_kw = {c.offer.price: c.quantities_kw[PTU] for c in aware_contracts}
    # The plain auction takes 100 kW of the cheap offer; its grid-safety check (below) curtails it to what line 1
    # takes: 40 kW, less the loss term of the AC linearisation.
    assert list(plain_kw) == [Decimal("50.0000")] and plain_kw[Decimal("50.0000")] == pytest.approx(
        40, abs=0.1
    )
    assert [c["kw_cleared"] for c in plain_run.grid_safety["curtailed"]] == [100.0]
    assert aware_kw[Decimal("50.0000")] == pytest.approx(70, abs=1.0)
    assert aware_kw[Decimal("150.0000")] == pytest.approx(30, abs=1.0)
    assert sum(aware_kw.values()) == pytest.approx(100, abs=1e-3)

    stored = ClearingRunNetwork.objects.get(run=run)
    assert stored.network_model == feeder and stored.point == "base" and stored.forecast_run is None
    dlmp = {bus: row[PTU] for bus, row in zip(stored.buses, stored.dlmp, strict=True)}
    assert dlmp[1] == pytest.approx(50, abs=1e-3) and dlmp[2] == pytest.approx(150, abs=1e-3)
    for i in range(len(stored.buses)):
        parts = stored.dlmp_energy[i][PTU] + stored.dlmp_congestion[i][PTU] + stored.dlmp_voltage[i][PTU]
        assert parts == pytest.approx(stored.dlmp[i][PTU], abs=1e-3)
    assert stored.binding[str(PTU)] == [{"kind": "line", "index": 1, "side": 1}]
    row = stored.branches.index(["line", 1])
    assert stored.flow_after_mw[row][PTU] == pytest.approx(stored.flow_limit_mw[row][PTU], abs=1e-6)
    assert stored.flow_after_mw[row][PTU] > stored.flow_before_mw[row][PTU]
    assert stored.dlmp[0][PTU - 1] is None  # no order, no price
    # The AC power flow with the cleared schedule agrees: one clearing, nothing left beyond a limit.
    assert stored.ac_iterations == 1 and stored.ac_feasible is True and stored.ac_residuals == {}
    assert stored.ac_loading_percent[row][PTU] <= 100.0 + 0.5
    assert stored.ac_loading_percent[row][PTU] == pytest.approx(100.0, abs=0.5)

    # Every contract is priced at its offer's bus D-LMP, stored like the plain auction's prices (4 decimals).
    bus_of = {offers_at_buses[0].pk: 1, offers_at_buses[1].pk: 2}
    for contract in aware_contracts:
        expected = Decimal(repr(dlmp[bus_of[contract.offer.asset_id]])).quantize(Decimal("0.0001"))
        assert Decimal(contract.prices[PTU]) == expected
    # Money sums as in the plain clearing: what the buyers pay is what the sellers get, contract by contract,
    # and equals each accepted offer's kW at its bus's D-LMP; contracts add up to the run's cleared volume.
    accepted = (
        sum(aware_kw[p] * dlmp[b] for p, b in ((Decimal("50.0000"), 1), (Decimal("150.0000"), 2))) / 4000
    )
    assert float(money(aware_contracts)) == pytest.approx(accepted, abs=1e-4)
    for clearing, contracts in (
        (plain_run, Contract.objects.filter(clearing_run=plain_run)),
        (run, aware_contracts),
    ):
        assert sum(sum(c.quantities_kw) for c in contracts) / 4 == pytest.approx(
            float(clearing.cleared_volume_kwh), abs=1e-3
        )  # the run's volume is stored to the Wh
    assert float(money(Contract.objects.filter(clearing_run=plain_run))) == pytest.approx(
        plain_kw[Decimal("50.0000")] * 50 / 4000
    )
    aware.refresh_from_db()
    assert aware.state == MarketSession.State.CLEARED


@pytest.mark.django_db
def test_the_latest_forecast_run_is_the_operating_point(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    # Tomorrow's forecast halves the load: line 1 has room, so the cheap offer serves the whole request.
    forecast = grid_services.forecast_run_request(
        actor=actor_dso, network_model=feeder, delivery_day=tomorrow(), load_scaling=0.5
    )
    forecast = grid_services.forecast_run_execute(run_id=forecast.pk, prognoses=lambda **_: {})
    assert forecast.state == "succeeded", forecast.error
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    stored = run.network
    assert stored.point == "forecast" and stored.forecast_run == forecast
    assert [c.quantities_kw[PTU] for c in Contract.objects.filter(clearing_run=run)] == [100.0]
    assert stored.binding == {}
    assert len({row[PTU] for row in stored.dlmp}) == 1  # uncongested: one price on every bus


@pytest.mark.django_db
def test_a_dso_without_a_network_model_fails_the_run_with_the_reason(
    actor_dso, actor_esp, actor_esp2, zone, esp_org, esp2_org
):
    assets = (
        FlexAssetFactory(owner=esp_org, grid_location=zone),
        FlexAssetFactory(owner=esp2_org, grid_location=zone),
    )
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, assets)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed"
    assert "has no network model" in run.error and zone.dso.legal_name in run.error
    session.refresh_from_db()
    assert session.state == MarketSession.State.CLOSED
    assert not Contract.objects.exists() and not ClearingRunNetwork.objects.exists()


@pytest.mark.django_db
def test_zones_without_buses_fail_the_run_instead_of_clearing_plainly(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    ZoneBusMapping.objects.filter(network_model=feeder).delete()
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "has buses mapped to the zones" in run.error and zone.name in run.error
    assert not Contract.objects.exists()


@pytest.mark.django_db
def test_block_offers_are_left_out_with_the_reason(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    product = network_product()
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    block = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50, all_or_nothing=True)
    offer(actor_esp2, offers_at_buses[1], product, start, qty=(100,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    assert run.excluded == [
        {"order": f"offer:{block.pk}", "reason": "a network-aware session clears plain offers only: all or nothing "
         "cannot be honoured by its linear clearing"}
    ]  # fmt: skip
    block.refresh_from_db()
    assert block.state == "rejected" and "all or nothing" in block.state_reason
    assert [c.offer_id for c in Contract.objects.filter(clearing_run=run)] != [block.pk]


@pytest.mark.django_db
def test_network_aware_needs_the_uniform_auction():
    product = ProductFactory(network_aware=True, clearing_rule=Product.ClearingRule.AUCTION_PAY_AS_BID)
    with pytest.raises(ValidationError) as error:
        product.full_clean()
    assert "network_aware" in error.value.message_dict


def _replay(actor, session, capture, **changes):
    with capture(execute=True):
        made = services.replay_request(actor=actor, session=session, **changes)
    made.refresh_from_db()
    assert made.state == "succeeded", made.error
    return made


@pytest.mark.django_db
def test_replays_switch_the_network_on_and_off_and_write_nothing(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses, django_capture_on_commit_callbacks
):
    actors = (actor_dso, actor_esp, actor_esp2)
    aware = trade(network_product(), actors, zone, offers_at_buses)
    assert services.session_clear(session=aware, actor=SYSTEM).state == "succeeded"
    aware.refresh_from_db()
    contracts = sorted(Contract.objects.values_list("pk", "state", "quantities_kw"))
    same = _replay(actor_dso, aware, django_capture_on_commit_callbacks)
    assert (
        same.reproduced
        and same.pricing_rule == "dlmp"
        and same.result["network"]
        and same.baseline["network"]
    )
    zone_key = str(zone.pk)
    # On the network: 70 kW at 50 (bus 1) and 30 kW at 150 (bus 2) for one PTU: 25 kWh, (70x50 + 30x150)/4000 EUR.
    assert same.result["volume_kwh"] == 25.0 and same.result["cost_eur"] == "2.00"
    assert same.result["zones"][zone_key]["prices"][PTU] == pytest.approx(80.0, abs=0.5)  # (70x50+30x150)/100
    off = _replay(actor_dso, aware, django_capture_on_commit_callbacks, network="off", pricing_rule="uniform")
    assert not off.result["network"] and off.baseline["network"]
    # Without the network the cheap offer alone serves the request: 100 kW at the uniform price.
    assert off.result["volume_kwh"] == 25.0 and off.result["zones"][zone_key]["prices"][PTU] == 50.0
    assert Decimal(off.result["welfare_eur"]) > Decimal(same.result["welfare_eur"])
    assert sorted(Contract.objects.values_list("pk", "state", "quantities_kw")) == contracts

    plain = trade(ProductFactory(), actors, zone, offers_at_buses)
    assert services.session_clear(session=plain, actor=SYSTEM).state == "succeeded"
    plain.refresh_from_db()
    on = _replay(actor_dso, plain, django_capture_on_commit_callbacks, network="on")
    assert on.result["network"] and not on.baseline["network"] and on.reproduced
    assert (
        on.result["cost_eur"] == same.result["cost_eur"]
        and on.baseline["zones"][zone_key]["prices"][PTU] == 50.0
    )


@pytest.mark.django_db
def test_a_network_replay_refuses_a_price_cap_or_another_pricing_rule(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    aware = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    services.session_clear(session=aware, actor=SYSTEM)
    aware.refresh_from_db()
    for changes, field in (
        ({"price_cap": "60"}, "price_cap"),
        ({"pricing_rule": "pay_as_bid"}, "pricing_rule"),
        ({"network": "sideways"}, "network"),
    ):
        with pytest.raises(DomainError) as error:
            services.replay_request(actor=actor_dso, session=aware, **changes)
        assert error.value.field == field
    assert not ClearingReplay.objects.exists()


@pytest.fixture
def cleared(actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses):
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    return session


@pytest.mark.django_db
def test_the_network_endpoint_answers_the_fmo_and_the_networks_dso_only(
    cleared, client_for, dso_user, fmo_user, dso2_user, esp_user, api_client
):
    url = f"/api/v1/sessions/{cleared.pk}/network/"
    body = client_for(dso_user).get(url).json()
    assert body["point"] == "base" and body["buses"] == [0, 1, 2]
    assert body["dlmp"][2][PTU] == pytest.approx(150, abs=1e-3)
    assert body["binding"][str(PTU)] == [{"kind": "line", "index": 1, "side": 1}]
    assert body["branches"] == [{"kind": "line", "index": 0}, {"kind": "line", "index": 1}]
    assert len(body["flow_after_mw"]) == 2 and len(body["flow_after_mw"][1]) == 96
    assert body["ac_iterations"] == 1 and body["ac_feasible"] is True and body["ac_residuals"] == {}
    assert len(body["ac_loading_percent"]) == 2 and len(body["ac_loading_percent"][1]) == 96
    assert client_for(fmo_user).get(url).status_code == 200
    for user in (dso2_user, esp_user):
        assert client_for(user).get(url).status_code == 404
    assert api_client.get(url).status_code in (401, 403)
    assert client_for(dso_user).get(f"/api/v1/sessions/{cleared.pk}/").json()["network_aware"] is True


@pytest.mark.django_db
def test_a_plain_session_has_no_network_result(client_for, dso_user, session):
    assert client_for(dso_user).get(f"/api/v1/sessions/{session.pk}/network/").status_code == 404


@pytest.mark.django_db
def test_the_session_page_shows_binding_limits_and_dlmps_per_bus(cleared, client, dso_user, esp_user):
    client.force_login(dso_user)
    page = client.get(f"/trading/sessions/{cleared.pk}/?ptu={PTU}").content.decode()
    assert 'data-testid="network-clearing"' in page and 'data-testid="dlmp-heatmap"' in page
    assert "line 1 (upper)" in page
    assert 'data-testid="network-ac"' in page and "AC validation: 1 clearing;" in page
    assert 'data-testid="network-ac-residuals"' not in page
    assert "150.0000" in page and "50.0000" in page
    assert 'data-testid="network-flows"' in page
    client.force_login(esp_user)
    assert (
        'data-testid="network-clearing"'
        not in client.get(f"/trading/sessions/{cleared.pk}/").content.decode()
    )


@pytest.mark.django_db
def test_the_session_page_maps_dlmps_and_loading_after_clearing_for_the_dso_only(
    cleared, client, dso_user, esp_user, fmo_user, dso2_user
):
    client.force_login(dso_user)
    response = client.get(f"/trading/sessions/{cleared.pk}/")  # no ?ptu: opens at the PTU with a binding line
    page = response.content.decode()
    assert (
        'data-testid="price-map"' in page and 'id="price-map-data"' in page and "trading-price-map.js" in page
    )
    assert f'value="{PTU}"' in page and response.context["ptu"] == PTU
    price_map = response.context["price_map"]
    assert price_map["buses"] == [0, 1, 2] and price_map["ptu_labels"][PTU].startswith("17:00")
    assert price_map["dlmp"][1][PTU] == pytest.approx(50, abs=1e-3) and price_map["dlmp"][2][
        PTU
    ] == pytest.approx(150, abs=1e-3)
    assert (price_map["low"], price_map["high"]) == (
        pytest.approx(50, abs=1e-3),
        pytest.approx(150, abs=1e-3),
    )
    assert price_map["binding"][str(PTU)] == ["line:1"]
    # Loading after clearing: |active flow after| over the line's rating, sqrt(3) x 20 kV x max_i_ka.
    stored = ClearingRunNetwork.objects.get(run__session=cleared)
    net = pp.from_json_string(feeder_json())
    row = stored.branches.index(["line", 1])
    rating_mva = math.sqrt(3) * 20.0 * float(net.line.at[1, "max_i_ka"])
    assert price_map["loading_after_percent"][row][PTU] == pytest.approx(
        abs(stored.flow_after_mw[row][PTU]) / rating_mva * 100, abs=0.05
    )
    assert price_map["loading_after_percent"][row][PTU] == pytest.approx(100, abs=0.5)  # at its limit
    client.force_login(fmo_user)
    assert client.get(f"/trading/sessions/{cleared.pk}/").context["price_map"] == price_map
    for user in (esp_user, dso2_user):  # an ESP of the session, another DSO: no grid data
        client.force_login(user)
        response = client.get(f"/trading/sessions/{cleared.pk}/")
        assert response.status_code == 200 and "price_map" not in response.context
        assert 'id="price-map-data"' not in response.content.decode()


def down_session(actors, zone, assets):
    actor_dso, actor_esp, actor_esp2 = actors
    product = network_product(direction="down")
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    offer(actor_esp, assets[0], product, start, qty=(100,), price=50)
    offer(actor_esp2, assets[1], product, start, qty=(100,), price=150)
    close(session)
    return session


@pytest.mark.django_db
def test_a_down_session_pays_minus_the_dlmp(actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses):
    # Down: the offers consume more and the request's kW flow back from its zone, relieving line 1; the cheap
    # offer serves it all and the D-LMP is -50 (a down seller is paid minus the D-LMP).
    session = down_session((actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    contracts = list(Contract.objects.filter(clearing_run=run))
    assert [(c.offer.price, c.quantities_kw[PTU], c.prices[PTU]) for c in contracts] == [
        (Decimal("50.0000"), 100.0, "50.0000")
    ]
    assert {row[PTU] for row in run.network.dlmp} == {-50.0}


@pytest.mark.django_db
def test_an_asset_without_a_bus_fails_the_run(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    grid_services.asset_bus_set(
        actor=actor_dso, network_model=feeder, asset=offers_at_buses[1], bus_index=None
    )
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and f"no bus for {offers_at_buses[1].name}" in run.error


@pytest.mark.django_db
def test_a_portfolio_over_two_buses_and_tso_requests_are_left_out_with_their_reasons(
    actor_dso, actor_esp, actor_esp2, actor_tso, zone, feeder, offers_at_buses
):
    cheap, dear = offers_at_buses
    second = FlexAssetFactory(owner=cheap.owner, grid_location=zone)
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=second, bus_index=2)
    portfolio = PortfolioFactory(owner=cheap.owner, grid_location=zone, assets=[cheap, second])
    product = network_product()
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    tso = request(actor_tso, zone, product, start, qty=(100,), price=300)
    spread = offer(actor_esp, None, product, start, qty=(100,), price=10, portfolio=portfolio)
    offer(actor_esp2, dear, product, start, qty=(100,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    reasons = {entry["order"]: entry["reason"] for entry in run.excluded}
    assert reasons == {
        f"request:{tso.pk}": "a network-aware session clears the DSO's requests only",
        f"offer:{spread.pk}": "the portfolio's members sit on buses 1, 2; a network-aware session clears an offer "
        "at one bus",
    }
    assert [c.offer.asset_id for c in Contract.objects.filter(clearing_run=run)] == [dear.pk]


@pytest.mark.django_db
def test_a_session_without_orders_clears_without_a_network(product):
    product.network_aware = True
    product.save()
    session = session_for(product, tomorrow())
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and run.cleared_volume_kwh == 0
    assert not ClearingRunNetwork.objects.exists()


@pytest.mark.django_db
def test_a_down_session_with_a_binding_line_pays_each_seller_minus_its_buss_dlmp(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    # The cheap down offer now consumes at bus 2: serving the request from it alone would draw 50 kW more over
    # line 1 (room 20), so at most 70 kW come from it and 30 from bus 1: D-LMPs -50 at bus 2 and -150 at bus 1.
    cheap, dear = offers_at_buses
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=cheap, bus_index=2)
    grid_services.asset_bus_set(actor=actor_dso, network_model=feeder, asset=dear, bus_index=1)
    session = down_session((actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    sold = {
        c.offer.asset_id: (c.quantities_kw[PTU], c.prices[PTU])
        for c in Contract.objects.filter(clearing_run=run)
    }
    assert sold[cheap.pk][0] == pytest.approx(70, abs=1.0) and sold[cheap.pk][1] == "50.0000"
    assert sold[dear.pk][0] == pytest.approx(30, abs=1.0) and sold[dear.pk][1] == "150.0000"
    dlmp = {bus: row[PTU] for bus, row in zip(run.network.buses, run.network.dlmp, strict=True)}
    assert dlmp[2] == pytest.approx(-50, abs=1e-3) and dlmp[1] == pytest.approx(-150, abs=1e-3)
    assert run.network.binding[str(PTU)] == [{"kind": "line", "index": 1, "side": 1}]
    # The AC check adds the down kW with their real sign: line 1 carries its limit, not 50 kW less.
    row = run.network.branches.index(["line", 1])
    assert run.network.ac_iterations == 1 and run.network.ac_feasible is True
    assert run.network.ac_loading_percent[row][PTU] == pytest.approx(100.0, abs=0.5)


@pytest.mark.django_db
def test_zones_of_two_dsos_fail_the_run(
    actor_dso, actor_dso2, actor_esp, actor_esp2, zone, feeder, offers_at_buses, dso2_org
):
    product = network_product()
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(100,), price=200)
    request(actor_dso2, GridLocationFactory(dso=dso2_org), product, start, qty=(10,), price=200)
    offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "more than one DSO" in run.error
    assert zone.dso.legal_name in run.error and dso2_org.legal_name in run.error


@pytest.mark.django_db
def test_a_forecast_of_another_time_zones_day_fails_the_run(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses
):
    # The forecast covers the day in Europe/Amsterdam; a market in New York has its day six hours later.
    run = grid_services.forecast_run_request(actor=actor_dso, network_model=feeder, delivery_day=tomorrow())
    assert grid_services.forecast_run_execute(run_id=run.pk, prognoses=lambda **_: {}).state == "succeeded"
    product = network_product(market=MarketFactory(time_zone="America/New_York"))
    session = trade(product, (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    failed = services.session_clear(session=session, actor=SYSTEM)
    assert (
        failed.state == "failed"
        and f"Forecast #{run.pk} covers" in failed.error
        and "not the PTU" in failed.error
    )


@pytest.mark.django_db
def test_a_network_whose_power_flow_does_not_converge_fails_the_run(
    actor_dso, actor_esp, actor_esp2, zone, offers_at_buses, feeder
):
    net = pp.from_json_string(feeder_json())
    net.load.loc[0, "p_mw"] = 5000.0  # far beyond what a 20 kV feeder can carry
    model = grid_services.network_model_create(actor=actor_dso, name="Feeder", network_json=pp.to_json(net))
    grid_services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zone, buses=[1, 2])
    for asset, bus in zip(offers_at_buses, (1, 2), strict=True):
        grid_services.asset_bus_set(actor=actor_dso, network_model=model, asset=asset, bus_index=bus)
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "failed" and "does not converge" in run.error and not Contract.objects.exists()


@pytest.mark.django_db
def test_an_fmo_rerun_stores_its_own_network_result_and_supersedes_the_contracts(
    cleared, actor_fmo, client_for, dso_user
):
    first = cleared.clearing_runs.get(is_current=True)
    second = services.session_clear(session=cleared, actor=actor_fmo, rerun=True)
    assert second.state == "succeeded", second.error
    assert ClearingRunNetwork.objects.filter(run__in=[first, second]).count() == 2
    assert Contract.objects.filter(clearing_run=first, state="superseded").count() == 2
    assert Contract.objects.filter(clearing_run=second, state="active").count() == 2
    body = client_for(dso_user).get(f"/api/v1/sessions/{cleared.pk}/network/").json()
    assert body["run"] == second.pk


@pytest.mark.django_db
def test_the_session_page_replays_a_network_aware_session_without_the_network(
    client, dso_user, cleared, django_capture_on_commit_callbacks
):
    client.force_login(dso_user)
    page = client.get(f"/trading/sessions/{cleared.pk}/").content.decode()
    assert 'data-testid="replay-network"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/trading/sessions/{cleared.pk}/replay/", {"network": "off", "pricing_rule": "uniform"}
        )
    made = ClearingReplay.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/trading/replays/{made.pk}/"
    made.refresh_from_db()
    assert made.network == "off" and made.pricing_rule == "uniform" and made.state == "succeeded"
    detail = client.get(f"/trading/replays/{made.pk}/").content.decode()
    assert "off (zone by zone)" in detail and "(was on)" in detail


@pytest.mark.django_db
def test_the_session_page_lists_the_forecasts_needs_per_zone(
    actor_dso, actor_esp, actor_esp2, zone, feeder, offers_at_buses, client, dso_user
):
    """Issue 11 item 8: beside the clearing, the needs per zone of the forecast it was linearised at."""
    forecast = grid_services.forecast_run_request(
        actor=actor_dso, network_model=feeder, delivery_day=tomorrow(), load_scaling=0.5
    )
    forecast = grid_services.forecast_run_execute(run_id=forecast.pk, prognoses=lambda **_: {})
    session = trade(network_product(), (actor_dso, actor_esp, actor_esp2), zone, offers_at_buses)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded" and run.network.forecast_run == forecast
    client.force_login(dso_user)
    page = client.get(f"/trading/sessions/{session.pk}/").content.decode()
    assert 'data-testid="network-no-needs"' in page  # half the load: nothing congested
    # The same forecast had it needed 40 kW up in the zone over PTUs 68-69 (as the needs engine stores them):
    type(forecast).objects.filter(pk=forecast.pk).update(
        needs={
            "zones": {str(zone.pk): {str(PTU): 40.0, str(PTU + 1): 20.0}},
            "unsolvable": [],
            "linear_ok": [],
        }
    )
    page = client.get(f"/trading/sessions/{session.pk}/").content.decode()
    assert 'data-testid="network-needs"' in page and zone.name in page
    assert "40 kW" in page and "15 kWh" in page and f"/trading/needs/{forecast.pk}/" in page
