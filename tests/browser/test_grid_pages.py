"""Grid pages on the demo data: maps, the congestion forecast and dashboards render (and are screenshotted)."""

import pytest
from playwright.sync_api import expect

from grid.models import FlexAsset, ForecastRun, GridLocation, NetworkModel
from tests.browser.conftest import clustered_asset_count, screenshot


@pytest.mark.django_db(transaction=True)
def test_dso_sees_dashboard_network_and_power_flow_chart(page, login_as, cast):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login_as(cast.users["dso_north"])
    page.goto("/")
    expect(page.locator("#dso-zone-map path.leaflet-interactive").first).to_be_visible()
    # The DSO's network is drawn over its zones: lines (unfilled paths) coloured by the latest forecast's loading.
    lines = page.locator("#dso-zone-map path.leaflet-interactive[fill='none']")
    expect(lines.first).to_be_visible()
    assert lines.count() > 50
    screenshot(page, "grid-dso-dashboard")
    model = NetworkModel.objects.filter(dso=cast.organisations["dso_north"]).get()
    page.goto(f"/grid/networks/{model.pk}/")
    screenshot(page, "grid-network-detail")
    run = ForecastRun.objects.filter(network_model=model).latest("pk")
    page.get_by_test_id("forecasts-link").click()
    page.get_by_role("link", name=f"#{run.pk}").click()
    expect(page.get_by_test_id("heat-strip")).to_be_visible()
    zones = GridLocation.objects.filter(dso=cast.organisations["dso_north"]).count()
    expect(page.get_by_test_id("heat-row")).to_have_count(zones)
    expect(page.locator(".network-trafo")).to_have_count(2)
    screenshot(page, "grid-forecast")
    page.goto("/grid/prequalification/")
    screenshot(page, "grid-prequalification-queue")
    assert not errors


@pytest.mark.django_db(transaction=True)
def test_esp_sees_assets_on_the_map_and_portfolios(page, login_as, cast):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login_as(cast.users["esp_flexy"])
    page.goto("/")
    expect(page.locator("#esp-asset-map path.leaflet-interactive").first).to_be_visible()
    expect(page.get_by_test_id("esp-portfolio-table")).to_contain_text("pool")
    screenshot(page, "grid-esp-dashboard")
    page.goto("/grid/assets/")
    owned = FlexAsset.objects.filter(owner=cast.organisations["esp_flexy"]).count()
    zones = GridLocation.objects.count()
    expect(page.locator("#asset-map .asset-cluster").first).to_be_visible()
    assert clustered_asset_count(page, "#asset-map", zones) == owned
    screenshot(page, "grid-asset-list")
    asset = FlexAsset.objects.filter(owner=cast.organisations["esp_flexy"]).exclude(availability=[]).first()
    page.goto(f"/grid/assets/{asset.pk}/")
    expect(page.get_by_test_id("asset-availability")).to_contain_text("mon-fri 07:00-22:00")
    expect(page.locator("#asset-map .leaflet-marker-icon")).to_be_visible()
    screenshot(page, "grid-asset-detail")
    page.goto("/grid/portfolios/")
    expect(page.get_by_test_id("portfolio-table")).to_contain_text("pool")
    screenshot(page, "grid-portfolios")
    assert not errors
