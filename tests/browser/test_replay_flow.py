"""A DSO replays a cleared session without one of its zones and reads the comparison (issue 11 item 7)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.context import SYSTEM, Actor
from tests.browser.conftest import screenshot
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_services import close, offer, request
from trading import services
from trading.models import ClearingReplay, Contract


@pytest.mark.django_db(transaction=True)
def test_dso_replays_a_session_without_a_zone(page, login_as, dso_user, dso_org, esp_user, esp_org):
    north = GridLocationFactory(dso=dso_org, name="Offenburg Nord")
    south = GridLocationFactory(dso=dso_org, name="Offenburg Süd")
    dso, esp = Actor(user=dso_user, organisation=dso_org), Actor(user=esp_user, organisation=esp_org)
    session = session_for(ProductFactory(name="Congestion relief"), tomorrow())
    start = session.delivery_start + timedelta(hours=17)
    for zone, price in ((north, 50), (south, 40)):
        asset = FlexAssetFactory(owner=esp_org, grid_location=zone, max_up_kw=Decimal("500"))
        request(dso, zone, session.product, start, qty=(100, 100, 100, 100), price=120)
        offer(esp, asset, session.product, start, qty=(80, 80, 80, 80), price=price)
        offer(esp, asset, session.product, start, qty=(80, 80, 80, 80), price=price + 30)
    close(session)
    assert services.session_clear(session=session, actor=SYSTEM).state == "succeeded"
    contracts = Contract.objects.count()

    login_as(dso_user)
    page.goto(f"/trading/sessions/{session.pk}/")
    panel = page.get_by_test_id("replay-panel")
    panel.get_by_label("Offenburg Süd").check()
    page.select_option("#replay-pricing", "pay_as_bid")
    page.get_by_test_id("replay-submit").click()
    page.get_by_test_id("replay-reproduced").wait_for()
    assert "reproduces clearing run" in page.get_by_test_id("replay-reproduced").inner_text()
    zones = page.get_by_test_id("replay-zones").inner_text()
    assert "Offenburg Süd" in zones and "removed" in zones
    assert page.get_by_test_id("replay-volume").inner_text() == "100 kWh"  # north only: 100 kW for 4 PTUs
    page.get_by_test_id("replay-chart").locator(".main-svg").first.wait_for()
    screenshot(page, "trading-replay")
    assert Contract.objects.count() == contracts and ClearingReplay.objects.get().state == "succeeded"
