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


@pytest.mark.django_db(transaction=True)
def test_answering_a_request_at_the_second_0215_offers_at_the_same_utc_instant(
    page, login_as, esp_user, esp_org, actor_dso, dso_org
):
    """The issue's case: answering a request that starts at the second 02:15 on an autumn DST day (25 Oct 2026) once posted the offer
    one hour early. The answer form preselects the request's own PTU, labelled 02:15 CET, and keeps its instant."""
    from tests.grid.factories import FlexAssetFactory
    from trading import services
    from trading.models import FlexOffer

    zone = GridLocationFactory(dso=dso_org, name="Kehl Nord")
    FlexAssetFactory(owner=esp_org, grid_location=zone, name="Depot battery")
    product = ProductFactory(name="Night relief")
    autumn = session_for(product, date(2027, 10, 31))  # the next autumn DST day (25 Oct 2026 has passed)
    second_0215 = datetime(2027, 10, 31, 1, 15, tzinfo=UTC)
    request = services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=product,
        ptu_start=second_0215,
        quantities_kw=[40.0, 40.0],
        price=90,
    )
    assert request.session_id == autumn.pk
    login_as(esp_user)
    page.goto(f"/trading/offers/?request={request.pk}")
    chosen = page.locator("#id_ptu_start option:checked")
    assert chosen.inner_text() == "02:15 CET"
    page.fill("#id_price", "80")
    screenshot(page, "trading-offer-answers-dst-request")
    page.get_by_test_id("post-offer").click()
    page.get_by_text("posted").wait_for()
    offer = FlexOffer.objects.get()
    assert offer.ptu_start == second_0215 and offer.answers_request_id == request.pk
    assert offer.quantities_kw == [40.0, 40.0]
