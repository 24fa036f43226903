"""Reactive flexibility in network-aware sessions (issue 11 item 4): offers with a reactive range, the Q-LMP per
bus and PTU stored on the run, and the reactive power paid kVAr x Q-LMP on the offer's contract.

The network: a 20 kV feeder, slack at bus 0, two 10 km lines (4 + 4j ohm each) to buses 1 and 2, and a 1 MW
generator at bus 2 that lifts it to 1.0495 p.u. (limit 1.05). The zone holds buses 1 and 2; 300 kW are wanted
there (150 kW on each bus). The cheap offer (50 EUR/MWh) sits at bus 2, where more injection raises the voltage
past its limit; the dear one (150) at bus 1. With a reactive range at bus 2 (10 EUR/Mvarh) the clearing absorbs
a few kVAr there instead of buying from bus 1 (shifting 1 kW costs 100 EUR/MWh; the kVAr to hold the voltage
cost about 5 EUR/MWh-equivalent). Hand-checked prices: the reactive offer is marginal (inside its range) while
the voltage at bus 2 binds at its upper limit, so -Q-LMP at bus 2 equals its price: Q-LMP(2) = -10 EUR/Mvarh,
all of it the voltage component; at bus 1 the same shadow price times dV2/dQ1 over dV2/dQ2 (about -5).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pandapower as pp
import pytest

from accounts.context import SYSTEM
from flexmarket.errors import DomainError
from grid import services as grid_services
from grid.sensitivity import linearise
from tests.grid.factories import FlexAssetFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import Contract, FlexOffer

PTU = 68
V_TARGET = 1.0495


def _feeder(vm_slack: float, generation_mw: float = 1.0):
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn_kv=20.0, name=f"bus {n}") for n in range(3)]
    pp.create_ext_grid(net, buses[0], vm_pu=vm_slack)
    for a, b in ((0, 1), (1, 2)):
        pp.create_line_from_parameters(
            net, buses[a], buses[b], length_km=10.0, r_ohm_per_km=0.4, x_ohm_per_km=0.4, c_nf_per_km=0.0,
            max_i_ka=1.0,
        )  # fmt: skip
    if generation_mw > 0:
        pp.create_sgen(net, buses[2], p_mw=generation_mw, q_mvar=0.0)
    else:
        pp.create_load(net, buses[2], p_mw=-generation_mw, q_mvar=0.0)
    return net


def high_voltage_feeder(target: float = V_TARGET, generation_mw: float = 1.0):
    """The feeder with the slack's set point chosen so that bus 2 sits at `target` p.u."""
    vm = 1.0
    for _ in range(4):
        net = _feeder(vm, generation_mw)
        pp.runpp(net)
        vm += target - float(net.res_bus.vm_pu.at[2])
    return _feeder(vm, generation_mw)


@pytest.fixture
def network(actor_dso, zone):
    model = grid_services.network_model_create(
        actor=actor_dso, name="Sunny feeder", network_json=pp.to_json(high_voltage_feeder())
    )
    grid_services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zone, buses=[1, 2])
    return model


@pytest.fixture
def assets(actor_dso, esp_org, esp2_org, zone, network):
    at_bus_2 = FlexAssetFactory(owner=esp_org, grid_location=zone, max_up_kw=1000, max_down_kw=1000)
    at_bus_1 = FlexAssetFactory(owner=esp2_org, grid_location=zone, max_up_kw=1000, max_down_kw=1000)
    grid_services.asset_bus_set(actor=actor_dso, network_model=network, asset=at_bus_2, bus_index=2)
    grid_services.asset_bus_set(actor=actor_dso, network_model=network, asset=at_bus_1, bus_index=1)
    return at_bus_2, at_bus_1


def clear(actors, zone, assets, **reactive):
    actor_dso, actor_esp, actor_esp2 = actors
    product = ProductFactory(network_aware=True)
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(300,), price=200)
    cheap = offer(actor_esp, assets[0], product, start, qty=(300,), price=50, **reactive)
    offer(actor_esp2, assets[1], product, start, qty=(300,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    return run, cheap


REACTIVE = {"q_min_kvar": "-200", "q_max_kvar": "200", "q_price": "10"}


@pytest.mark.django_db
def test_a_binding_voltage_clears_reactive_flexibility_priced_at_the_hand_checked_q_lmp(
    actor_dso, actor_esp, actor_esp2, zone, network, assets
):
    run, cheap = clear((actor_dso, actor_esp, actor_esp2), zone, assets, **REACTIVE)
    stored = run.network
    assert {"kind": "voltage", "index": 2, "side": 1} in stored.binding[str(PTU)]
    qlmp = {bus: row[PTU] for bus, row in zip(stored.buses, stored.qlmp, strict=True)}
    ratio = (lambda s: s.dv_dq[2, 1] / s.dv_dq[2, 2])(linearise(high_voltage_feeder()))
    assert qlmp[2] == pytest.approx(-10.0, abs=1e-3)
    assert qlmp[1] == pytest.approx(-10.0 * ratio, abs=1e-3) and qlmp[1] == pytest.approx(-5.0, abs=0.05)
    assert qlmp[0] == pytest.approx(0.0, abs=1e-9)  # the slack's voltage does not move
    for i in range(len(stored.buses)):
        assert stored.qlmp_congestion[i][PTU] == pytest.approx(0.0, abs=1e-9)
        assert stored.qlmp_voltage[i][PTU] == pytest.approx(stored.qlmp[i][PTU], abs=1e-9)
    assert stored.qlmp[2][PTU - 1] is None  # nothing cleared there: no price
    assert stored.ac_feasible is True

    # All 300 kW come from the cheap offer at bus 2, which absorbs reactive power to hold its bus at 1.05 p.u.
    contracts = list(Contract.objects.filter(clearing_run=run))
    assert [(c.offer_id, c.quantities_kw[PTU]) for c in contracts] == [
        (cheap.pk, pytest.approx(300, abs=1e-3))
    ]
    contract = contracts[0]
    kvar = contract.reactive_kvar[PTU]
    assert -200 < kvar < -1  # absorbed, inside the range: the marginal means of holding the voltage
    assert contract.reactive_prices[PTU] == "-10.0000"
    assert all(v == 0 for i, v in enumerate(contract.reactive_kvar) if i != PTU)
    assert len(contract.reactive_kvar) == len(contract.reactive_prices) == 96
    # Paid kVAr x Q-LMP x 1/4 h / 1000 (positive: absorbing where the network values absorption), with the
    # active part, rounded once.
    reactive = Decimal(repr(kvar)) * Decimal("-10.0000") / 4000
    active = Decimal(repr(contract.quantities_kw[PTU])) * Decimal(contract.prices[PTU]) / 4000
    assert reactive > 0
    assert contract.value_eur == (active + reactive).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert contract.reactive_value_eur == reactive.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.mark.django_db
def test_a_down_session_at_the_lower_voltage_limit_pays_reactive_injection_its_q_lmp(
    actor_dso, actor_esp, actor_esp2, zone, assets, network
):
    # The mirror image: a 1 MW load pulls bus 2 down to 0.9505 p.u.; down offers consume more. The cheap one at
    # bus 2 would pull it below 0.95, so bus 2 injects reactive power (+ kVAr) at 10 EUR/Mvarh instead: Q-LMP
    # +10 there (the value of injecting). The range is the asset's whatever the direction: up to 200 kVAr injected,
    # 5 absorbed (the clearing mirrors it with the network; unmirrored, only 5 kVAr could be injected).
    low = grid_services.network_model_create(
        actor=actor_dso, name="Loaded feeder",
        network_json=pp.to_json(high_voltage_feeder(target=0.9505, generation_mw=-1.0)),
    )  # fmt: skip
    grid_services.zone_buses_set(actor=actor_dso, network_model=low, grid_location=zone, buses=[1, 2])
    for asset, bus in zip(assets, (2, 1), strict=True):
        grid_services.asset_bus_set(actor=actor_dso, network_model=low, asset=asset, bus_index=bus)
    product = ProductFactory(network_aware=True, direction="down")
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(300,), price=200)
    cheap = offer(
        actor_esp, assets[0], product, start, qty=(300,), price=50, **REACTIVE | {"q_min_kvar": "-5"}
    )
    offer(actor_esp2, assets[1], product, start, qty=(300,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    assert run.network.network_model == low
    assert {"kind": "voltage", "index": 2, "side": -1} in run.network.binding[str(PTU)]
    assert run.network.qlmp[2][PTU] == pytest.approx(10.0, abs=1e-3)
    contract = Contract.objects.get(clearing_run=run, offer=cheap)
    assert contract.quantities_kw[PTU] == pytest.approx(300, abs=1e-3)
    assert 5 < contract.reactive_kvar[PTU] < 200 and contract.reactive_prices[PTU] == "10.0000"
    assert contract.reactive_value_eur > 0
    assert run.network.ac_feasible is True


@pytest.mark.django_db
def test_the_network_endpoint_and_the_session_page_show_the_q_lmps(
    actor_dso, actor_esp, actor_esp2, zone, network, assets, client_for, dso_user, client
):
    run, _ = clear((actor_dso, actor_esp, actor_esp2), zone, assets, **REACTIVE)
    body = client_for(dso_user).get(f"/api/v1/sessions/{run.session_id}/network/").json()
    assert body["qlmp"][2][PTU] == pytest.approx(-10.0, abs=1e-3)
    assert body["qlmp_voltage"][2][PTU] == pytest.approx(-10.0, abs=1e-3)
    assert body["qlmp_congestion"][2][PTU] == pytest.approx(0.0, abs=1e-9)
    assert len(body["qlmp"]) == 3 and len(body["qlmp"][0]) == 96
    client.force_login(dso_user)
    response = client.get(f"/trading/sessions/{run.session_id}/?ptu={PTU}")
    page = response.content.decode()
    assert 'data-testid="price-kind-toggle"' in page and 'data-testid="network-buses-qlmp"' in page
    assert "-10.0000" in page  # bus 2's Q-LMP in the table
    price_map = response.context["price_map"]
    assert price_map["q_low"] == pytest.approx(-10.0, abs=1e-3) and price_map["q_high"] == pytest.approx(0.0)
    assert price_map["qlmp"] == run.network.qlmp


@pytest.mark.django_db
def test_without_a_reactive_range_the_voltage_is_held_by_the_dear_offer(
    actor_dso, actor_esp, actor_esp2, zone, network, assets
):
    run, cheap = clear((actor_dso, actor_esp, actor_esp2), zone, assets)
    bought = {c.offer_id: c.quantities_kw[PTU] for c in Contract.objects.filter(clearing_run=run)}
    assert bought[cheap.pk] < 299 and sum(bought.values()) == pytest.approx(300, abs=1e-3)
    assert all(c.reactive_kvar == [] for c in Contract.objects.filter(clearing_run=run))
    # The Q-LMP is still found (a dual price): what a kVAr absorbed at bus 2 would have been worth, far more than
    # the 10 EUR/Mvarh the reactive range asks in the test above.
    assert run.network.qlmp[2][PTU] < -100


@pytest.mark.django_db
def test_an_offer_whose_reactive_power_clears_without_its_kw_gets_a_contract_carrying_it(
    actor_dso, actor_esp, actor_esp2, zone, network, assets, client
):
    # A second offer at bus 2 asks too much for its kW but offers reactive power cheaply: only that clears.
    product = ProductFactory(network_aware=True)
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    dso_request = request(actor_dso, zone, product, start, qty=(300,), price=200)
    cheap = offer(actor_esp, assets[0], product, start, qty=(300,), price=50)
    reactive = offer(actor_esp, assets[0], product, start, qty=(1,), price=900, **REACTIVE)
    offer(actor_esp2, assets[1], product, start, qty=(300,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    contracts = {c.offer_id: c for c in Contract.objects.filter(clearing_run=run)}
    assert set(contracts) == {cheap.pk, reactive.pk}
    carrying = contracts[reactive.pk]
    assert carrying.request_id == dso_request.pk and sum(carrying.quantities_kw) == 0
    assert carrying.reactive_kvar[PTU] < 0 and carrying.reactive_prices[PTU] == "-10.0000"
    assert contracts[cheap.pk].reactive_kvar == [] and contracts[cheap.pk].quantities_kw[
        PTU
    ] == pytest.approx(300)
    assert carrying.value_eur == carrying.reactive_value_eur > 0
    assert carrying.average_price is None
    reactive.refresh_from_db()
    assert reactive.state == "expired" and reactive.state_reason.startswith(
        "Only its reactive range cleared ("
    )

    # The contract page and its schedule show the kVAr to deliver and the Q-LMP paid.
    client.force_login(actor_esp.user)
    page = client.get(f"/trading/contracts/{carrying.pk}/").content.decode()
    assert "kVArh of reactive power" in page and "Q-LMP EUR/Mvarh" in page and "-10.00" in page
    csv = client.get(f"/trading/contracts/{carrying.pk}/?download=csv").content.decode()
    header, row = csv.splitlines()[:2]
    assert header.endswith("reactive_kvar,reactive_price") and row.endswith(",-10.0000")
    plain_csv = client.get(f"/trading/contracts/{contracts[cheap.pk].pk}/?download=csv").content.decode()
    assert plain_csv.splitlines()[0] == "ptu_start,ptu_end,direction,power_kw,price"


@pytest.mark.django_db
def test_reactive_power_is_offered_only_in_the_offers_own_ptus(
    actor_dso, actor_esp, actor_esp2, zone, network, assets
):
    # The reactive offer covers the PTU before the one that needs it: its range is not used at PTU.
    product = ProductFactory(network_aware=True)
    session = session_for(product, tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96
    request(actor_dso, zone, product, start, qty=(300,), price=200)
    cheap = offer(actor_esp, assets[0], product, start, qty=(300,), price=50)
    early = offer(
        actor_esp, assets[0], product, start - timedelta(minutes=15), qty=(1,), price=500, **REACTIVE
    )
    offer(actor_esp2, assets[1], product, start, qty=(300,), price=150)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded", run.error
    contracts = list(Contract.objects.filter(clearing_run=run))
    assert early.pk not in {c.offer_id for c in contracts}
    assert all(c.reactive_kvar == [] for c in contracts)
    assert {c.offer_id: c.quantities_kw[PTU] for c in contracts}[cheap.pk] < 299


# --- the offer's reactive range: rules --------------------------------------------------------------------


@pytest.fixture
def network_session(db):
    return session_for(ProductFactory(network_aware=True, code="cm-net"), tomorrow())


@pytest.mark.django_db
def test_an_offer_with_a_reactive_range_is_stored_and_audited(actor_esp, asset, network_session):
    start = (
        network_session.delivery_start
        + PTU * (network_session.delivery_end - network_session.delivery_start) / 96
    )
    made = offer(actor_esp, asset, network_session.product, start, q_min_kvar="-50", q_max_kvar=Decimal("20.5"),
                 q_price="12.25")  # fmt: skip
    made.refresh_from_db()
    assert (made.q_min_kvar, made.q_max_kvar, made.q_price) == (
        Decimal("-50.000"),
        Decimal("20.500"),
        Decimal("12.2500"),
    )
    from accounts.models import AuditEvent

    event = AuditEvent.objects.get(action="flex_offer.submit")
    assert event.after["reactive"] == ["-50.000", "20.500", "12.25"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        (
            {"q_min_kvar": "-10", "q_max_kvar": "10"},
            "q_price",
            "minimum kVAr, maximum kVAr and price together",
        ),
        ({"q_price": "5"}, "q_min_kvar", "together"),
        ({"q_min_kvar": "5", "q_max_kvar": "10", "q_price": "1"}, "q_min_kvar", "Must be between"),
        ({"q_min_kvar": "-5", "q_max_kvar": "-1", "q_price": "1"}, "q_max_kvar", "Must be between"),
        ({"q_min_kvar": "0", "q_max_kvar": "0", "q_price": "1"}, "q_max_kvar", "range is empty"),
        ({"q_min_kvar": "-5", "q_max_kvar": "5", "q_price": "-1"}, "q_price", "between 0"),
        ({"q_min_kvar": "-5", "q_max_kvar": "5", "q_price": "NaN"}, "q_price", "between 0"),
        ({"q_min_kvar": "-1e9", "q_max_kvar": "5", "q_price": "1"}, "q_min_kvar", "Must be between"),
        ({"q_min_kvar": "x", "q_max_kvar": "5", "q_price": "1"}, "q_min_kvar", "not a number"),
    ],
)
def test_a_bad_reactive_range_is_refused_naming_the_field(
    actor_esp, asset, network_session, values, field, text
):
    start = (
        network_session.delivery_start
        + PTU * (network_session.delivery_end - network_session.delivery_start) / 96
    )
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, network_session.product, start, **values)
    assert error.value.code == "invalid_reactive_range" and error.value.field == field
    assert text in error.value.message
    assert not FlexOffer.objects.exists()


@pytest.mark.django_db
def test_a_reactive_range_on_a_plain_product_is_refused_naming_the_rule(actor_esp, asset, session, ptu17):
    with pytest.raises(DomainError) as error:
        offer(actor_esp, asset, session.product, ptu17, **REACTIVE)
    assert error.value.code == "invalid_reactive_range" and error.value.field == "q_min_kvar"
    assert (
        "not network-aware" in error.value.message and "only a network-aware auction" in error.value.message
    )
    assert not FlexOffer.objects.exists()


def _start(session) -> str:
    return (session.delivery_start + (session.delivery_end - session.delivery_start) * PTU / 96).isoformat()


def _api_offer(client, session, asset, **extra):
    body = {"asset": asset.pk, "product": session.product_id, "ptu_start": _start(session),
            "quantities_kw": [10], "price": "60", **extra}  # fmt: skip
    return client.post("/api/v1/flex-offers/", body, format="json")


@pytest.mark.django_db
def test_the_api_takes_and_shows_a_reactive_range(client_for, esp_user, asset, network_session):
    response = _api_offer(client_for(esp_user), network_session, asset, **REACTIVE)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["q_min_kvar"], body["q_max_kvar"], body["q_price"]) == ("-200.000", "200.000", "10.0000")
    listed = client_for(esp_user).get(f"/api/v1/flex-offers/{body['id']}/").json()
    assert listed["q_price"] == "10.0000"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"q_min_kvar": "-10", "q_max_kvar": "10"}, "q_price"),  # the service: all three or none
        ({"q_min_kvar": "10", "q_max_kvar": "10", "q_price": "1"}, "q_min_kvar"),  # the service: min <= 0
        ({"q_min_kvar": "abc", "q_max_kvar": "10", "q_price": "1"}, "q_min_kvar"),  # the serializer: a number
        ({"q_min_kvar": "-1", "q_max_kvar": "1", "q_price": "1e12"}, "q_price"),  # the serializer: digits
    ],
)
def test_a_bad_reactive_range_by_api_gets_400_with_the_field(
    client_for, esp_user, asset, network_session, extra, field
):
    response = _api_offer(client_for(esp_user), network_session, asset, **extra)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not FlexOffer.objects.exists()


@pytest.mark.django_db
def test_a_reactive_range_on_a_plain_product_by_api_gets_400_naming_the_rule(
    client_for, esp_user, asset, session
):
    response = _api_offer(client_for(esp_user), session, asset, **REACTIVE)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_reactive_range" and "q_min_kvar" in error["fields"]
    assert "network-aware" in error["message"]


def _form_post(client, session, asset, **extra):
    return client.post(
        "/trading/offers/",
        {"asset": asset.pk, "session": session.pk, "ptu_start": _start(session), "ptu_count": 1,
         "quantity_kw": "10", "price": "60", "min_quantity_kw": "0", "order_mode": "initiator", **extra},
    )  # fmt: skip


@pytest.mark.django_db
def test_the_offer_form_posts_a_reactive_range_and_shows_its_errors(client, esp_user, asset, network_session):
    client.force_login(esp_user)
    page = client.get("/trading/offers/").content.decode()
    assert 'name="q_min_kvar"' in page and 'name="q_price"' in page
    response = _form_post(client, network_session, asset, q_min_kvar="-10", q_max_kvar="10")
    assert response.status_code == 400
    assert "minimum kVAr, maximum kVAr and price together" in str(response.context["form"].errors["q_price"])
    response = _form_post(client, network_session, asset, q_min_kvar="5", q_max_kvar="10", q_price="1")
    assert (
        response.status_code == 400 and "q_min_kvar" in response.context["form"].errors
    )  # the form's own bound
    assert not FlexOffer.objects.exists()
    response = _form_post(client, network_session, asset, q_min_kvar="-10", q_max_kvar="10", q_price="3")
    assert response.status_code == 302
    assert FlexOffer.objects.get().q_price == Decimal("3.0000")


@pytest.mark.django_db
def test_the_offer_form_refuses_a_reactive_range_on_a_plain_product(client, esp_user, asset, session):
    client.force_login(esp_user)
    response = _form_post(client, session, asset, **REACTIVE)
    assert response.status_code == 400
    assert "not network-aware" in str(response.context["form"].errors["q_min_kvar"])


@pytest.mark.django_db
def test_the_offer_csv_takes_reactive_columns_and_lists_a_bad_row(
    client_for, esp_user, asset, network_session
):
    import io

    header = "asset_ean,product_code,ptu_start,quantities_kw,price,q_min_kvar,q_max_kvar,q_price\n"
    good = f"{asset.connection_ean},{network_session.product.code},{_start(network_session)},10,60,-20,20,4\n"
    plain = f"{asset.connection_ean},{network_session.product.code},{_start(network_session)},10,60,,,\n"
    half = f"{asset.connection_ean},{network_session.product.code},{_start(network_session)},10,60,-20,,\n"

    def upload(text):
        file = io.BytesIO(text.encode())
        file.name = "offers.csv"
        return client_for(esp_user).post("/api/v1/flex-offers/import/", {"file": file}, format="multipart")

    response = upload(header + good + half)
    assert response.status_code == 400
    row = response.json()["error"]["errors"][0]
    assert row["row"] == 3 and "together" in str(row)
    assert not FlexOffer.objects.exists()
    assert upload(header + good + plain).status_code == 201
    assert {(o.q_min_kvar, o.q_price) for o in FlexOffer.objects.all()} == {
        (Decimal("-20.000"), Decimal("4.0000")),
        (None, None),
    }


@pytest.mark.django_db
def test_the_admin_keeps_a_reactive_range_to_the_rules(actor_esp, asset, session, ptu17):
    from django.contrib import admin
    from django.forms import modelform_factory

    from trading.admin import FlexOfferAdminForm

    assert admin.site._registry[FlexOffer].form is FlexOfferAdminForm

    made = offer(actor_esp, asset, session.product, ptu17)
    data = {f.name: getattr(made, f.attname) for f in FlexOffer._meta.concrete_fields if f.editable}
    data |= {"member_allocation": "{}", "quantities_kw": "[60, 60]", "remaining_kw": "[60, 60]"}
    form = modelform_factory(FlexOffer, form=FlexOfferAdminForm, fields="__all__")(
        data | REACTIVE, instance=made
    )
    assert not form.is_valid()
    assert "not network-aware" in str(form.errors["q_min_kvar"])


@pytest.mark.django_db
def test_a_reactive_range_on_a_continuous_network_aware_product_is_refused(
    actor_esp, asset, continuous_product
):
    # Continuous matching checks each fill's active power against the network; nothing there clears kVAr.
    continuous_product.network_aware = True
    continuous_product.save()
    session = session_for(continuous_product, tomorrow())
    with pytest.raises(DomainError) as error:
        offer(
            actor_esp,
            asset,
            continuous_product,
            session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96,
            **REACTIVE,
        )
    assert error.value.code == "invalid_reactive_range" and "trades continuously" in error.value.message
    assert not FlexOffer.objects.exists()
