"""A DSO posts a FlexRequest by form, an ESP answers it from its opportunities, the session clears, both see the contract."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.context import SYSTEM
from tests.browser.conftest import screenshot
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading import services
from trading.models import Contract, MarketSession


@pytest.mark.django_db(transaction=True)
def test_request_offer_clear_contract(
    page, browser, live_server, login_as, dso_user, dso_org, esp_user, esp_org
):
    zone = GridLocationFactory(dso=dso_org, name="Offenburg Nord")
    FlexAssetFactory(owner=esp_org, grid_location=zone, name="Battery Nord")
    session = session_for(ProductFactory(name="Congestion relief"), tomorrow())

    login_as(dso_user)
    page.goto("/trading/requests/")
    page.select_option("#id_grid_location", str(zone.pk))
    page.select_option("#id_session", str(session.pk))
    # The first-PTU picker lists the chosen session's PTUs by local clock time and starts at 17:00.
    assert page.locator("#id_ptu_start option:checked").inner_text().startswith("17:00 ")
    page.fill("#id_ptu_count", "4")
    page.fill("#id_quantity_kw", "200")
    page.fill("#id_price", "150")
    page.get_by_test_id("post-request").click()
    page.get_by_text("posted").wait_for()
    screenshot(page, "trading-my-requests")

    esp_context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(esp_user, backend="django.contrib.auth.backends.ModelBackend")
    esp_context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    esp = esp_context.new_page()
    esp.goto("/trading/opportunities/")
    screenshot(esp, "trading-opportunities")
    esp.locator("[data-testid^=answer-]").first.click()
    assert esp.input_value("#id_quantity_kw") == "200.0" or esp.input_value("#id_quantity_kw") == "200"
    assert esp.locator("#id_ptu_start option:checked").inner_text().startswith("17:00 ")
    esp.fill("#id_quantity_kw", "150")
    esp.fill("#id_price", "90")
    screenshot(esp, "trading-offer-form")
    esp.get_by_test_id("post-offer").click()
    try:
        esp.get_by_text("posted").wait_for(timeout=10000)
    finally:
        screenshot(esp, "trading-offer-posted")

    MarketSession.objects.filter(pk=session.pk).update(
        state=MarketSession.State.CLOSED, gate_closure=timezone.now() - timedelta(minutes=1)
    )
    session.refresh_from_db()
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded"
    contract = Contract.objects.get()
    assert contract.quantities_kw[68:72] == [150, 150, 150, 150]

    esp.goto("/trading/contracts/")
    esp.get_by_text(contract.reference).click()
    assert esp.get_by_test_id("contract-reference").inner_text() == contract.reference
    assert esp.locator("[data-testid=schedule-table] tbody tr").count() == 4
    assert esp.locator("[data-testid=schedule-table] tbody tr td").first.inner_text().endswith(
        " 17:00 CET"
    ) or (esp.locator("[data-testid=schedule-table] tbody tr td").first.inner_text().endswith(" 17:00 CEST"))
    screenshot(esp, "trading-contract")
    esp.goto("/trading/contracts/")
    esp.get_by_test_id("contract-filter").wait_for()
    screenshot(esp, "trading-contract-list")
    esp_context.close()

    page.goto("/trading/contracts/")
    assert contract.reference in page.get_by_test_id("contract-table").inner_text()
    page.goto(f"/trading/sessions/{session.pk}/")
    assert page.get_by_test_id("session-state").inner_text() == "Cleared"
    screenshot(page, "trading-session")
