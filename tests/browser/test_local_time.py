"""The order form's PTU picker on the autumn DST day: both 02:15 are offered, and the second posts at 01:15 UTC."""

from datetime import UTC, date, datetime

import pytest

from tests.browser.conftest import screenshot
from tests.grid.factories import GridLocationFactory
from tests.trading.factories import ProductFactory, session_for
from trading.models import FlexRequest


@pytest.mark.django_db(transaction=True)
def test_request_form_picks_the_second_0215_of_the_autumn_day(page, login_as, dso_user, dso_org):
    zone = GridLocationFactory(dso=dso_org, name="Kehl Süd")
    product = ProductFactory(name="Night relief")
    session_for(product, date(2027, 10, 30))
    autumn = session_for(product, date(2027, 10, 31))
    login_as(dso_user)
    page.goto("/trading/requests/")
    page.select_option("#id_grid_location", str(zone.pk))
    page.select_option("#id_session", str(autumn.pk))
    shown = page.locator("#id_ptu_start optgroup:not([hidden]) option").all_inner_texts()
    assert len(shown) == 100 and shown.count("02:15 CEST") == 1 and shown.count("02:15 CET") == 1
    page.select_option("#id_ptu_start", label="02:15 CET")
    page.fill("#id_ptu_count", "2")
    page.fill("#id_quantity_kw", "50")
    page.fill("#id_price", "70")
    screenshot(page, "trading-request-dst-picker")
    page.get_by_test_id("post-request").click()
    page.get_by_text("posted").wait_for()
    assert FlexRequest.objects.get().ptu_start == datetime(2027, 10, 31, 1, 15, tzinfo=UTC)
