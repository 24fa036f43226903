"""The seller of a plain auction trade curtailed by the grid-safety check reads why on the session page
(issue 11 item 6); screenshots at 1440 and 390 px."""

import pytest

from accounts.context import SYSTEM
from tests.browser.conftest import screenshot
from tests.grid.factories import GridLocationFactory
from tests.trading import test_network_sessions as feeder_case
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_services import close, offer, request
from trading import services

feeder = feeder_case.feeder
offers_at_buses = feeder_case.offers_at_buses


@pytest.fixture
def zone(dso_org):
    return GridLocationFactory(dso=dso_org, name="Feeder 1")


@pytest.mark.django_db(transaction=True)
def test_the_seller_reads_why_its_trade_was_curtailed(
    page, login_as, actor_dso, actor_esp, zone, feeder, offers_at_buses
):
    product = ProductFactory(name="Congestion relief")
    session = session_for(product, tomorrow())
    start = session.delivery_start + 68 * (session.delivery_end - session.delivery_start) / 96
    wanted = request(actor_dso, zone, product, start, qty=(100,), price=200)
    cheap = offer(actor_esp, offers_at_buses[0], product, start, qty=(100,), price=50)
    close(session)
    assert services.session_clear(session=session, actor=SYSTEM).state == "succeeded"

    login_as(actor_esp.user)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/trading/sessions/{session.pk}/")
        box = page.get_by_test_id("grid-safety")
        assert "Checked on Feeder" in box.inner_text() and "1 trade curtailed" in box.inner_text()
        row = page.get_by_test_id("grid-safety-curtailed").locator("tbody tr").first
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == "17:00 CET" and cells[1] == f"offer #{cheap.pk} → request #{wanted.pk}"
        assert cells[2].startswith("39.9") and cells[2].endswith(" of 100.000")
        reason = page.get_by_test_id("grid-safety-reason").first.inner_text()
        assert reason.startswith("Why: the whole trade: line 1 at 17:00 CET would carry")
        box.scroll_into_view_if_needed()
        screenshot(page, f"trading-grid-safety-{width}")
