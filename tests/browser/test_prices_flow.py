"""Prices in sight: an ESP opens Trading > Prices and depth, reads the best bid and offer, the indicative price, the
history and depth charts, and picks another PTU; an observer reads the same page on a phone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import screenshot
from tests.factories import OrganisationFactory, member_of
from tests.grid.factories import GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_prices import _contract, _order
from trading.models import FlexOffer, FlexRequest, MarketSession


@pytest.mark.django_db(transaction=True)
def test_prices_page_figures_charts_and_ptu_choice(page, login_as, esp_user, dso_org, esp_org, esp2_org):
    zone = GridLocationFactory(dso=dso_org, name="Offenburg Nord")
    session = session_for(ProductFactory(name="Congestion relief"), tomorrow())
    ptu17 = session.delivery_start + timedelta(hours=17)
    book = {"zone": zone, "session": session, "start": ptu17}
    _order(FlexRequest, owner=dso_org, remaining=[80, 30], price=120, **book)
    _order(FlexRequest, owner=dso_org, remaining=[40], price=95, **book)
    _order(FlexOffer, owner=esp_org, remaining=[60, 60], price=50, **book)
    _order(FlexOffer, owner=esp2_org, remaining=[40, 10], price=70, **book)
    _order(FlexOffer, owner=esp2_org, remaining=[50], price=130, **book)
    for days_back in range(1, 6):  # a week of history in the zone
        past = session_for(
            session.product,
            session.delivery_day - timedelta(days=days_back),
            gate_closure=timezone.now() - timedelta(days=days_back),
            state=MarketSession.State.CLEARED,
        )
        for hour in (8, 17, 18):
            start = past.delivery_start + timedelta(hours=hour)
            request = _order(
                FlexRequest, owner=dso_org, zone=zone, session=past, start=start, remaining=[0], price=500
            )
            offer = _order(
                FlexOffer, owner=esp_org, zone=zone, session=past, start=start, remaining=[0], price=1
            )
            price = 40 + 5 * days_back + (15 if hour == 17 else 0)
            _contract(
                request=request, offer=offer, start=start, kw=50, price=price, created_at=timezone.now()
            )

    login_as(esp_user)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/")
    page.get_by_test_id("nav-trading").hover()
    page.get_by_test_id("nav-prices").click()
    assert "120.00" in page.get_by_test_id("best-bid").inner_text()
    assert "80 kW" in page.get_by_test_id("best-bid").inner_text()
    assert "50.00" in page.get_by_test_id("best-offer").inner_text()
    assert "95.00" in page.get_by_test_id("indicative-price").inner_text()  # the part-filled request at 95
    assert "17:00" in page.get_by_test_id("prices-heading").inner_text()
    page.locator("[data-testid=depth-chart] .main-svg").first.wait_for()
    page.locator("[data-testid=price-history-chart] .main-svg").first.wait_for()
    text = page.content()
    for organisation in (dso_org, esp2_org):
        assert organisation.legal_name not in text
    screenshot(page, "prices-1440")

    page.select_option("#id_ptu", label=page.locator("#id_ptu option", has_text="17:15").first.inner_text())
    page.get_by_test_id("prices-show").click()
    page.get_by_test_id("prices-heading").filter(has_text="17:15").wait_for()
    assert "30 kW" in page.get_by_test_id("best-bid").inner_text()
    assert "130.00" not in page.get_by_test_id("offer-levels").inner_text()  # that offer is for 17:00 only

    page.fill("#id_day", "1800-01-01")
    page.get_by_test_id("prices-show").click()
    assert "2000-01-01" in page.get_by_test_id("prices-error-day").inner_text()


@pytest.mark.django_db(transaction=True)
def test_observer_reads_prices_on_a_phone(page, login_as, dso_org, esp_org):
    zone = GridLocationFactory(dso=dso_org, name="Offenburg Nord")
    session = session_for(ProductFactory(name="Congestion relief"), tomorrow())
    ptu17 = session.delivery_start + timedelta(hours=17)
    book = {"zone": zone, "session": session, "start": ptu17}
    _order(FlexRequest, owner=dso_org, remaining=[80], price=120, **book)
    _order(FlexOffer, owner=esp_org, remaining=[60], price=50, **book)
    observer = member_of(OrganisationFactory(roles=["OBSERVER"], legal_name="Curious Researcher"))

    login_as(observer)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/trading/prices/")
    assert "120.00" in page.get_by_test_id("best-bid").inner_text()
    page.locator("[data-testid=depth-chart] .main-svg").first.wait_for()
    screenshot(page, "prices-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
