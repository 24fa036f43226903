"""Maps without internet: the static base layer, the DSO's network coloured by loading with a legend, zone labels
and numbered asset clusters (issue 14 item 5)."""

import re

import pytest
from playwright.sync_api import expect

from grid.models import FlexAsset, GridLocation
from tests.browser.conftest import clustered_asset_count, screenshot

BASE_PATHS = ".leaflet-basemap-pane path"


@pytest.mark.django_db(transaction=True)
def test_dso_maps_work_offline_with_base_network_legend_and_zone_labels(page, login_as, cast):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    login_as(cast.users["dso_south"])
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/")
        expect(page.locator(f"#dso-zone-map {BASE_PATHS}").first).to_be_attached()
        assert page.locator(f"#dso-zone-map {BASE_PATHS}").count() > 100  # outlines and line corridors
        assert page.locator("#dso-zone-map img.leaflet-tile").count() == 0
        lines = page.locator("#dso-zone-map path.leaflet-interactive[fill='none']")
        assert lines.count() > 50
        # Zuid's forecast evening peak overloads feeder 1: some lines are red.
        assert (
            page.locator("#dso-zone-map path.leaflet-interactive[stroke='#c0392b'][fill='none']").count() >= 1
        )
        expect(page.get_by_test_id("network-legend")).to_contain_text("over 100 %")
        # Every zone has its name on the map; labels that would overlap others are hidden until zoomed in.
        zones = list(
            GridLocation.objects.filter(dso=cast.organisations["dso_south"]).values_list("name", flat=True)
        )
        labels = page.locator("#dso-zone-map .zone-label")
        expect(labels).to_have_count(len(zones))
        assert sorted(labels.all_text_contents()) == sorted(zones)
        expect(labels.first).to_be_visible()
        screenshot(page, f"offline-dso-dashboard-{width}")

        page.goto("/grid/assets/")
        expect(page.locator(f"#asset-map {BASE_PATHS}").first).to_be_attached()
        expect(page.locator("#asset-map [data-testid=network-legend]")).to_be_visible()
        expect(page.locator("#asset-map .asset-cluster").first).to_be_visible()
        screenshot(page, f"offline-dso-asset-list-{width}")
    assert not errors


@pytest.mark.django_db(transaction=True)
def test_esp_asset_clusters_count_every_asset_and_split_when_zoomed_in(page, login_as, cast):
    login_as(cast.users["esp_flexy"])
    page.goto("/grid/assets/")
    owned = FlexAsset.objects.filter(owner=cast.organisations["esp_flexy"]).count()
    zones = GridLocation.objects.count()
    cluster = page.locator("#asset-map .asset-cluster").first
    expect(cluster).to_be_visible()
    assert re.fullmatch(r"\d+", cluster.inner_text())
    assert clustered_asset_count(page, "#asset-map", zones) == owned
    singles_before = page.locator("#asset-map path.leaflet-interactive").count()
    cluster.click()  # zooms to the cluster's assets: some of them are drawn on their own now
    expect(page.locator("#asset-map path.leaflet-interactive")).not_to_have_count(singles_before)
    assert clustered_asset_count(page, "#asset-map", zones) == owned
    page.wait_for_timeout(500)  # the renderer redraws the lines after the zoom animation
    screenshot(page, "offline-esp-asset-list-zoomed")


@pytest.mark.django_db(transaction=True)
def test_map_falls_back_to_the_offline_base_when_tiles_fail(page, login_as, cast, settings):
    settings.MAP_TILE_URL = "/no-tiles-here/{z}/{x}/{y}.png"  # same origin (CSP allows it), every tile a 404
    login_as(cast.users["dso_south"])
    page.goto("/grid/zones/")
    expect(page.locator(f"#zone-map {BASE_PATHS}").first).to_be_attached()
    assert page.locator("#zone-map img.leaflet-tile").count() == 0
    expect(page.locator("#zone-map .zone-label").first).to_be_visible()
    screenshot(page, "offline-zone-map-fallback")


@pytest.mark.django_db(transaction=True)
def test_admin_zone_outline_draws_on_the_offline_base(page, login_as, cast, django_user_model):
    admin = django_user_model.objects.create_superuser(email="root@example.org", password="x-Long-pass-1")
    login_as(admin)
    zone = GridLocation.objects.order_by("pk").first()
    page.goto(f"/admin/grid/gridlocation/{zone.pk}/change/")
    expect(page.locator(f"#zone-outline {BASE_PATHS}").first).to_be_attached()
    expect(page.locator("#zone-outline path.leaflet-interactive")).to_have_count(1)
    screenshot(page, "offline-admin-zone-outline")
