"""Hand-made bad input, through the API and the upload pages: each is a 400 naming the row and field,
and nothing is written (issue 8, item 15). Before the shared reader and bounds each of these was a 500."""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from datetime import timedelta

import pytest

from grid.models import FlexAsset, GridLocation, NetworkModel
from settlement.models import MeterDay, MeterUpload, Prognosis
from tests.grid.factories import square
from trading.models import AvailabilityAgreement, FlexOffer, FlexRequest

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "upload.csv") -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- what a response names ------------------------------------------------------------------------


def named_in_api(response) -> set[tuple[int | None, str | None]]:
    error = response.json()["error"]
    named = {(None, field) for field in error.get("fields", {})}
    named |= {(item.get("row"), item.get("field")) for item in error.get("errors", [])}
    return named


def named_on_page(response) -> set[tuple[int | None, str | None]]:
    named = {(item["row"], item["field"]) for item in response.context.get("row_errors") or []}
    for key in ("form", "csv_form"):
        form = response.context.get(key)
        if form is not None and form.is_bound:
            named |= {(None, "file" if field == "__all__" else field) for field in form.errors}
    return named


# --- CSV imports ----------------------------------------------------------------------------------


@dataclass
class CsvKind:
    user: str
    api: str | None
    page: str
    header: str
    first_column: str
    model: type

    def good_row(self, ctx) -> str:
        raise NotImplementedError


class Assets(CsvKind):
    def good_row(self, ctx):
        return "Battery A,battery,871000000000099994,52.09,5.12,100,100,200"


class Requests(CsvKind):
    def good_row(self, ctx):
        return f"{ctx['zone'].code},{ctx['product'].code},{ctx['ptu17'].isoformat()},100 100,150"


class Offers(CsvKind):
    def good_row(self, ctx):
        return f"{ctx['asset'].connection_ean},{ctx['product'].code},{ctx['ptu17'].isoformat()},100 100,60"


class Meter(CsvKind):
    def good_row(self, ctx):
        return f"{ctx['asset'].connection_ean},2026-06-10T17:00:00+02:00,5"


class Prognoses(CsvKind):
    def good_row(self, ctx):
        return f"{ctx['asset'].connection_ean},{ctx['session'].delivery_day},{' '.join(['10'] * 96)}"


KINDS = {
    "assets": Assets(
        "esp_user",
        "/api/v1/assets/import/",
        "/grid/assets/import/",
        "name,asset_type,connection_ean,latitude,longitude,max_up_kw,max_down_kw,energy_capacity_kwh",
        "name",
        FlexAsset,
    ),
    "requests": Requests(
        "dso_user",
        "/api/v1/flex-requests/import/",
        "/trading/import/request/",
        "grid_location_code,product_code,ptu_start,quantities_kw,price",
        "grid_location_code",
        FlexRequest,
    ),
    "offers": Offers(
        "esp_user",
        "/api/v1/flex-offers/import/",
        "/trading/import/offer/",
        "asset_ean,product_code,ptu_start,quantities_kw,price",
        "asset_ean",
        FlexOffer,
    ),
    "meter readings": Meter(
        "esp_user", None, "/settlement/meter-data/", "asset_ean,ptu_start,kw", "asset_ean", MeterDay
    ),
    "prognoses": Prognoses(
        "esp_user", None, "/settlement/prognoses/", "asset_ean,delivery_day,values_kw", "asset_ean", Prognosis
    ),
}


def _replace_first(row: str, value: str) -> str:
    return value + row[row.index(",") :]


def random_bytes(kind, ctx):
    return bytes(random.Random(15).randrange(256) for _ in range(4000)), (None, "file")


def utf16_with_bom(kind, ctx):
    return f"{kind.header}\n{kind.good_row(ctx)}\n".encode("utf-16"), (None, "file")


def latin1_row(kind, ctx):
    row = _replace_first(kind.good_row(ctx), "Caf\xe9")
    return f"{kind.header}\n{row}\n".encode("latin-1"), (2, kind.first_column)


def nul_in_row(kind, ctx):
    row = _replace_first(kind.good_row(ctx), "A\x00B")
    return f"{kind.header}\n{row}\n".encode(), (2, kind.first_column)


def field_beyond_csv_limit(kind, ctx):
    row = _replace_first(kind.good_row(ctx), "x" * 131_073)  # csv.field_size_limit() is 131,072
    return f"{kind.header}\n{row}\n".encode(), (2, kind.first_column)


BAD_FILES = [random_bytes, utf16_with_bom, latin1_row, nul_in_row, field_beyond_csv_limit]


@pytest.fixture
def ctx(zone, asset, product, session, ptu17, esp_user, dso_user):
    return {"zone": zone, "asset": asset, "product": product, "session": session, "ptu17": ptu17}


@pytest.mark.parametrize("bad_file", BAD_FILES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_bad_csv_by_api_and_page(kind_name, bad_file, ctx, client_for, client, request):
    kind = KINDS[kind_name]
    user = request.getfixturevalue(kind.user)
    before = kind.model.objects.count()
    data, expected = bad_file(kind, ctx)
    if kind.api:
        response = client_for(user).post(kind.api, {"file": upload(data)}, format="multipart")
        assert response.status_code == 400, response.content[:300]
        assert expected in named_in_api(response)
    client.force_login(user)
    response = client.post(kind.page, {"file": upload(data)})
    assert response.status_code == 400
    assert expected in named_on_page(response)
    assert kind.model.objects.count() == before
    assert not MeterUpload.objects.filter(state=MeterUpload.State.ACCEPTED).exists()


# --- API payloads ---------------------------------------------------------------------------------

LONG = "n" * 100_000


def zone_payload(**overrides):
    return {"name": "Zone", "code": "ean.871000000000012345", "geometry": square(5.3, 52.2)} | overrides


def feature_collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def feature(geometry=None, **properties):
    return {
        "type": "Feature",
        "properties": {"name": "Z", "code": "ean.8710000000055555"} | properties,
        "geometry": geometry or square(5.4, 52.3),
    }


def request_payload(ctx, **overrides):
    return {
        "grid_location": ctx["zone"].pk,
        "product": ctx["product"].pk,
        "ptu_start": ctx["ptu17"].isoformat(),
        "quantities_kw": [100, 100],
        "price": "150",
    } | overrides


def offer_payload(ctx, **overrides):
    return {
        "asset": ctx["asset"].pk,
        "product": ctx["product"].pk,
        "ptu_start": ctx["ptu17"].isoformat(),
        "quantities_kw": [100, 100],
        "price": "60",
    } | overrides


def asset_csv(**overrides) -> io.BytesIO:
    values = {
        "name": "B",
        "asset_type": "battery",
        "connection_ean": "871000000000077770",
        "latitude": "52.09",
        "longitude": "5.12",
        "max_up_kw": "100",
        "max_down_kw": "100",
        "energy_capacity_kwh": "200",
    } | overrides
    return upload((",".join(values) + "\n" + ",".join(values.values()) + "\n").encode())


def order_csv(c, ptu_start: str) -> io.BytesIO:
    header = "grid_location_code,product_code,ptu_start,quantities_kw,price\n"
    return upload(f"{header}{c['zone'].code},{c['product'].code},{ptu_start},100 100,150\n".encode())


def meter(*stamps):
    return lambda c: {
        "readings": [{"asset_ean": c["asset"].connection_ean, "ptu_start": s, "kw": "5"} for s in stamps]
    }


def agreement(c, **overrides):
    return {
        "esp": c["asset"].owner_id,
        "product": c["product"].pk,
        "asset": c["asset"].pk,
        "capacity_kw": "100",
        "availability_price": "5",
        "activation_price": "80",
        "windows": [{"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "20:00"}],
        "valid_from": str(c["session"].delivery_day),
        "valid_to": str(c["session"].delivery_day + timedelta(days=30)),
    } | overrides


@dataclass
class ApiCase:
    id: str
    user: str
    url: str
    body: object  # a function of the market context
    expected: tuple[int | None, str | None]  # (row, field) the answer must name; (None, None): the body
    models: tuple[type, ...]
    fmt: str = "json"


ZONES, ASSETS, NETWORKS = (GridLocation,), (FlexAsset,), (NetworkModel,)
SEVEN_YEARS = [f"{2019 + year}-06-10T17:00:00Z" for year in range(8)]
POLYGON_OF_STRINGS = {"type": "Polygon", "coordinates": "5.1 52.1"}
ONE_NUMBER_POSITIONS = {"type": "Polygon", "coordinates": [[[5.1], [5.2], [5.3], [5.1]]]}
STRING_POSITIONS = {"type": "Polygon", "coordinates": [["5.1,52.1"] * 4]}
IMPORT = "/api/v1/grid-locations/import/"

API_CASES = [
    ApiCase(
        "zone name 100k",
        "dso_user",
        "/api/v1/grid-locations/",
        lambda c: zone_payload(name=LONG),
        (None, "name"),
        ZONES,
    ),
    ApiCase(
        "zone code 100k by import",
        "dso_user",
        IMPORT,
        lambda c: feature_collection(feature(code=LONG)),
        (1, "code"),
        ZONES,
    ),
    ApiCase(
        "zone name 100k by import",
        "dso_user",
        IMPORT,
        lambda c: feature_collection(feature(name=LONG)),
        (1, "name"),
        ZONES,
    ),
    ApiCase(
        "network name 100k",
        "dso_user",
        "/api/v1/network-models/",
        lambda c: {"name": LONG, "network_json": "{}"},
        (None, "name"),
        NETWORKS,
    ),
    ApiCase(
        "asset name beyond the column by csv",
        "esp_user",
        "/api/v1/assets/import/",
        lambda c: {"file": asset_csv(name="n" * 9_000)},
        (2, "name"),
        ASSETS,
        "multipart",
    ),
    ApiCase(
        "max_up_kw 1e308 by csv",
        "esp_user",
        "/api/v1/assets/import/",
        lambda c: {"file": asset_csv(max_up_kw="1e308")},
        (2, "max_up_kw"),
        ASSETS,
        "multipart",
    ),
    ApiCase(
        "max_up_kw 12345678901 by csv",
        "esp_user",
        "/api/v1/assets/import/",
        lambda c: {"file": asset_csv(max_up_kw="12345678901")},
        (2, "max_up_kw"),
        ASSETS,
        "multipart",
    ),
    ApiCase(
        "energy 1e308 by csv",
        "esp_user",
        "/api/v1/assets/import/",
        lambda c: {"file": asset_csv(energy_capacity_kwh="1e308")},
        (2, "energy_capacity_kwh"),
        ASSETS,
        "multipart",
    ),
    ApiCase(
        "request quantities 1e308",
        "dso_user",
        "/api/v1/flex-requests/",
        lambda c: request_payload(c, quantities_kw=[1e308, 1e308]),
        (None, "quantities_kw"),
        (FlexRequest,),
    ),
    ApiCase(
        "offer quantities 1e308",
        "esp_user",
        "/api/v1/flex-offers/",
        lambda c: offer_payload(c, quantities_kw=[1e308]),
        (None, "quantities_kw"),
        (FlexOffer,),
    ),
    ApiCase(
        "request ptu_start year 1",
        "dso_user",
        "/api/v1/flex-requests/",
        lambda c: request_payload(c, ptu_start="0001-01-01T00:00:00Z"),
        (None, "ptu_start"),
        (FlexRequest,),
    ),
    ApiCase(
        "request ptu_start year 9999",
        "dso_user",
        "/api/v1/flex-requests/",
        lambda c: request_payload(c, ptu_start="9999-12-31T23:45:00Z"),
        (None, "ptu_start"),
        (FlexRequest,),
    ),
    ApiCase(
        "request ptu_start year 1 by csv",
        "dso_user",
        "/api/v1/flex-requests/import/",
        lambda c: {"file": order_csv(c, "0001-01-01T00:00:00+01:00")},
        (2, "ptu_start"),
        (FlexRequest,),
        "multipart",
    ),
    ApiCase(
        "request ptu_start year 9999 by csv",
        "dso_user",
        "/api/v1/flex-requests/import/",
        lambda c: {"file": order_csv(c, "9999-12-31T23:45:00-01:00")},
        (2, "ptu_start"),
        (FlexRequest,),
        "multipart",
    ),
    ApiCase(
        "offer valid_until year 9999",
        "esp_user",
        "/api/v1/flex-offers/",
        lambda c: offer_payload(c, valid_until="9999-12-31T23:59:00Z"),
        (None, "valid_until"),
        (FlexOffer,),
    ),
    ApiCase(
        "prognosis delivery_day 9999",
        "esp_user",
        "/api/v1/prognoses/",
        lambda c: {"asset": c["asset"].pk, "delivery_day": "9999-12-31", "values_kw": [1] * 96},
        (None, "delivery_day"),
        (Prognosis,),
    ),
    ApiCase(
        "prognosis delivery_day year 1",
        "esp_user",
        "/api/v1/prognoses/",
        lambda c: {"asset": c["asset"].pk, "delivery_day": "0001-01-01", "values_kw": [1] * 96},
        (None, "delivery_day"),
        (Prognosis,),
    ),
    ApiCase(
        "meter reading year 1",
        "esp_user",
        "/api/v1/meter-readings/",
        meter("0001-01-01T00:00:00+01:00"),
        (2, "ptu_start"),
        (MeterDay,),
    ),
    ApiCase(
        "meter reading year 9999",
        "esp_user",
        "/api/v1/meter-readings/",
        meter("9999-12-31T23:45:00Z"),
        (2, "ptu_start"),
        (MeterDay,),
    ),
    ApiCase(
        "meter readings spanning seven years",
        "esp_user",
        "/api/v1/meter-readings/",
        meter(*SEVEN_YEARS),
        (2, "ptu_start"),  # 2019 lies before the asset existed (minus the window): the row is named
        (MeterDay,),
    ),
    ApiCase(
        "feature that is not an object", "dso_user", IMPORT, lambda c: feature_collection(1), (1, None), ZONES
    ),
    ApiCase("feature that is null", "dso_user", IMPORT, lambda c: feature_collection(None), (1, None), ZONES),
    ApiCase(
        "properties as a string",
        "dso_user",
        IMPORT,
        lambda c: feature_collection(feature() | {"properties": "name=Z"}),
        (1, "properties"),
        ZONES,
    ),
    ApiCase(
        "coordinates as a string",
        "dso_user",
        IMPORT,
        lambda c: feature_collection(feature(POLYGON_OF_STRINGS)),
        (1, "geometry"),
        ZONES,
    ),
    ApiCase(
        "positions as strings",
        "dso_user",
        "/api/v1/grid-locations/",
        lambda c: zone_payload(geometry=STRING_POSITIONS),
        (None, "geometry"),
        ZONES,
    ),
    ApiCase(
        "positions with one number",
        "dso_user",
        IMPORT,
        lambda c: feature_collection(feature(ONE_NUMBER_POSITIONS)),
        (1, "geometry"),
        ZONES,
    ),
    ApiCase(
        "geometry nested 5,000 deep",
        "dso_user",
        "/api/v1/grid-locations/",
        lambda c: json.dumps(zone_payload(geometry="X")).replace('"X"', nested(5_000)),
        (None, None),
        ZONES,
        "raw",
    ),
    ApiCase(
        "zone import nested 100,000 deep",
        "dso_user",
        IMPORT,
        lambda c: nested(100_000),
        (None, None),
        ZONES,
        "raw",
    ),
    ApiCase(
        "network model nested 5,000 deep",
        "dso_user",
        "/api/v1/network-models/",
        lambda c: {"name": "N", "network_json": nested(5_000)},
        (None, "file"),
        NETWORKS,
    ),
    ApiCase(
        "agreement windows of lists",
        "dso_user",
        "/api/v1/availability-agreements/",
        lambda c: agreement(c, windows=[["days", "start", "end"]]),
        (None, "windows"),
        (AvailabilityAgreement,),
    ),
    ApiCase(
        "agreement windows [1]",
        "dso_user",
        "/api/v1/availability-agreements/",
        lambda c: agreement(c, windows=[1]),
        (None, "windows"),
        (AvailabilityAgreement,),
    ),
    ApiCase(
        "agreement windows [null]",
        "dso_user",
        "/api/v1/availability-agreements/",
        lambda c: agreement(c, windows=[None]),
        (None, "windows"),
        (AvailabilityAgreement,),
    ),
    ApiCase(
        "agreement capacity 1e308",
        "dso_user",
        "/api/v1/availability-agreements/",
        lambda c: agreement(c, capacity_kw="1e308"),
        (None, "capacity_kw"),
        (AvailabilityAgreement,),
    ),
    ApiCase(
        "agreement valid_to year 9999",
        "dso_user",
        "/api/v1/availability-agreements/",
        lambda c: agreement(c, valid_to="9999-12-31"),
        (None, "valid_to"),
        (AvailabilityAgreement,),
    ),
]


@pytest.mark.parametrize("case", API_CASES, ids=lambda case: case.id)
def test_bad_api_payload(case, ctx, client_for, request):
    client = client_for(request.getfixturevalue(case.user))
    counts = {model: model.objects.count() for model in case.models}
    body = case.body(ctx)
    if case.fmt == "raw":
        response = client.generic("POST", case.url, body, content_type="application/json")
    else:
        response = client.post(case.url, body, format=case.fmt)
    assert response.status_code == 400, response.content[:300]
    row, field = case.expected
    if (row, field) == (None, None):
        assert "nested" in response.json()["error"]["message"]
    elif field is None:
        assert row in {named_row for named_row, _ in named_in_api(response)}
    else:
        assert (row, field) in named_in_api(response)
    assert {model: model.objects.count() for model in case.models} == counts


# --- pages ----------------------------------------------------------------------------------------


def test_zone_import_page_refuses_deep_json(client, dso_user):
    client.force_login(dso_user)
    response = client.post("/grid/zones/import/", {"file": upload(nested(100_000).encode(), "z.geojson")})
    assert response.status_code == 400 and "nested" in " ".join(response.context["form"].errors["file"])
    assert not GridLocation.objects.exists()


def test_network_page_refuses_deep_json(client, dso_user):
    client.force_login(dso_user)
    response = client.post("/grid/networks/", {"name": "N", "file": upload(nested(5_000).encode(), "n.json")})
    assert response.status_code == 400 and "nested" in response.content.decode()
    assert not NetworkModel.objects.exists()


def test_asset_form_refuses_a_huge_capability(client, esp_user):
    client.force_login(esp_user)
    response = client.post(
        "/grid/assets/new/",
        {
            "name": "B",
            "asset_type": "battery",
            "connection_ean": "871000000000077770",
            "latitude": "52.09",
            "longitude": "5.12",
            "max_up_kw": "12345678901",
            "max_down_kw": "1",
            "energy_capacity_kwh": "10",
        },
    )
    assert response.status_code == 400 and "max_up_kw" in response.context["form"].errors
    assert not FlexAsset.objects.exists()
