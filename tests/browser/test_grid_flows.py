"""A DSO draws a zone on the map; an ESP registers an asset by clicking the map; the DSO approves it.
A DSO loads a network model (a background run) and lands on it, or sees why it could not be loaded."""

import re

import pytest
from playwright.sync_api import expect

from grid.models import FlexAsset, GridLocation
from tests.browser.conftest import screenshot, screenshots_at_widths


def draw_square(page, map_selector: str) -> None:
    box = page.locator(map_selector).bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.locator(".leaflet-draw-draw-polygon").click()
    corners = [(cx - 120, cy - 90), (cx + 120, cy - 90), (cx + 120, cy + 90), (cx - 120, cy + 90)]
    for x, y in corners:
        page.mouse.click(x, y)
        page.wait_for_timeout(150)
    page.mouse.click(*corners[0])  # clicking the first corner closes the ring


@pytest.mark.django_db(transaction=True)
def test_dso_draws_a_zone_and_sees_it_after_reload(page, login_as, dso_user):
    login_as(dso_user)
    page.goto("/grid/zones/")
    draw_square(page, "#zone-map")
    page.get_by_test_id("zone-form").wait_for()
    page.fill("#zone-name", "Kinzig Süd")
    page.fill("#zone-code", "ean.871685900000000042")
    page.select_option("#zone-status", "watch")
    screenshot(page, "grid-zone-drawn")
    page.get_by_test_id("zone-save").click()
    page.get_by_test_id("zone-saved").wait_for()
    page.reload()
    assert "Kinzig Süd" in page.get_by_test_id("zone-row").first.inner_text()
    zone = GridLocation.objects.get(code="ean.871685900000000042")
    assert zone.dso == dso_user.memberships.get().organisation
    assert zone.status == "watch" and len(zone.geometry["coordinates"][0]) == 5
    assert page.locator("path.leaflet-interactive").count() >= 1
    screenshot(page, "grid-zone-map")


@pytest.mark.django_db(transaction=True)
def test_bad_zone_code_shows_the_error(page, login_as, dso_user):
    login_as(dso_user)
    page.goto("/grid/zones/")
    draw_square(page, "#zone-map")
    page.fill("#zone-name", "No code")
    page.evaluate("document.getElementById('zone-code').removeAttribute('required')")
    page.get_by_test_id("zone-save").click()
    expect(page.get_by_test_id("zone-errors")).to_contain_text("code")
    assert not GridLocation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_esp_registers_asset_by_clicking_the_map_and_dso_approves(
    page, browser, live_server, login_as, esp_user, dso_user, dso_org
):
    from accounts.context import Actor
    from grid.services import grid_location_create
    from tests.grid.factories import square

    grid_location_create(
        actor=Actor(user=dso_user, organisation=dso_org),
        name="Offenburg Nord",
        code="ean.1",
        geometry=square(7.84, 48.40, half=0.03),
    )
    login_as(esp_user)
    page.goto("/grid/assets/new/")
    box = page.get_by_test_id("register-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert "Offenburg Nord" in page.get_by_test_id("zone-hint").inner_text()
    page.fill("#id_name", "Community battery Nord")
    page.select_option("#id_asset_type", "battery")
    page.fill("#id_connection_ean", "871685900000000776")
    page.fill("#id_max_up_kw", "250")
    page.fill("#id_max_down_kw", "250")
    page.fill("#id_energy_capacity_kwh", "500")
    screenshot(page, "grid-asset-register")
    page.get_by_test_id("asset-save").click()
    assert page.get_by_test_id("asset-state").inner_text() == "Pending"
    asset = FlexAsset.objects.get(name="Community battery Nord")
    assert asset.grid_location.name == "Offenburg Nord"

    dso_context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(dso_user, backend="django.contrib.auth.backends.ModelBackend")
    dso_context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    dso_page = dso_context.new_page()
    dso_page.goto("/grid/prequalification/")
    expect(dso_page.get_by_test_id(f"checklist-{asset.pk}")).to_have_text("0 / 5 required")
    screenshots_at_widths(dso_page, "grid-prequalification")
    dso_page.get_by_test_id(f"approve-{asset.pk}").click()
    expect(dso_page.locator(".notification, .message").first).to_contain_text(
        "Tick every mandatory checklist item before approving"
    )
    dso_page.get_by_test_id(f"checklist-{asset.pk}").get_by_role("link").click()
    for item in ["connection", "metering", "capacity", "location", "dispatch_test"]:
        dso_page.get_by_test_id(f"check-{item}").get_by_role("checkbox").check()
    dso_page.fill("[name=note_dispatch_test]", "Setpoint test 2026-12-01 passed")
    dso_page.get_by_test_id("save-checklist").click()
    dso_page.get_by_text("Community battery Nord: checklist saved.").wait_for()
    expect(dso_page.get_by_test_id("check-metering")).to_contain_text("Ticked by")
    screenshots_at_widths(dso_page, "grid-asset-checklist-dso")
    dso_page.get_by_test_id("approve").click()
    dso_page.get_by_text("Community battery Nord: approved.").wait_for()
    dso_context.close()
    asset.refresh_from_db()
    assert asset.can_trade
    page.reload()
    expect(page.get_by_test_id("check-dispatch_test")).to_contain_text("Setpoint test 2026-12-01 passed")
    expect(page.get_by_test_id("check-brp_informed")).to_contain_text("open")
    screenshots_at_widths(page, "grid-asset-checklist-esp")
    page.goto(f"/grid/assets/{asset.pk}/")
    assert page.get_by_test_id("asset-state").inner_text() == "Approved"


@pytest.mark.django_db(transaction=True)
def test_dso_loads_a_network_and_lands_on_it_once_the_worker_is_done(page, login_as, dso_user):
    login_as(dso_user)
    page.goto("/grid/networks/")
    page.fill("#id_name", "CIGRE feeder")
    page.select_option("#id_example", "cigre_mv")
    page.get_by_role("button", name="Load").click()
    page.wait_for_url(re.compile(r"/grid/networks/\d+/$"))
    expect(page.locator("body")).to_contain_text("CIGRE feeder v1 loaded: 15 buses")
    screenshot(page, "grid-network-loaded")


@pytest.mark.django_db(transaction=True)
def test_a_network_that_cannot_be_loaded_shows_why(page, login_as, dso_user, tmp_path):
    upload = tmp_path / "empty.json"
    upload.write_text('{"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {}}')
    login_as(dso_user)
    page.goto("/grid/networks/")
    page.fill("#id_name", "Empty")
    page.set_input_files("#id_file", str(upload))
    page.get_by_role("button", name="Load").click()
    page.wait_for_url("**/grid/networks/loads/*/")
    expect(page.get_by_test_id("network-load-state")).to_have_text("Failed")
    expect(page.get_by_test_id("network-load-error")).to_have_text("The network has no buses.")
    screenshot(page, "grid-network-load-failed")
