"""The D-LMP map of a network-aware session (issue 11 item 8): the demo's DSO opens the cleared session on its
SimBench grid, sees buses coloured by D-LMP, and moves the PTU slider; the local-time label and the colours follow."""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.browser.conftest import screenshot
from trading.models import MarketSession


def bus_colours(page) -> list[str]:
    return page.locator("#price-map path.dlmp-bus").evaluate_all(
        "paths => paths.map(p => p.getAttribute('fill'))"
    )


def bus_prices(page) -> list[str]:
    return page.locator("#price-map path.dlmp-bus").evaluate_all(
        "paths => paths.map(p => p.getAttribute('data-price'))"
    )


@pytest.mark.django_db(transaction=True)
def test_dso_sees_dlmps_on_the_map_and_moves_the_ptu_slider(page, login_as):
    call_command("demo", "--no-serve", stdout=StringIO())
    session = MarketSession.objects.get(product__code="cm-network", state=MarketSession.State.CLEARED)

    login_as(User.objects.get(email="planner@zuidnet.demo"))
    page.goto(f"/trading/sessions/{session.pk}/")
    page.get_by_test_id("price-map").locator("path.dlmp-bus").first.wait_for()
    label = page.get_by_test_id("price-ptu-label")
    first_label = label.inner_text()
    assert first_label.startswith("20:00")  # the first PTU with accepted orders and a binding line
    assert "binding: line 0" in page.get_by_test_id("price-ptu-binding").inner_text()
    colours = bus_colours(page)
    # Feeder 1's buses at the dear price (red end of the scale), the rest at the cheap one (blue end).
    rgb = [tuple(int(c) for c in colour[4:-1].split(",")) for colour in colours if colour.startswith("rgb(")]
    assert any(r > 200 and b < 60 for r, _, b in rgb) and any(b > 150 and r < 80 for r, _, b in rgb)
    page.get_by_test_id("price-map").scroll_into_view_if_needed()
    screenshot(page, "trading-price-map-binding")

    slider = page.get_by_test_id("price-ptu-slider")
    slider.fill(str(int(slider.input_value()) + 4))  # 21:00: nothing binds, one price everywhere
    assert label.inner_text().startswith("21:00") and label.inner_text() != first_label
    assert page.get_by_test_id("price-ptu-binding").inner_text() == "no binding line"
    later = bus_colours(page)
    assert later != colours and len(set(later) - {"#9e9e9e"}) == 1
    screenshot(page, "trading-price-map-uncongested")

    # The D-LMP / Q-LMP toggle: back at the binding PTU, the map, its legend and the per-bus table show Q-LMPs.
    slider.fill(str(int(slider.input_value()) - 4))
    assert bus_colours(page) == colours
    dlmp_prices = bus_prices(page)
    assert page.get_by_test_id("network-buses").is_visible()
    assert not page.get_by_test_id("network-buses-qlmp").is_visible()
    page.get_by_test_id("price-kind-qlmp").click()
    legend = page.get_by_test_id("price-legend").inner_text()
    assert "Q-LMP" in legend and "EUR/Mvarh" in legend
    assert page.get_by_test_id("price-kind-qlmp").get_attribute("aria-pressed") == "true"
    assert page.get_by_test_id("network-buses-qlmp").is_visible()
    assert not page.get_by_test_id("network-buses").is_visible()
    data = page.evaluate("JSON.parse(document.getElementById('price-map-data').textContent)")
    qlmp_prices = bus_prices(page)
    assert qlmp_prices != dlmp_prices
    rows = {bus: n for n, bus in enumerate(data["buses"])}
    for bus, price in page.locator("#price-map path.dlmp-bus").evaluate_all(
        "paths => paths.map(p => [p.getAttribute('data-bus'), p.getAttribute('data-price')])"
    ):
        assert price == "" or float(price) == pytest.approx(
            data["qlmp"][rows[int(bus)]][int(slider.input_value())]
        )
    page.get_by_test_id("price-map").scroll_into_view_if_needed()
    screenshot(page, "trading-price-map-qlmp")
    page.get_by_test_id("price-kind-dlmp").click()
    assert bus_prices(page) == dlmp_prices and "EUR/MWh" in page.get_by_test_id("price-legend").inner_text()
    assert page.get_by_test_id("network-buses").is_visible()

    # On a phone: the toggle and the map fit the width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.get_by_test_id("price-map").locator("path.dlmp-bus").first.wait_for()
    page.get_by_test_id("price-kind-qlmp").click()
    assert "EUR/Mvarh" in page.get_by_test_id("price-legend").inner_text()
    for control in ("price-kind-toggle", "price-ptu-slider"):
        box = page.get_by_test_id(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    page.get_by_test_id("price-map").scroll_into_view_if_needed()
    screenshot(page, "trading-price-map-qlmp-390")
    page.set_viewport_size({"width": 1400, "height": 900})
    # Beside the clearing, the needs per zone of the forecast it was linearised at (the demo's evening peak).
    needs = page.get_by_test_id("network-needs")
    needs.scroll_into_view_if_needed()
    assert needs.locator("tbody tr").count() >= 1
    page.screenshot(path=str(screenshot(page, "trading-session-needs")), full_page=False)

    page.context.clear_cookies()
    login_as(User.objects.get(email="trader@flexy.demo"))  # an ESP of the session: no grid data
    page.goto(f"/trading/sessions/{session.pk}/")
    page.get_by_test_id("session-state").wait_for()
    assert page.get_by_test_id("price-map").count() == 0
