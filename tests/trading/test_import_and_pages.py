import io
import re
from datetime import timedelta

import pytest

from trading.models import FlexOffer, FlexRequest


def csv_file(text: str, name: str = "orders.csv"):
    upload = io.BytesIO(text.encode())
    upload.name = name
    return upload


@pytest.mark.django_db
def test_offer_csv_is_all_or_nothing_with_row_errors(client_for, esp_user, asset, session):
    start = (session.delivery_start + timedelta(hours=17)).isoformat()
    header = "asset_ean,product_code,ptu_start,quantities_kw,price\n"
    good = f"{asset.connection_ean},{session.product.code},{start},100 100,60\n"
    too_big = f"{asset.connection_ean},{session.product.code},{start},450 450,60\n"
    response = client_for(esp_user).post(
        "/api/v1/flex-offers/import/", {"file": csv_file(header + good + too_big)}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["row"] == 3
    assert not FlexOffer.objects.exists()
    response = client_for(esp_user).post(
        "/api/v1/flex-offers/import/", {"file": csv_file(header + good)}, format="multipart"
    )
    assert response.status_code == 201 and FlexOffer.objects.count() == 1


@pytest.mark.django_db
def test_request_csv_page_lists_row_errors(client, dso_user, zone, session):
    start = (session.delivery_start + timedelta(hours=17)).isoformat()
    header = "grid_location_code,product_code,ptu_start,quantities_kw,price\n"
    rows = f"{zone.code},{session.product.code},{start},100;100,150\nunknown-zone,{session.product.code},{start},100,150\n"
    client.force_login(dso_user)
    response = client.post("/trading/import/request/", {"file": csv_file(header + rows)})
    assert response.status_code == 400 and response.context["row_errors"][0]["row"] == 3
    assert not FlexRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/trading/sessions/", "/trading/contracts/", "/trading/requests/", "/trading/offers/"]
)
def test_anonymous_is_sent_to_login(client, url):
    assert client.get(url)["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_role_pages(client, esp_user, dso_user, fmo_user, session):
    client.force_login(esp_user)
    assert client.get("/trading/requests/").status_code == 403
    for url in [
        "/trading/opportunities/",
        "/trading/offers/",
        "/trading/sessions/",
        f"/trading/sessions/{session.pk}/",
        "/trading/agreements/",
        "/",
    ]:
        assert client.get(url).status_code == 200, url
    client.force_login(dso_user)
    assert client.get("/trading/offers/").status_code == 403
    assert client.get("/trading/monitor/").status_code == 403
    for url in ["/trading/requests/", "/trading/agreements/", "/"]:
        assert client.get(url).status_code == 200, url
    client.force_login(fmo_user)
    assert client.get("/trading/monitor/").status_code == 200


def _one_cleared_contract(actor_dso, actor_esp, zone, asset, session):
    """100 kW wanted at 100 EUR/MWh, 60 kW offered at 50, one PTU at 17:00, cleared: one contract."""
    from django.utils import timezone

    from accounts.context import SYSTEM
    from trading import services
    from trading.models import Contract, MarketSession

    start = session.delivery_start + timedelta(hours=17)
    services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[100],
        price=100,
    )
    services.offer_submit(
        actor=actor_esp, asset=asset, product=session.product, ptu_start=start, quantities_kw=[60], price=50
    )
    MarketSession.objects.filter(pk=session.pk).update(state="closed", gate_closure=timezone.now())
    services.session_clear(session=session, actor=SYSTEM)
    return Contract.objects.get()


@pytest.mark.django_db
def test_other_org_cannot_open_a_contract_page(client, esp2_user, actor_dso, actor_esp, zone, asset, session):
    contract = _one_cleared_contract(actor_dso, actor_esp, zone, asset, session)
    client.force_login(esp2_user)
    assert client.get(f"/trading/contracts/{contract.pk}/").status_code == 404


@pytest.mark.django_db
def test_contract_pages_show_price_and_value_for_people(
    client, esp_user, actor_dso, actor_esp, zone, asset, session
):
    contract = _one_cleared_contract(actor_dso, actor_esp, zone, asset, session)
    client.force_login(esp_user)
    listing = re.sub(r">\s+<", "><", client.get("/trading/contracts/").content.decode())
    # 60 kW for one PTU; the request sets the uniform price (100 EUR/MWh, demand short): 15 kWh worth EUR 1.50.
    assert '<td class="has-text-right">15</td><td class="has-text-right">100.00</td>' in listing
    assert 'data-testid="contract-value">1.50</td>' in listing
    detail = client.get(f"/trading/contracts/{contract.pk}/").content.decode()
    assert "15 kWh, worth EUR 1.50 (average 100.00 EUR/MWh)" in detail
    assert '<td class="has-text-right">60</td><td class="has-text-right">100.00</td>' in detail


@pytest.mark.django_db
def test_revoke_is_offered_exactly_where_it_works(client, dso_user, actor_dso, zone, session):
    from django.utils import timezone

    from flexmarket.errors import DomainError
    from trading import services
    from trading.models import MarketSession

    start = session.delivery_start + timedelta(hours=17)
    order = services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=session.product,
        ptu_start=start,
        quantities_kw=[10],
        price=90,
    )
    client.force_login(dso_user)
    assert order.revocable and "Revoke</button>" in client.get("/trading/requests/").content.decode()
    MarketSession.objects.filter(pk=session.pk).update(gate_closure=timezone.now())  # the gate has closed
    order = FlexRequest.objects.select_related("session").get(pk=order.pk)
    assert order.state == "active" and not order.revocable
    assert "Revoke</button>" not in client.get("/trading/requests/").content.decode()
    with pytest.raises(DomainError) as error:
        services.order_cancel(actor=actor_dso, order=order)
    assert error.value.code == "gate_closed"


@pytest.mark.django_db
def test_contract_list_filters_sorts_pages_and_exports(
    client, dso_user, actor_dso, actor_esp, zone, asset, product
):
    import csv

    from django.utils import timezone

    from accounts.context import SYSTEM
    from tests.grid.factories import GridLocationFactory
    from tests.trading.factories import session_for, tomorrow
    from trading import services
    from trading.models import Contract, MarketSession

    other = GridLocationFactory(dso=actor_dso.organisation, name="Other zone")
    for days, where in ((0, zone), (1, zone), (2, other)):
        session = session_for(product, tomorrow() + timedelta(days=days))
        start = session.delivery_start + timedelta(hours=17)
        seller_asset = asset if where == zone else type(asset).objects.create(
            owner=asset.owner, name="Other battery", asset_type="battery", connection_ean=f"87100000000000{days}099"[:18],
            latitude=asset.latitude, longitude=asset.longitude, grid_location=other, max_up_kw=500, max_down_kw=500,
            prequalification="approved",
        )  # fmt: skip
        services.request_submit(
            actor=actor_dso,
            grid_location=where,
            product=product,
            ptu_start=start,
            quantities_kw=[100],
            price=100,
        )
        services.offer_submit(
            actor=actor_esp,
            asset=seller_asset,
            product=product,
            ptu_start=start,
            quantities_kw=[40 + days],
            price=50,
        )
        MarketSession.objects.filter(pk=session.pk).update(state="closed", gate_closure=timezone.now())
        services.session_clear(session=session, actor=SYSTEM)
    assert Contract.objects.count() == 3
    client.force_login(dso_user)
    page = client.get("/trading/contracts/", {"grid_location": other.pk}).content.decode()
    assert "1 contract ·" in page and page.count('data-testid="contract-value"') == 1 and "Other zone" in page
    day = (tomorrow() + timedelta(days=1)).isoformat()
    page = client.get("/trading/contracts/", {"delivery_from": day, "delivery_to": day}).content.decode()
    assert "1 contract ·" in page and day in page
    ordered = client.get("/trading/contracts/", {"sort": "delivery_day"}).context["table"]
    days = [row.record.session.delivery_day for row in ordered.page.object_list]
    assert days == sorted(days)
    export = client.get("/trading/contracts/", {"state": "active", "_export": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(export.content.decode().splitlines()))
    assert rows[0][:2] == ["Reference", "Buyer"] and len(rows) == 4
    assert sorted(float(r[rows[0].index("kWh")]) for r in rows[1:]) == [10.0, 10.25, 10.5]
    xlsx = client.get("/trading/contracts/", {"_export": "xlsx"})
    assert xlsx.content[:2] == b"PK" and "spreadsheetml" in xlsx["Content-Type"]
