import io

import pytest

from grid.models import FlexAsset, GridLocation
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, square


def zone_payload(**overrides):
    data = {
        "name": "Centrum",
        "code": "ean.871000000000000001",
        "voltage_level": "MV",
        "status": "normal",
        "geometry": square(5.12, 52.09),
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_dso_creates_zone_and_everyone_approved_sees_it(client_for, dso_user, esp_user):
    created = client_for(dso_user).post("/api/v1/grid-locations/", zone_payload(), format="json")
    assert created.status_code == 201, created.json()
    body = client_for(esp_user).get("/api/v1/grid-locations/").json()
    assert body["results"][0]["code"] == "ean.871000000000000001"
    geojson = client_for(esp_user).get("/api/v1/grid-locations/geojson/").json()
    assert (
        geojson["type"] == "FeatureCollection" and geojson["features"][0]["properties"]["status"] == "normal"
    )


@pytest.mark.django_db
def test_esp_cannot_create_zones(client_for, esp_user):
    assert (
        client_for(esp_user).post("/api/v1/grid-locations/", zone_payload(), format="json").status_code == 403
    )


@pytest.mark.django_db
def test_invalid_polygon_gets_field_error(client_for, dso_user):
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[5.0, 52.0], [5.1, 52.1], [5.1, 52.0], [5.0, 52.1], [5.0, 52.0]]],
    }
    response = client_for(dso_user).post(
        "/api/v1/grid-locations/", zone_payload(geometry=bowtie), format="json"
    )
    assert response.status_code == 400
    assert "Self-intersection" in response.json()["error"]["fields"]["geometry"][0]


@pytest.mark.django_db
def test_only_owner_edits_and_archives(client_for, dso_user, dso2_user):
    zone_id = client_for(dso_user).post("/api/v1/grid-locations/", zone_payload(), format="json").json()["id"]
    other = client_for(dso2_user)
    assert (
        other.patch(f"/api/v1/grid-locations/{zone_id}/", {"status": "congested"}, format="json").status_code
        == 404
    )
    assert other.delete(f"/api/v1/grid-locations/{zone_id}/").status_code == 404
    owner = client_for(dso_user)
    assert (
        owner.patch(f"/api/v1/grid-locations/{zone_id}/", {"status": "congested"}, format="json").json()[
            "status"
        ]
        == "congested"
    )
    assert owner.delete(f"/api/v1/grid-locations/{zone_id}/").status_code == 204
    assert GridLocation.objects.get(pk=zone_id).archived_at is not None


@pytest.mark.django_db
def test_anonymous_is_refused(api_client):
    assert api_client.get("/api/v1/grid-locations/").status_code == 401
    assert api_client.get("/api/v1/assets/").status_code == 401


@pytest.mark.django_db
def test_geojson_import_reports_feature_errors(client_for, dso_user):
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"name": "A", "code": "ean.a"}, "geometry": square(5.0, 52.0)},
            {"type": "Feature", "properties": {"name": "", "code": "ean.b"}, "geometry": square(6.0, 52.0)},
        ],
    }
    response = client_for(dso_user).post("/api/v1/grid-locations/import/", collection, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["row"] == 2
    assert not GridLocation.objects.exists()


@pytest.mark.django_db
def test_asset_visibility_owner_and_zone_dso_only(
    client_for, esp_user, esp2_user, dso_user, dso2_user, esp_org, dso_org
):
    zone = GridLocationFactory(dso=dso_org)
    asset = FlexAssetFactory(owner=esp_org, grid_location=zone, prequalification="pending")
    assert client_for(esp_user).get(f"/api/v1/assets/{asset.pk}/").status_code == 200
    assert client_for(dso_user).get(f"/api/v1/assets/{asset.pk}/").status_code == 200
    assert client_for(esp2_user).get(f"/api/v1/assets/{asset.pk}/").status_code == 404
    assert client_for(dso2_user).get(f"/api/v1/assets/{asset.pk}/").status_code == 404


@pytest.mark.django_db
def test_asset_register_and_prequalify_by_api(client_for, esp_user, dso_user, dso2_user, dso_org):
    GridLocationFactory(dso=dso_org, geometry=square(5.12, 52.09))
    payload = {
        "name": "Heat pump 1",
        "asset_type": "heat_pump",
        "connection_ean": "871000000000000778",
        "latitude": 52.09,
        "longitude": 5.12,
        "max_up_kw": "12",
        "max_down_kw": "8",
    }
    created = client_for(esp_user).post("/api/v1/assets/", payload, format="json")
    assert created.status_code == 201, created.json()
    asset_id = created.json()["id"]
    assert created.json()["prequalification"] == "pending" and created.json()["grid_location"] is not None
    assert (
        client_for(dso2_user)
        .post(f"/api/v1/assets/{asset_id}/prequalify/", {"decision": "approve"}, format="json")
        .status_code
        == 404
    )
    no_reason = client_for(dso_user).post(
        f"/api/v1/assets/{asset_id}/prequalify/", {"decision": "reject"}, format="json"
    )
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    incomplete = client_for(dso_user).post(
        f"/api/v1/assets/{asset_id}/prequalify/", {"decision": "approve"}, format="json"
    )
    assert incomplete.status_code == 400
    assert incomplete.json()["error"]["code"] == "checklist_incomplete"
    ticked = client_for(dso_user).post(
        f"/api/v1/assets/{asset_id}/checklist/",
        {"checked": ["connection", "metering", "capacity", "location", "dispatch_test"]},
        format="json",
    )
    assert ticked.status_code == 200, ticked.json()
    assert ticked.json()[0] | {"checked_at": None} == {
        "item": "connection",
        "label": "Connection point (EAN) verified against the connection register",
        "mandatory": True,
        "checked": True,
        "note": "",
        "checked_by": str(dso_user),
        "checked_at": None,
    }
    assert client_for(esp_user).get(f"/api/v1/assets/{asset_id}/checklist/").json()[4]["checked"] is True
    assert client_for(esp_user).post(
        f"/api/v1/assets/{asset_id}/checklist/", {"checked": []}, format="json"
    ).status_code in (403, 404)
    approved = client_for(dso_user).post(
        f"/api/v1/assets/{asset_id}/prequalify/", {"decision": "approve"}, format="json"
    )
    assert approved.json()["can_trade"] is True


@pytest.mark.django_db
def test_bad_asset_gets_400_with_field(client_for, esp_user):
    payload = {
        "name": "X",
        "asset_type": "battery",
        "connection_ean": "1",
        "latitude": 52,
        "longitude": 5,
        "max_up_kw": "1",
        "max_down_kw": "1",
        "energy_capacity_kwh": "2",
    }
    response = client_for(esp_user).post("/api/v1/assets/", payload, format="json")
    assert response.status_code == 400 and "connection_ean" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_asset_csv_import_by_api(client_for, esp_user):
    csv_text = "name,asset_type,connection_ean,latitude,longitude,max_up_kw,max_down_kw,energy_capacity_kwh\nB1,battery,871000000000000006,52.09,5.12,100,100,200\n"
    upload = io.BytesIO(csv_text.encode())
    upload.name = "assets.csv"
    response = client_for(esp_user).post("/api/v1/assets/import/", {"file": upload}, format="multipart")
    assert response.status_code == 201 and FlexAsset.objects.count() == 1


@pytest.mark.django_db
def test_portfolio_api(client_for, esp_user, esp_org, esp2_org):
    zone = GridLocationFactory()
    mine = FlexAssetFactory(owner=esp_org, grid_location=zone)
    theirs = FlexAssetFactory(owner=esp2_org, grid_location=zone)
    client = client_for(esp_user)
    refused = client.post("/api/v1/portfolios/", {"name": "P", "assets": [theirs.pk]}, format="json")
    assert refused.status_code == 400
    created = client.post("/api/v1/portfolios/", {"name": "P", "assets": [mine.pk]}, format="json")
    assert created.status_code == 201 and created.json()["capabilities"]["max_up_kw"] == "500.000"


@pytest.mark.django_db
def test_network_models_are_private_to_their_dso(
    client_for, dso_user, dso2_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        queued = client_for(dso_user).post(
            "/api/v1/network-models/", {"name": "CIGRE", "example": "cigre_mv"}, format="json"
        )
    assert queued.status_code == 202
    model_url = client_for(dso_user).get(queued.json()["status_url"]).json()["network_model_url"]
    assert client_for(dso_user).get(model_url).status_code == 200
    assert client_for(dso2_user).get(model_url).status_code == 404
    bad = client_for(dso_user).post(
        "/api/v1/network-models/", {"name": "Bad", "network_json": "{}"}, format="json"
    )
    assert bad.status_code == 400


@pytest.mark.django_db
def test_zone_list_query_count_is_pinned(client_for, esp_user, django_assert_max_num_queries):
    for i in range(20):
        GridLocationFactory(geometry=square(5 + i * 0.1, 52.0, half=0.04))
    client = client_for(esp_user)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/grid-locations/")
    assert response.json()["count"] == 20


@pytest.mark.django_db
def test_asset_availability_by_api(client_for, esp_user):
    payload = {
        "name": "Heat pump",
        "asset_type": "heat_pump",
        "connection_ean": "871000000000000556",
        "latitude": 52.09,
        "longitude": 5.12,
        "max_up_kw": "10",
        "max_down_kw": "10",
        "availability": [{"days": [0, 1, 2], "start": "06:00", "end": "23:00"}],
    }
    client = client_for(esp_user)
    bad = client.post(
        "/api/v1/assets/",
        payload | {"availability": [{"days": [0], "start": "23:00", "end": "06:00"}]},
        format="json",
    )
    assert bad.status_code == 400 and "availability" in bad.json()["error"]["fields"]
    assert not FlexAsset.objects.exists()
    response = client.post("/api/v1/assets/", payload, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["availability"] == payload["availability"]
