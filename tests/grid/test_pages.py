import io
import json

import pytest

from grid.models import FlexAsset, GridLocation
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, square


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/grid/zones/", "/grid/assets/", "/grid/prequalification/", "/grid/networks/"]
)
def test_anonymous_is_sent_to_login(client, url):
    assert client.get(url)["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/grid/prequalification/", "/grid/networks/", "/grid/zones/import/"])
def test_esp_cannot_open_dso_pages(client, esp_user, url):
    client.force_login(esp_user)
    assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_pages_render_for_their_roles(client, dso_user, esp_user, dso_org, esp_org):
    zone = GridLocationFactory(dso=dso_org)
    asset = FlexAssetFactory(owner=esp_org, grid_location=zone, prequalification="pending")
    client.force_login(dso_user)
    for url in [
        "/",
        "/grid/zones/",
        "/grid/prequalification/",
        "/grid/networks/",
        f"/grid/assets/{asset.pk}/",
        "/grid/assets/",
    ]:
        assert client.get(url).status_code == 200, url
    client.force_login(esp_user)
    for url in ["/", "/grid/assets/", "/grid/assets/new/", "/grid/portfolios/", f"/grid/assets/{asset.pk}/"]:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_other_esp_cannot_open_an_asset(client, esp2_user, esp_org):
    asset = FlexAssetFactory(owner=esp_org)
    client.force_login(esp2_user)
    assert client.get(f"/grid/assets/{asset.pk}/").status_code == 404


@pytest.mark.django_db
def test_zone_import_page_lists_feature_errors(client, dso_user):
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "A", "code": "ean.a"}, "geometry": square(5.0, 52.0)},
            {"type": "Feature", "properties": {"name": "B"}, "geometry": square(6.0, 52.0)},
        ],
    }
    upload = io.BytesIO(json.dumps(collection).encode())
    upload.name = "zones.geojson"
    client.force_login(dso_user)
    response = client.post("/grid/zones/import/", {"file": upload})
    assert response.status_code == 400
    assert response.context["row_errors"][0]["row"] == 2
    assert not GridLocation.objects.exists()


@pytest.mark.django_db
def test_asset_form_errors_are_shown(client, esp_user):
    client.force_login(esp_user)
    response = client.post(
        "/grid/assets/new/",
        {
            "name": "X",
            "asset_type": "battery",
            "connection_ean": "12",
            "latitude": 48.4,
            "longitude": 7.8,
            "max_up_kw": 5,
            "max_down_kw": 5,
            "energy_capacity_kwh": 10,
        },
    )
    assert response.status_code == 400
    assert "18 digits" in response.content.decode()
    assert not FlexAsset.objects.exists()


@pytest.mark.django_db
def test_other_dso_cannot_decide_on_an_asset(client, dso2_user, dso_org, esp_org):
    asset = FlexAssetFactory(
        owner=esp_org, grid_location=GridLocationFactory(dso=dso_org), prequalification="pending"
    )
    client.force_login(dso2_user)
    assert client.post(f"/grid/prequalification/{asset.pk}/", {"decision": "approve"}).status_code == 404
    asset.refresh_from_db()
    assert asset.prequalification == "pending"


@pytest.mark.django_db
def test_asset_list_filters_and_exports_and_the_map_follows_the_filter(client, esp_user, esp_org, dso_org):
    import csv

    from tests.grid.factories import FlexAssetFactory, GridLocationFactory

    zone = GridLocationFactory(dso=dso_org, name="North")
    FlexAssetFactory(owner=esp_org, grid_location=zone, name="Battery Alpha", asset_type="battery")
    FlexAssetFactory(owner=esp_org, grid_location=zone, name="Heat pump Beta", asset_type="heat_pump")
    client.force_login(esp_user)
    response = client.get("/grid/assets/", {"q": "alpha"})
    page = response.content.decode()
    assert "1 asset ·" in page and "Battery Alpha" in page and "Heat pump Beta" not in page
    assert [f["properties"]["name"] for f in response.context["assets_geojson"]["features"]] == [
        "Battery Alpha"
    ]
    assert "1 asset ·" in client.get("/grid/assets/", {"asset_type": "heat_pump"}).content.decode()
    rows = list(csv.reader(client.get("/grid/assets/", {"_export": "csv"}).content.decode().splitlines()))
    assert rows[0][:2] == ["Asset", "EAN"] and sorted(r[0] for r in rows[1:]) == [
        "Battery Alpha",
        "Heat pump Beta",
    ]
    assert {r[2] for r in rows[1:]} == {"battery", "heat_pump"}


@pytest.mark.django_db
def test_the_prequalification_queue_filters_sorts_exports_and_keeps_pending_first(
    client, dso_user, dso_org, dso2_org, esp_org, django_assert_max_num_queries
):
    import csv

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    zone = GridLocationFactory(dso=dso_org, name="North")
    approved = FlexAssetFactory(owner=esp_org, grid_location=zone, name="Battery Alpha")
    pending = FlexAssetFactory(
        owner=esp_org, grid_location=zone, name="Heat pump Beta", prequalification="pending"
    )
    FlexAssetFactory(owner=esp_org, grid_location=GridLocationFactory(dso=dso2_org), name="Elsewhere")
    client.force_login(dso_user)
    page = client.get("/grid/prequalification/").content.decode()
    assert "2 assets ·" in page and "Elsewhere" not in page  # only the DSO's own zones
    assert page.index("Heat pump Beta") < page.index("Battery Alpha")  # pending first without a sort
    assert f'data-testid="approve-{pending.pk}"' in page and f'data-testid="reject-{pending.pk}"' in page
    assert (
        f'data-testid="suspend-{approved.pk}"' in page and f'data-testid="approve-{approved.pk}"' not in page
    )
    assert "0 / 5 required" in page
    filtered = client.get("/grid/prequalification/", {"prequalification": "pending"}).content.decode()
    assert "1 asset ·" in filtered and "Battery Alpha" not in filtered
    by_name = client.get("/grid/prequalification/", {"sort": "name"}).content.decode()
    assert by_name.index("Battery Alpha") < by_name.index("Heat pump Beta")
    rows = list(
        csv.reader(client.get("/grid/prequalification/", {"_export": "csv"}).content.decode().splitlines())
    )
    assert rows[0][-1] == "Prequalification" and "Decision" not in rows[0]
    assert sorted((r[0], r[-1]) for r in rows[1:]) == [
        ("Battery Alpha", "approved"),
        ("Heat pump Beta", "pending"),
    ]
    # The queue makes the same number of queries with 2 and with 32 assets.
    with CaptureQueriesContext(connection) as few:
        client.get("/grid/prequalification/")
    FlexAssetFactory.create_batch(30, owner=esp_org, grid_location=zone, prequalification="pending")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/grid/prequalification/")
