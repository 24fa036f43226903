"""Reactive flexibility (issue 11 item 4) in the browser: an ESP posts an offer with a reactive range on a
network-aware product by form (a half-given range is refused on its field first), the session clears on a feeder
whose voltage binds, and the ESP's contract page shows the kVAr to deliver and the Q-LMP paid for them."""

import pandapower as pp
import pytest

from accounts.context import SYSTEM
from grid import services as grid_services
from tests.browser.conftest import screenshot
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_network_reactive import PTU, high_voltage_feeder
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import Contract, FlexOffer


@pytest.mark.django_db(transaction=True)
def test_esp_offers_reactive_power_by_form_and_sees_it_on_the_contract(
    page, login_as, actor_dso, actor_esp2, esp_user, esp_org, esp2_org, dso_org
):
    zone = GridLocationFactory(dso=dso_org, name="Sunny feeder")
    model = grid_services.network_model_create(
        actor=actor_dso, name="Sunny feeder", network_json=pp.to_json(high_voltage_feeder())
    )
    grid_services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zone, buses=[1, 2])
    solar = FlexAssetFactory(owner=esp_org, grid_location=zone, name="Solar park inverter", max_up_kw=1000)
    other = FlexAssetFactory(owner=esp2_org, grid_location=zone, name="Battery", max_up_kw=1000)
    grid_services.asset_bus_set(actor=actor_dso, network_model=model, asset=solar, bus_index=2)
    grid_services.asset_bus_set(actor=actor_dso, network_model=model, asset=other, bus_index=1)
    session = session_for(ProductFactory(name="Grid-safe relief", network_aware=True), tomorrow())
    start = session.delivery_start + PTU * (session.delivery_end - session.delivery_start) / 96

    login_as(esp_user)
    page.goto("/trading/offers/")
    page.select_option("#id_asset", str(solar.pk))
    page.select_option("#id_session", str(session.pk))
    assert page.locator("#id_ptu_start option:checked").inner_text().startswith("17:00 ")
    page.fill("#id_ptu_count", "1")
    page.fill("#id_quantity_kw", "300")
    page.fill("#id_price", "50")
    page.fill("#id_q_min_kvar", "-200")
    page.fill("#id_q_max_kvar", "200")
    page.get_by_test_id("post-offer").click()
    page.get_by_text("maximum kVAr and price together").wait_for()  # the price is missing: its field says so
    assert not FlexOffer.objects.exists()
    page.locator("#id_q_price").scroll_into_view_if_needed()
    screenshot(page, "trading-offer-form-reactive-error")
    page.fill("#id_q_price", "10")
    page.get_by_test_id("post-offer").click()
    page.get_by_text("posted").wait_for()
    made = FlexOffer.objects.get()
    assert (str(made.q_min_kvar), str(made.q_max_kvar), str(made.q_price)) == (
        "-200.000",
        "200.000",
        "10.0000",
    )

    request(actor_dso, zone, session.product, start, qty=(300,), price=200)
    offer(actor_esp2, other, session.product, start, qty=(300,), price=150)
    close(session)
    assert services.session_clear(session=session, actor=SYSTEM).state == "succeeded"
    contract = Contract.objects.get(offer=made)

    page.goto(f"/trading/contracts/{contract.pk}/")
    money = page.get_by_test_id("contract-money").inner_text()
    assert "kVArh of reactive power" in money and f"EUR {contract.reactive_value_eur}" in money
    table = page.get_by_test_id("schedule-table")
    assert "Q-LMP EUR/Mvarh" in table.inner_text() and "-10.00" in table.inner_text()
    screenshot(page, "trading-contract-reactive")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.get_by_test_id("schedule-table").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the schedule scrolls in its box
    screenshot(page, "trading-contract-reactive-390")
    page.goto("/trading/offers/")
    page.locator("#id_q_price").scroll_into_view_if_needed()
    screenshot(page, "trading-offer-form-reactive-390")
