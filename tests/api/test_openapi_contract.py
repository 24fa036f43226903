"""The OpenAPI schema says what the API does: responses are validated against the schema served at /api/schema/."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from tests.grid.factories import FlexAssetFactory, GridLocationFactory, square
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading import services as trading_services


@pytest.fixture(scope="module")
def spec(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def _to_json_schema(node):
    """OpenAPI 3.0 `nullable` -> JSON Schema type unions, so jsonschema can validate."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def operation(spec, path: str, method: str) -> dict:
    return spec["paths"][path][method]


def assert_matches(spec, path: str, method: str, response, media_type: str = "application/json"):
    """The response's status and content type are documented, and its body validates against the schema."""
    responses = operation(spec, path, method)["responses"]
    documented = responses.get(str(response.status_code))
    assert documented is not None, (
        f"{method.upper()} {path}: {response.status_code} not in {sorted(responses)}"
    )
    assert response["Content-Type"].split(";")[0] == media_type
    assert media_type in documented["content"], f"{media_type} not in {sorted(documented['content'])}"
    schema = copy.deepcopy(documented["content"][media_type]["schema"])
    root = _to_json_schema({**schema, "components": spec["components"]})
    errors = sorted(Draft202012Validator(root).iter_errors(response.json()), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


# --- the mismatches that were found ------------------------------------------------------------------


@pytest.mark.django_db
def test_grid_location_list_and_detail_carry_the_documented_warnings(spec, client_for, esp_user):
    zone = GridLocationFactory()
    client = client_for(esp_user)
    listing = client.get("/api/v1/grid-locations/")
    assert listing.json()["results"][0]["warnings"] == []
    assert_matches(spec, "/api/v1/grid-locations/", "get", listing)
    assert_matches(
        spec, "/api/v1/grid-locations/{id}/", "get", client.get(f"/api/v1/grid-locations/{zone.pk}/")
    )


@pytest.mark.django_db
def test_organisation_members_are_documented_as_the_list_they_are(spec, client_for, esp_user, esp_org):
    response = client_for(esp_user).get(f"/api/v1/organisations/{esp_org.pk}/members/")
    assert isinstance(response.json(), list)
    assert_matches(spec, "/api/v1/organisations/{id}/members/", "get", response)
    parameters = {
        p["name"] for p in operation(spec, "/api/v1/organisations/{id}/members/", "get")["parameters"]
    }
    assert parameters == {"id"}  # no filters or pages that the endpoint would ignore


@pytest.mark.django_db
def test_the_geojson_export_documents_its_media_type(spec, client_for, esp_user):
    GridLocationFactory()
    response = client_for(esp_user).get("/api/v1/grid-locations/geojson/")
    assert_matches(spec, "/api/v1/grid-locations/geojson/", "get", response, "application/geo+json")


def test_csv_and_pdf_downloads_are_documented(spec):
    schedule = operation(spec, "/api/v1/contracts/{id}/schedule/", "get")
    assert {"application/json", "text/csv"} <= set(schedule["responses"]["200"]["content"])
    invoice = operation(spec, "/api/v1/settlements/{id}/invoice/", "get")
    assert {"application/pdf", "text/csv"} <= set(invoice["responses"]["200"]["content"])
    assert {p["name"] for p in invoice["parameters"]} == {"id", "type"}


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?type=", "?type=xml"])
def test_a_download_of_an_unknown_type_is_a_400(spec, client_for, dso_user, settled_setup, query):
    contract = settled_setup["contract"]
    response = client_for(dso_user).get(f"/api/v1/contracts/{contract.pk}/schedule/{query}")
    assert response.status_code == 400
    assert_matches(spec, "/api/v1/contracts/{id}/schedule/", "get", response)


@pytest.mark.django_db
def test_grid_location_import_is_documented_as_json_only(spec, client_for, dso_user):
    assert set(operation(spec, "/api/v1/grid-locations/import/", "post")["requestBody"]["content"]) == {
        "application/json"
    }
    response = client_for(dso_user).post("/api/v1/grid-locations/import/", {"file": "x"}, format="multipart")
    assert response.status_code == 415
    assert_matches(spec, "/api/v1/grid-locations/import/", "post", response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "path"), [("request", "/api/v1/flex-requests/"), ("offer", "/api/v1/flex-offers/")]
)
def test_deleting_an_order_returns_it_cancelled_as_documented(
    spec, client_for, dso_user, esp_user, actor_dso, actor_esp, dso_org, esp_org, kind, path
):
    zone = GridLocationFactory(dso=dso_org)
    product = ProductFactory()
    session = session_for(product, tomorrow())
    start = session.delivery_start
    if kind == "request":
        order = trading_services.request_submit(
            actor=actor_dso,
            grid_location=zone,
            product=product,
            ptu_start=start,
            quantities_kw=[10],
            price=50,
        )
        client = client_for(dso_user)
    else:
        asset = FlexAssetFactory(owner=esp_org, grid_location=zone)
        order = trading_services.offer_submit(
            actor=actor_esp, asset=asset, product=product, ptu_start=start, quantities_kw=[10], price=50
        )
        client = client_for(esp_user)
    response = client.delete(f"{path}{order.pk}/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert_matches(spec, path + "{id}/", "delete", response)


@pytest.mark.django_db
def test_a_zone_created_with_the_documented_status_reason_keeps_it(spec, client_for, dso_user):
    response = client_for(dso_user).post(
        "/api/v1/grid-locations/",
        {
            "name": "Nord",
            "code": "ean.871000000099",
            "geometry": square(7.9, 48.5),
            "status": "watch",
            "status_reason": "Evening peak forecast",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status_reason"] == "Evening peak forecast"
    assert_matches(spec, "/api/v1/grid-locations/", "post", response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/assets/abc/prequalify/"),
        ("patch", "/api/v1/grid-locations/abc/"),
        ("get", "/api/v1/grid-locations/null,null/"),
        ("delete", "/api/v1/grid-locations/1.5/"),
    ],
)
def test_a_malformed_id_is_a_documented_404_not_a_server_error(spec, client_for, dso_user, method, path):
    response = getattr(client_for(dso_user), method)(path, {}, format="json")
    assert response.status_code == 404
    template = path.replace("abc", "{id}").replace("null,null", "{id}").replace("1.5", "{id}")
    assert_matches(spec, template, method, response)


# --- error statuses and lists, everywhere --------------------------------------------------------------


def test_every_operation_documents_its_error_statuses(spec):
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            expected = {"401", "403", "429"}
            if "{" in path:
                expected.add("404")
            if method in ("post", "put", "patch", "delete") or any(
                p["in"] == "query" for p in op.get("parameters", [])
            ):
                expected.add("400")
            if "requestBody" in op:
                expected.add("415")
            if not expected <= codes:
                missing.append(f"{method.upper()} {path}: {sorted(expected - codes)}")
            for code in expected - {"415"}:
                if code in codes:
                    content = op["responses"][code]["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/Error"}
    assert missing == []


def test_only_get_collections_are_paginated_and_filtered(spec):
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            if method != "get":
                assert not names & {"page", "page_size", "ordering"}, f"{method.upper()} {path}"
                for response in op["responses"].values():
                    for content in response.get("content", {}).values():
                        assert "Paginated" not in content["schema"].get("$ref", ""), (
                            f"{method.upper()} {path}"
                        )


@pytest.mark.django_db
def test_an_enqueuing_operation_documents_503(spec):
    assert "503" in operation(spec, "/api/v1/network-models/{id}/power-flow/", "post")["responses"]
    assert "503" in operation(spec, "/api/v1/meter-readings/", "post")["responses"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "page_size=abc",
        "page_size=0",
        "page_size=1001",
        "page=0",
        "page=",
        "page=x",
        "status=",
        "status=nope",
        "dso=x",
    ],
)
def test_a_malformed_page_or_filter_parameter_is_a_400(spec, client_for, esp_user, query):
    response = client_for(esp_user).get(f"/api/v1/grid-locations/?{query}")
    assert response.status_code == 400
    assert_matches(spec, "/api/v1/grid-locations/", "get", response)


@pytest.mark.django_db
@pytest.mark.django_db
def test_a_filter_id_beyond_64_bits_finds_nothing(client_for, esp_user):
    response = client_for(esp_user).get("/api/v1/flex-offers/?asset=22363654073607159545856")
    assert response.status_code == 200 and response.json()["count"] == 0


@pytest.mark.django_db
def test_opportunities_apply_the_filters_they_document(
    spec, client_for, esp_user, actor_dso, dso_org, esp_org
):
    product = ProductFactory()
    session = session_for(product, tomorrow())
    zones = [GridLocationFactory(dso=dso_org), GridLocationFactory(dso=dso_org)]
    for zone in zones:
        FlexAssetFactory(owner=esp_org, grid_location=zone)
        trading_services.request_submit(
            actor=actor_dso,
            grid_location=zone,
            product=product,
            ptu_start=session.delivery_start,
            quantities_kw=[10],
            price=50,
        )
    client = client_for(esp_user)
    assert client.get("/api/v1/flex-requests/opportunities/").json()["count"] == 2
    response = client.get(f"/api/v1/flex-requests/opportunities/?grid_location={zones[0].pk}")
    assert [r["grid_location"] for r in response.json()["results"]] == [zones[0].pk]
    assert_matches(spec, "/api/v1/flex-requests/opportunities/", "get", response)
    assert client.get("/api/v1/flex-requests/opportunities/?is_tso=false").json()["count"] == 2
    assert client.get("/api/v1/flex-requests/opportunities/?is_tso=true").json()["count"] == 0
    assert client.get("/api/v1/flex-requests/opportunities/?is_tso=maybe").status_code == 400
