"""Another organisation's id answers exactly like an id that does not exist, on every endpoint that takes ids.

Each row names a caller, a method and path, and a body or query with `{id}` where the probed id goes. The
probe runs twice, with the id of an object the caller may not see and with an id nothing has; status and
body (the id itself masked) must be identical. Rows where the probe is allowed to succeed for the owner are
not existence checks and are left out.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from accounts.services import api_key_create
from grid import services as grid_services
from settlement import services as settlement_services
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, PortfolioFactory
from tests.settlement.fixtures import DELIVERY_DAY
from tests.trading.factories import session_for, tomorrow
from trading import services as trading_services

MISSING_ID = 987_654_321


@pytest.fixture
def world(settled_setup, dso_org, esp_org, actor_dso, actor_esp, actor_fmo):
    """Objects of dso_org and esp_org (the probes come from dso2 and esp2, who must see none of them)."""
    from tests.settlement.test_services import load_history_and_day

    contract = settled_setup["contract"]
    asset = settled_setup["asset"]
    zone = asset.grid_location
    product = settled_setup["product"]
    session = session_for(product, tomorrow())
    portfolio = PortfolioFactory(owner=esp_org, grid_location=zone, assets=[asset])
    offer = trading_services.offer_submit(
        actor=actor_esp,
        asset=asset,
        product=product,
        ptu_start=session.delivery_start,
        quantities_kw=[5],
        price=50,
    )
    request = trading_services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=product,
        ptu_start=session.delivery_start,
        quantities_kw=[5],
        price=60,
    )
    agreement = trading_services.agreement_propose(
        actor=actor_dso,
        esp=esp_org,
        grid_location=zone,
        product=product,
        capacity_kw=10,
        availability_price=1,
        activation_price=2,
        windows=[{"days": [0], "start": "17:00", "end": "18:00"}],
        valid_from=session.delivery_day,
        valid_to=session.delivery_day + timedelta(days=7),
        asset=asset,
    )
    model = grid_services.network_model_create(actor=actor_dso, name="CIGRE", example="cigre_mv")
    run = grid_services.power_flow_run_request(actor=actor_dso, network_model=model)
    load_history_and_day(actor_esp, asset, delivered_kw=100)
    verification = settlement_services.verification_run(contract=contract)
    period = settlement_services.period_create(
        actor=actor_fmo, name="June", start=DELIVERY_DAY.replace(day=1), end=DELIVERY_DAY.replace(day=30)
    )
    settlement_services.period_compute(actor=actor_fmo, period=period)
    key, _ = api_key_create(actor=actor_esp, name="EMS")
    return {
        "asset": asset.pk,
        "portfolio": portfolio.pk,
        "offer": offer.pk,
        "request": request.pk,
        "contract": contract.pk,
        "agreement": agreement.pk,
        "network_model": model.pk,
        "power_flow_run": run.pk,
        "verification": verification.pk,
        "statement": esp_org.statements.first().pk,
        "api_key": key.pk,
        "product": product.pk,
        "session": session.pk,
        "zone": zone.pk,
    }


def probe(client, method: str, path: str, data):
    if method == "get":
        return client.get(path, data)
    return getattr(client, method)(path, data, format="json")


def masked(response, probed_id) -> tuple[int, str]:
    body = response.content.decode()
    return response.status_code, re.sub(rf"\b{probed_id}\b", "<id>", body)


def compare(client, method, path, data, foreign_id):
    """(foreign answer, missing answer), each as (status, body with the id masked)."""
    answers = []
    for probed in (foreign_id, MISSING_ID):
        filled_path = path.replace("{id}", str(probed))
        filled = json.loads(json.dumps(data).replace('"{id}"', str(probed))) if data is not None else None
        answers.append(masked(probe(client, method, filled_path, filled), probed))
    return answers


DETAIL_READS = [
    ("esp2", "/api/v1/assets/{id}/", "asset"),
    ("esp2", "/api/v1/portfolios/{id}/", "portfolio"),
    ("esp2", "/api/v1/flex-offers/{id}/", "offer"),
    ("dso2", "/api/v1/flex-requests/{id}/", "request"),
    ("esp2", "/api/v1/contracts/{id}/", "contract"),
    ("esp2", "/api/v1/contracts/{id}/schedule/", "contract"),
    ("esp2", "/api/v1/availability-agreements/{id}/", "agreement"),
    ("dso2", "/api/v1/network-models/{id}/", "network_model"),
    ("dso2", "/api/v1/power-flow-runs/{id}/", "power_flow_run"),
    ("esp2", "/api/v1/verifications/{id}/", "verification"),
    ("esp2", "/api/v1/settlements/{id}/", "statement"),
    ("esp2", "/api/v1/settlements/{id}/invoice/", "statement"),
    ("esp2", "/api/v1/api-keys/{id}/", "api_key"),
]

FILTERS = [
    ("esp2", "/api/v1/flex-offers/", {"asset": "{id}"}, "asset"),
    ("esp2", "/api/v1/meter-readings/", {"asset": "{id}"}, "asset"),
    ("esp2", "/api/v1/assets/", {"grid_location": "{id}"}, "zone"),
    ("esp2", "/api/v1/contracts/", {"session": "{id}"}, "session"),
    ("dso2", "/api/v1/flex-requests/", {"session": "{id}"}, "session"),
    ("esp2", "/api/v1/flex-offers/", {"session": "{id}"}, "session"),
]

WRITES = [
    (
        "esp2",
        "post",
        "/api/v1/prognoses/",
        {"portfolio": "{id}", "delivery_day": "2030-01-07", "values_kw": [1] * 96},
        "portfolio",
    ),
    (
        "esp2",
        "post",
        "/api/v1/prognoses/",
        {"asset": "{id}", "delivery_day": "2030-01-07", "values_kw": [1] * 96},
        "asset",
    ),
    ("esp2", "post", "/api/v1/portfolios/", {"name": "Mine", "assets": ["{id}"]}, "asset"),
    (
        "esp2",
        "post",
        "/api/v1/flex-offers/",
        {
            "asset": "{id}",
            "product": "<product>",
            "ptu_start": "<start>",
            "quantities_kw": [1],
            "price": "10",
        },
        "asset",
    ),
    (
        "esp2",
        "post",
        "/api/v1/flex-offers/",
        {
            "portfolio": "{id}",
            "product": "<product>",
            "ptu_start": "<start>",
            "quantities_kw": [1],
            "price": "10",
        },
        "portfolio",
    ),
    (
        "esp2",
        "post",
        "/api/v1/flex-offers/",
        {
            "asset": "<own_asset>",
            "answers_request": "{id}",
            "product": "<product>",
            "ptu_start": "<start>",
            "quantities_kw": [1],
            "price": "10",
        },
        "request",
    ),
    (
        "dso2",
        "post",
        "/api/v1/availability-agreements/",
        {
            "esp": "<esp>",
            "portfolio": "{id}",
            "product": "<product>",
            "capacity_kw": "1",
            "availability_price": "1",
            "activation_price": "1",
            "windows": [{"days": [0], "start": "17:00", "end": "18:00"}],
            "valid_from": "2030-01-07",
            "valid_to": "2030-01-14",
        },
        "portfolio",
    ),
    (
        "dso2",
        "post",
        "/api/v1/availability-agreements/",
        {
            "esp": "<esp>",
            "asset": "{id}",
            "product": "<product>",
            "capacity_kw": "1",
            "availability_price": "1",
            "activation_price": "1",
            "windows": [{"days": [0], "start": "17:00", "end": "18:00"}],
            "valid_from": "2030-01-07",
            "valid_to": "2030-01-14",
        },
        "asset",
    ),
    ("dso2", "post", "/api/v1/assets/{id}/prequalify/", {"decision": "approved"}, "asset"),
    ("dso2", "patch", "/api/v1/grid-locations/{id}/", {"name": "Taken"}, "zone"),
    ("dso2", "delete", "/api/v1/grid-locations/{id}/", None, "zone"),
    ("esp2", "delete", "/api/v1/flex-offers/{id}/", None, "offer"),
    ("dso2", "delete", "/api/v1/flex-requests/{id}/", None, "request"),
    ("esp2", "delete", "/api/v1/api-keys/{id}/", None, "api_key"),
    ("dso2", "post", "/api/v1/network-models/{id}/power-flow/", {}, "network_model"),
    ("esp2", "post", "/api/v1/verifications/{id}/dispute/", {"comment": "Not ours"}, "verification"),
    ("esp2", "post", "/api/v1/availability-agreements/{id}/answer/", {"accept": True}, "agreement"),
]


@pytest.fixture
def callers(client_for, esp2_user, dso2_user):
    return {"esp2": client_for(esp2_user), "dso2": client_for(dso2_user)}


@pytest.mark.django_db
def test_detail_endpoints_answer_a_foreign_id_like_a_missing_one(world, callers):
    differing = []
    for caller, path, kind in DETAIL_READS:
        foreign, missing = compare(callers[caller], "get", path, None, world[kind])
        if foreign != missing or foreign[0] != 404:
            differing.append((path, foreign, missing))
    assert differing == []


@pytest.mark.django_db
def test_filters_answer_a_foreign_id_like_a_missing_one(world, callers):
    differing = []
    for caller, path, query, kind in FILTERS:
        foreign, missing = compare(callers[caller], "get", path, query, world[kind])
        if foreign != missing:
            differing.append((path, query, foreign, missing))
    assert differing == []


@pytest.mark.django_db
def test_writes_answer_a_foreign_id_like_a_missing_one(world, callers, esp2_org, dso2_org):
    own_asset = FlexAssetFactory(owner=esp2_org, grid_location=GridLocationFactory(dso=dso2_org))
    from trading.models import MarketSession

    start = MarketSession.objects.get(pk=world["session"]).delivery_start.isoformat()
    placeholders = {
        '"<product>"': str(world["product"]),
        '"<start>"': json.dumps(start),
        '"<own_asset>"': str(own_asset.pk),
        '"<esp>"': str(esp2_org.pk),
    }
    differing = []
    for caller, method, path, data, kind in WRITES:
        text = json.dumps(data)
        for placeholder, value in placeholders.items():
            text = text.replace(placeholder, value)
        foreign, missing = compare(callers[caller], method, path, json.loads(text), world[kind])
        if foreign != missing:
            differing.append((method, path, kind, foreign, missing))
    assert differing == []
