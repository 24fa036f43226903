"""A DSO opens its congestion forecast (heat strip, network map per PTU) and edits zone and asset buses."""

import io
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from accounts.context import Actor
from flexmarket import ptu
from grid import network, selectors, services
from grid.models import AssetBusMapping
from tests.browser.conftest import screenshot
from tests.grid.factories import FlexAssetFactory

DAY = date(2026, 11, 19)


def congested_forecast(user, organisation):
    actor = Actor(user=user, organisation=organisation)
    model = services.network_model_create(
        actor=actor, name="SimBench", example=network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE
    )
    zones = services.grid_locations_from_feeders(
        actor=actor, network_model=model, name_prefix="Zuid", code_prefix="ean.browser"
    )
    local = ZoneInfo("Europe/Amsterdam")
    rows = [
        f",{zones[0].code},{s.isoformat()},9500,1900"
        for s in ptu.ptu_starts(DAY, "Europe/Amsterdam")
        if 17 <= s.astimezone(local).hour < 21
    ]
    csv = "bus,zone,ptu_start,p_kw,q_kvar\n" + "\n".join(rows) + "\n"
    services.forecast_upload_csv(
        actor=actor, network_model=model, delivery_day=DAY, file=io.BytesIO(csv.encode())
    )
    run = services.forecast_run_request(actor=actor, network_model=model, delivery_day=DAY)
    run = services.forecast_run_execute(run_id=run.pk, prognoses=lambda **_: {})
    return model, zones, run


@pytest.mark.django_db(transaction=True)
def test_dso_reads_the_heat_strip_and_moves_through_ptus(page, login_as, dso_user, dso_org):
    model, zones, run = congested_forecast(dso_user, dso_org)
    login_as(dso_user)
    page.goto(f"/grid/networks/{model.pk}/forecasts/")
    page.get_by_role("link", name=f"#{run.pk}").click()
    strip = page.get_by_test_id("heat-strip")
    expect(strip).to_be_visible()
    assert page.get_by_test_id("heat-row").count() == 9
    assert page.locator(".heat-strip td.state-2").count() == 16  # feeder 1, 17:00-21:00
    assert page.get_by_test_id("congested-ptus").inner_text().startswith("16")
    # The page opens at the worst PTU; its overloaded lines are drawn red.
    expect(page.get_by_test_id("ptu-label")).to_have_text("17:00 CET")
    assert page.locator("path.leaflet-interactive[stroke='#c0392b'][fill='none']").count() >= 1
    screenshot(page, "forecast-heat-strip-evening")
    page.locator(".heat-strip td.cell[data-ptu='8']").first.click()
    expect(page.get_by_test_id("ptu-label")).to_have_text("02:00 CET")
    assert page.locator("path.leaflet-interactive[stroke='#c0392b'][fill='none']").count() == 0
    screenshot(page, "forecast-heat-strip-night")


@pytest.mark.django_db(transaction=True)
def test_dso_edits_zone_and_asset_buses(page, login_as, dso_user, dso_org, esp_org):
    model, zones, _ = congested_forecast(dso_user, dso_org)
    asset = FlexAssetFactory(owner=esp_org, grid_location=zones[0], name="EV hub Zuid 1")
    login_as(dso_user)
    page.goto(f"/grid/networks/{model.pk}/")
    page.get_by_test_id("mapping-link").click()
    expect(page.get_by_test_id("mapping-map")).to_be_visible()
    screenshot(page, "network-mapping")
    field = page.get_by_test_id(f"asset-bus-{asset.pk}")
    field.fill("7")
    field.press("Enter")
    expect(page.get_by_text("EV hub Zuid 1: bus set.")).to_be_visible()
    assert AssetBusMapping.objects.get(asset=asset).bus_index == 7
    zone_field = page.get_by_test_id(f"zone-buses-{zones[1].code}")
    zone_field.fill("5, 4242")
    zone_field.press("Enter")
    expect(page.get_by_test_id("mapping-error")).to_contain_text("no bus 4242")
    assert 4242 not in selectors.bus_zone_mapping(network_model=model)
    screenshot(page, "network-mapping-error")


@pytest.mark.django_db(transaction=True)
def test_dso_zone_map_draws_its_network(page, login_as, dso_user, dso_org):
    congested_forecast(dso_user, dso_org)
    login_as(dso_user)
    page.goto("/grid/zones/")
    expect(page.get_by_test_id("zone-map")).to_be_visible()
    assert page.locator(".network-trafo").count() == 2
    assert page.locator("path.leaflet-interactive[stroke='#c0392b'][fill='none']").count() >= 1
    screenshot(page, "zone-map-network")
