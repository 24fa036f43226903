"""Map settings and the offline base shipped in static/ (issue 14 item 5)."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from grid import services
from grid.views import map_settings


def test_tests_run_maps_in_offline_mode():
    assert settings.MAP_TILE_URL == ""
    assert map_settings()["tileUrl"] == ""


def test_map_settings_name_the_offline_base_shipped_in_static():
    url = map_settings()["baseMapUrl"]
    assert url == f"{settings.STATIC_URL}geo/base-map.geojson"
    base = json.loads(Path(finders.find("geo/base-map.geojson")).read_text())
    kinds = {feature["properties"]["kind"] for feature in base["features"]}
    assert kinds == {"country", "region", "ehv_line", "hv_line", "substation"}


def test_shipped_base_is_what_the_base_map_command_builds():
    """static/geo/base-map.geojson is reproducible from the simbench wheel (`manage.py base_map`)."""
    from flexmarket.management.commands.base_map import base_map

    shipped = json.loads(Path(finders.find("geo/base-map.geojson")).read_text())
    assert json.loads(json.dumps(base_map())) == shipped


def test_offline_base_covers_the_demo_grid():
    """The demo MV grids (map default centre) lie inside the base's region outline."""
    from shapely.geometry import Point, shape

    base = json.loads(Path(finders.find("geo/base-map.geojson")).read_text())
    region = next(shape(f["geometry"]) for f in base["features"] if f["properties"]["kind"] == "region")
    latitude, longitude = settings.MAP_DEFAULT_CENTER
    assert region.contains(Point(longitude, latitude))
    assert region.contains(Point(11.37, 53.64))  # the northern DSO's grid (SimBench MV urban)


@pytest.mark.parametrize("url", ["/grid/assets/", "/"])
def test_dso_maps_draw_the_dsos_network_and_esp_maps_do_not(client, dso_user, esp_user, actor_dso, url):
    services.network_model_create(actor=actor_dso, name="CIGRE MV", example="cigre_mv")
    client.force_login(dso_user)
    page = client.get(url).content
    assert b'id="network-geojson"' in page or b'id="dso-network"' in page
    client.force_login(esp_user)
    page = client.get(url).content
    assert b'id="network-geojson"' not in page and b'id="dso-network"' not in page


def test_dso_power_flow_page_draws_the_network(
    client, dso_user, actor_dso, django_capture_on_commit_callbacks
):
    model = services.network_model_create(actor=actor_dso, name="CIGRE MV", example="cigre_mv")
    with django_capture_on_commit_callbacks(execute=True):
        run = services.power_flow_run_request(actor=actor_dso, network_model=model)
    client.force_login(dso_user)
    page = client.get(f"/grid/power-flows/{run.pk}/").content
    assert b'id="network-geojson"' in page and b'"kind": "line"' in page
