from datetime import timedelta

import pytest
from django.utils import timezone

from trading.models import Contract, FlexOffer, MarketSession


@pytest.fixture
def start(session):
    return (session.delivery_start + timedelta(hours=17)).isoformat()


@pytest.mark.django_db
def test_dso_posts_request_and_esp_answers_by_api(
    client_for, dso_user, esp_user, zone, asset, session, start
):
    created = client_for(dso_user).post(
        "/api/v1/flex-requests/",
        {
            "grid_location": zone.pk,
            "product": session.product_id,
            "ptu_start": start,
            "quantities_kw": [100, 100],
            "price": "120",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    esp = client_for(esp_user)
    opportunities = esp.get("/api/v1/flex-requests/opportunities/").json()
    assert [o["id"] for o in opportunities["results"]] == [created.json()["id"]]
    offered = esp.post(
        "/api/v1/flex-offers/",
        {
            "asset": asset.pk,
            "product": session.product_id,
            "ptu_start": start,
            "quantities_kw": [80, 80],
            "price": "60",
            "answers_request": created.json()["id"],
        },
        format="json",
    )
    assert offered.status_code == 201, offered.json()
    assert offered.json()["grid_location"] == zone.pk


@pytest.mark.django_db
def test_offer_after_gate_closure_gets_400_with_message(client_for, esp_user, asset, session, start):
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now() - timedelta(minutes=1))
    response = client_for(esp_user).post(
        "/api/v1/flex-offers/",
        {
            "asset": asset.pk,
            "product": session.product_id,
            "ptu_start": start,
            "quantities_kw": [10],
            "price": "60",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "gate_closed"
    assert not FlexOffer.objects.exists()


@pytest.mark.django_db
def test_bad_offer_input_gets_field_errors(client_for, esp_user, asset, session, start):
    response = client_for(esp_user).post(
        "/api/v1/flex-offers/",
        {
            "asset": asset.pk,
            "product": session.product_id,
            "ptu_start": start,
            "quantities_kw": [],
            "price": "x",
        },
        format="json",
    )
    assert response.status_code == 400
    assert {"quantities_kw", "price"} <= set(response.json()["error"]["fields"])


@pytest.mark.django_db
def test_other_organisations_cannot_see_or_cancel_orders(
    client_for, esp_user, esp2_user, asset, session, start
):
    offer_id = (
        client_for(esp_user)
        .post(
            "/api/v1/flex-offers/",
            {
                "asset": asset.pk,
                "product": session.product_id,
                "ptu_start": start,
                "quantities_kw": [10],
                "price": "60",
            },
            format="json",
        )
        .json()["id"]
    )
    other = client_for(esp2_user)
    assert other.get(f"/api/v1/flex-offers/{offer_id}/").status_code == 404
    assert other.delete(f"/api/v1/flex-offers/{offer_id}/").status_code == 404
    assert FlexOffer.objects.get(pk=offer_id).state == "active"
    assert client_for(esp_user).delete(f"/api/v1/flex-offers/{offer_id}/").json()["state"] == "cancelled"


@pytest.mark.django_db
def test_esp_cannot_use_another_esps_asset_by_api(client_for, esp2_user, asset, session, start):
    response = client_for(esp2_user).post(
        "/api/v1/flex-offers/",
        {
            "asset": asset.pk,
            "product": session.product_id,
            "ptu_start": start,
            "quantities_kw": [10],
            "price": "60",
        },
        format="json",
    )
    assert response.status_code == 400 and "asset" in response.json()["error"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/api/v1/flex-requests/", "/api/v1/flex-offers/", "/api/v1/contracts/", "/api/v1/sessions/"]
)
def test_anonymous_gets_401(api_client, url):
    assert api_client.get(url).status_code == 401


@pytest.mark.django_db
def test_contract_schedule_download(
    client_for, dso_user, esp_user, esp2_user, actor_dso, actor_esp, zone, asset, session
):
    from accounts.context import SYSTEM
    from trading import services

    start = session.delivery_start + timedelta(hours=17)
    services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[100, 100],
        price=100,
    )
    services.offer_submit(
        actor=actor_esp,
        asset=asset,
        product=session.product,
        ptu_start=start,
        quantities_kw=[60, 60],
        price=50,
    )
    MarketSession.objects.filter(pk=session.pk).update(state="closed", gate_closure=timezone.now())
    services.session_clear(session=session, actor=SYSTEM)
    contract = Contract.objects.get()
    esp = client_for(esp_user)
    data = esp.get(f"/api/v1/contracts/{contract.pk}/schedule/").json()
    assert [row["power_kw"] for row in data["ptus"]] == [60, 60] and data["asset"] == asset.connection_ean
    csv_text = esp.get(f"/api/v1/contracts/{contract.pk}/schedule/?type=csv").content.decode()
    assert (
        csv_text.splitlines()[0] == "ptu_start,ptu_end,direction,power_kw,price"
        and len(csv_text.splitlines()) == 3
    )
    assert client_for(dso_user).get(f"/api/v1/contracts/{contract.pk}/").status_code == 200
    assert client_for(esp2_user).get(f"/api/v1/contracts/{contract.pk}/").status_code == 404


@pytest.mark.django_db
def test_availability_agreement_by_api(client_for, dso_user, esp_user, esp2_user, esp_org, asset, session):
    payload = {
        "esp": esp_org.pk,
        "asset": asset.pk,
        "product": session.product_id,
        "capacity_kw": "100",
        "availability_price": "5",
        "activation_price": "80",
        "windows": [{"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "20:00"}],
        "valid_from": str(session.delivery_day),
        "valid_to": str(session.delivery_day + timedelta(days=30)),
    }
    created = client_for(dso_user).post("/api/v1/availability-agreements/", payload, format="json")
    assert created.status_code == 201, created.json()
    agreement_id = created.json()["id"]
    assert (
        client_for(esp2_user)
        .post(f"/api/v1/availability-agreements/{agreement_id}/answer/", {"accept": True}, format="json")
        .status_code
        == 404
    )
    answered = client_for(esp_user).post(
        f"/api/v1/availability-agreements/{agreement_id}/answer/", {"accept": True}, format="json"
    )
    assert answered.json()["state"] == "active"
    bad = client_for(dso_user).post(
        "/api/v1/availability-agreements/", {**payload, "windows": []}, format="json"
    )
    assert bad.status_code == 400 and "windows" in bad.json()["error"]["fields"]


@pytest.fixture
def esp_key_client(api_client, actor_esp):
    from accounts.services import api_key_create

    _, raw_key = api_key_create(actor=actor_esp, name="EMS")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return api_client


def offer_body(session, asset) -> dict:
    start = session.delivery_start + timedelta(hours=17)
    return {
        "asset": asset.pk,
        "product": session.product_id,
        "ptu_start": start.isoformat(),
        "quantities_kw": [10, 10],
        "price": "60",
    }


@pytest.mark.django_db
def test_offer_post_query_count_is_pinned(esp_key_client, asset, session, django_assert_num_queries):
    """Key and roles (2), product with its market and asset with its zone (2), the market's zones, the session
    found and share-locked (1), the asset row lock, the ledger and agreements (3), offer, ledger and audit
    writes (3); plus the test's savepoint pair around the service's transaction."""
    esp_key_client.post("/api/v1/flex-offers/", offer_body(session, asset), format="json")
    with django_assert_num_queries(14):
        response = esp_key_client.post("/api/v1/flex-offers/", offer_body(session, asset), format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_offer_post_into_a_continuous_session_adds_only_the_book_lookup(
    esp_key_client, asset, continuous_session, django_assert_max_num_queries
):
    """The same, plus the per-PTU lock (PostgreSQL) and one read of the opposite book under a savepoint."""
    body = offer_body(continuous_session, asset)
    esp_key_client.post("/api/v1/flex-offers/", body, format="json")
    with django_assert_max_num_queries(18):
        response = esp_key_client.post("/api/v1/flex-offers/", body, format="json")
    assert response.status_code == 201, response.json()
