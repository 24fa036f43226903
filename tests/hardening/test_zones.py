"""Zones have limits (issue 15, item 6): a vertex ceiling, a simplified outline for maps, and an overlap
check through a spatial index (an import of N zones costs about N log N: bench/zones.py)."""

import math

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from shapely.geometry import box

from flexmarket.errors import DomainError, ValidationErrors
from grid import geometry as geo
from grid import services
from grid.models import GridLocation
from tests.grid.factories import square

pytestmark = pytest.mark.django_db


def circle(lon: float, lat: float, radius: float, vertices: int) -> dict:
    ring = [
        [
            lon + radius * math.cos(2 * math.pi * i / vertices),
            lat + radius * math.sin(2 * math.pi * i / vertices),
        ]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_a_polygon_with_100000_vertices_is_refused(client_for, dso_user):
    payload = {"name": "Huge", "code": "ean.huge", "geometry": circle(5.3, 52.2, 0.01, 100_000)}
    response = client_for(dso_user).post("/api/v1/grid-locations/", payload, format="json")
    assert response.status_code == 400
    assert "at most 10,000" in response.json()["error"]["fields"]["geometry"][0]
    assert not GridLocation.objects.exists()


def test_the_vertex_limit_is_a_setting(settings, actor_dso):
    settings.FLEXMARKET_ZONE_MAX_VERTICES = 50
    services.grid_location_create(actor=actor_dso, name="A", code="a", geometry=circle(5.3, 52.2, 0.01, 49))
    with pytest.raises(DomainError) as caught:
        services.grid_location_create(
            actor=actor_dso, name="B", code="b", geometry=circle(5.5, 52.2, 0.01, 50)
        )
    assert caught.value.field == "geometry"


def test_maps_get_a_simplified_outline_and_the_stored_one_stays_exact(settings, actor_dso, client, dso_user):
    settings.FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES = 200
    outline = circle(5.3, 52.2, 0.02, 5_000)
    zone = services.grid_location_create(actor=actor_dso, name="Round", code="round", geometry=outline)
    zone.refresh_from_db()
    assert zone.geometry == outline
    shown = services.grid_locations_as_geojson([zone])["features"][0]["geometry"]
    assert len(shown["coordinates"][0]) <= 200
    exact, simple = geo.validate_polygon(outline), geo.validate_polygon(shown)
    assert exact.symmetric_difference(simple).area / exact.area < 0.01
    client.force_login(dso_user)
    page = client.get("/grid/zones/")
    assert page.status_code == 200 and len(page.content) < 60_000


def test_small_zones_are_shown_as_they_are(actor_dso):
    zone = services.grid_location_create(actor=actor_dso, name="Sq", code="sq", geometry=square(5.3, 52.2))
    assert zone.display_geometry is None
    assert services.grid_locations_as_geojson([zone])["features"][0]["geometry"] == square(5.3, 52.2)


def test_an_import_refuses_features_overlapping_each_other(actor_dso):
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "A", "code": "a"}, "geometry": square(5.3, 52.2)},
            {"type": "Feature", "properties": {"name": "B", "code": "b"}, "geometry": square(5.305, 52.2)},
            {"type": "Feature", "properties": {"name": "C", "code": "a"}, "geometry": square(5.6, 52.2)},
        ],
    }
    with pytest.raises(ValidationErrors) as caught:
        services.grid_locations_import_geojson(actor=actor_dso, data=collection)
    assert [(e["row"], e["field"]) for e in caught.value.errors] == [(3, "code"), (2, "geometry")]
    assert not GridLocation.objects.exists()


def test_an_import_warns_about_other_dsos_zones_and_refuses_own(actor_dso, actor_dso2):
    services.grid_location_create(actor=actor_dso2, name="Theirs", code="t", geometry=square(5.3, 52.2))
    services.grid_location_create(actor=actor_dso, name="Mine", code="m", geometry=square(5.6, 52.2))
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "N", "code": "n"}, "geometry": square(5.305, 52.2)}
        ],
    }
    (zone,) = services.grid_locations_import_geojson(actor=actor_dso, data=collection)
    assert zone.warnings and "Theirs" in zone.warnings[0]
    collection["features"][0] |= {"properties": {"name": "O", "code": "o"}, "geometry": square(5.605, 52.2)}
    with pytest.raises(ValidationErrors) as caught:
        services.grid_locations_import_geojson(actor=actor_dso, data=collection)
    assert "Mine" in caught.value.errors[0]["message"]


def test_the_import_limit_on_features_is_a_setting(settings, actor_dso):
    settings.FLEXMARKET_IMPORT_MAX_ROWS = 2
    features = [
        {
            "type": "Feature",
            "properties": {"name": f"Z{i}", "code": f"z{i}"},
            "geometry": square(5 + i / 10, 52.2),
        }
        for i in range(3)
    ]
    with pytest.raises(DomainError) as caught:
        services.grid_locations_import_geojson(
            actor=actor_dso, data={"type": "FeatureCollection", "features": features}
        )
    assert caught.value.field == "file" and "at most 2" in caught.value.message


rectangles = st.tuples(
    st.floats(0, 1, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
    st.floats(0.001, 0.5, allow_nan=False),
    st.floats(0.001, 0.5, allow_nan=False),
).map(lambda t: box(t[0], t[1], t[0] + t[2], t[1] + t[3]))


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(rectangles, min_size=1, max_size=12), st.lists(rectangles, min_size=0, max_size=12))
def test_indexed_overlap_check_matches_the_pairwise_reference(shapes, others):
    """The STRtree check finds exactly the overlaps a plain all-pairs comparison finds."""
    candidates = [geo.ZoneShape(zone_id=i, geometry=g) for i, g in enumerate(others)]
    indexed = geo.overlapping(shapes, candidates)
    for shape, hits in zip(shapes, indexed, strict=True):
        reference = []
        for candidate in candidates:
            smaller = min(shape.area, candidate.geometry.area)
            share = shape.intersection(candidate.geometry).area / smaller
            if share > geo.OVERLAP_TOLERANCE:
                reference.append(candidate.zone_id)
        assert sorted(c.zone_id for c, _ in hits) == reference


def test_an_import_places_assets_that_were_outside_every_zone(actor_dso, esp_org):
    from tests.grid.factories import FlexAssetFactory

    waiting = FlexAssetFactory(owner=esp_org, grid_location=None, longitude=5.6, latitude=52.3)
    elsewhere = FlexAssetFactory(owner=esp_org, grid_location=None, longitude=9.0, latitude=50.0)
    features = [
        {
            "type": "Feature",
            "properties": {"name": f"Z{i}", "code": f"z{i}"},
            "geometry": square(5.3 + i * 0.3, 52.3),
        }
        for i in range(2)
    ]
    zones = services.grid_locations_import_geojson(
        actor=actor_dso, data={"type": "FeatureCollection", "features": features}
    )
    waiting.refresh_from_db()
    elsewhere.refresh_from_db()
    assert waiting.grid_location_id == zones[1].pk and elsewhere.grid_location_id is None
