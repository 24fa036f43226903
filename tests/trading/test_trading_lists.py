"""Sessions, opportunities, availability agreements and a BRP's activations as django-tables2 lists (issue 14
item 2): each filters, sorts, exports to CSV and XLSX, and reads the same number of queries for 1 and 42 rows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from accounts.context import Actor
from tests.factories import OrganisationFactory, member_of
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from tests.trading.test_import_and_pages import _one_cleared_contract
from tests.trading.test_list_queries import MORE, _more_contracts
from trading import services
from trading.models import AvailabilityAgreement, MarketSession

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _csv(client, path, params=None):
    response = client.get(path, {**(params or {}), "_export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(response.content.decode().splitlines()))


def _xlsx(client, path, params=None):
    response = client.get(path, {**(params or {}), "_export": "xlsx"})
    assert response.status_code == 200 and "spreadsheetml" in response["Content-Type"]
    return list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))


def _records(client, path, params=None):
    response = client.get(path, params or {})
    assert response.status_code == 200
    return [row.record for row in response.context["table"].page.object_list]


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def _copies(instance, n: int, **changes):
    """`n` copies of a row (new primary keys), for counting queries with many rows."""
    model = type(instance)
    fields = {
        f.attname: getattr(instance, f.attname) for f in model._meta.concrete_fields if f.attname != "id"
    }
    return model.objects.bulk_create(model(**(fields | changes)) for _ in range(n))


@pytest.mark.django_db
def test_session_list_filters_sorts_counts_down_and_exports(client, dso_user):
    alpha, beta = ProductFactory(name="Alpha up"), ProductFactory(name="Beta up")
    day = tomorrow()
    soon = session_for(alpha, day, gate_closure=timezone.now() + timedelta(minutes=90))
    past = session_for(alpha, day + timedelta(days=1), gate_closure=timezone.now() - timedelta(hours=1))
    MarketSession.objects.filter(pk=past.pk).update(state=MarketSession.State.CLOSED)
    later = session_for(beta, day + timedelta(days=2), gate_closure=timezone.now() + timedelta(hours=30))
    client.force_login(dso_user)

    assert _records(client, "/trading/sessions/", {"product": beta.pk}) == [later]
    assert _records(client, "/trading/sessions/", {"state": "closed"}) == [past]
    one_day = (day + timedelta(days=1)).isoformat()
    assert _records(client, "/trading/sessions/", {"delivery_from": one_day, "delivery_to": one_day}) == [
        past
    ]
    assert _records(client, "/trading/sessions/") == [later, past, soon]  # newest delivery day first
    assert _records(client, "/trading/sessions/", {"sort": "gate_closure"}) == [past, soon, later]
    by_state = _records(client, "/trading/sessions/", {"sort": "-state"})
    assert set(by_state[:2]) == {soon, later} and by_state[2] == past  # "open" sorts after "closed"

    page = client.get("/trading/sessions/").content.decode()
    local = soon.gate_closure.astimezone(AMSTERDAM)
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()}" in page
    assert page.count('data-testid="gate-countdown"') == 2  # the closed gate has no countdown
    assert "in 1\xa0hour, 29\xa0minutes" in page or "in 1\xa0hour, 30\xa0minutes" in page
    assert f'<option value="{alpha.pk}">Alpha up · {alpha.market.name}</option>' in page  # named, not coded

    rows = _csv(client, "/trading/sessions/", {"product": alpha.pk})
    assert rows[0] == ["Product", "Market", "Delivery day", "Clearing", "Gate closure", "State"]
    assert len(rows) == 3 and {r[5] for r in rows[1:]} == {"open", "closed"}
    assert all(r[4].endswith("+00:00") for r in rows[1:])
    assert len(_xlsx(client, "/trading/sessions/")) == 4


@pytest.mark.django_db
def test_a_bad_filter_value_is_named_and_left_out(client, dso_user, session):
    client.force_login(dso_user)
    response = client.get("/trading/sessions/", {"delivery_from": "yesterday", "product": "999999"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="filter-errors"' in page and "Delivery from: Enter a valid date." in page
    assert "1 session ·" in page  # nothing filtered by what could not be read


@pytest.mark.django_db
def test_session_list_does_not_query_per_row(client, dso_user, product):
    client.force_login(dso_user)
    first = session_for(product, tomorrow())
    before = _queries(client, "/trading/sessions/")
    for i in range(MORE):
        session_for(ProductFactory(market=product.market), tomorrow() + timedelta(days=i % 3))
    assert _queries(client, "/trading/sessions/") == before
    assert f"{MORE + 1} sessions" in client.get("/trading/sessions/").content.decode() and first


def _request(actor_dso, zone, product, hours=17, **kwargs):
    session = MarketSession.objects.filter(product=product).first() or session_for(product, tomorrow())
    return services.request_submit(
        actor=actor_dso,
        grid_location=zone,
        product=product,
        ptu_start=session.delivery_start + timedelta(hours=hours),
        quantities_kw=[80, 120],
        price=95,
        **kwargs,
    )


@pytest.mark.django_db
def test_opportunities_filter_sort_export_and_keep_the_answer_link(
    client, esp_user, actor_dso, esp_org, zone, asset, product
):
    other = GridLocationFactory(dso=actor_dso.organisation, name="Other zone")
    FlexAssetFactory(owner=esp_org, grid_location=other)
    down = ProductFactory(market=product.market, direction="down", name="Congestion down")
    session_for(down, tomorrow() + timedelta(days=1))
    up_here = _request(actor_dso, zone, product, hours=18)
    up_there = _request(actor_dso, other, product, hours=9)
    down_here = _request(actor_dso, zone, down, hours=12)
    _request(
        actor_dso, GridLocationFactory(dso=actor_dso.organisation), product
    )  # where the ESP has no asset
    client.force_login(esp_user)

    assert set(_records(client, "/trading/opportunities/")) == {up_here, up_there, down_here}
    assert _records(client, "/trading/opportunities/", {"grid_location": other.pk}) == [up_there]
    assert _records(client, "/trading/opportunities/", {"direction": "down"}) == [down_here]
    day = (tomorrow() + timedelta(days=1)).isoformat()
    assert _records(client, "/trading/opportunities/", {"delivery_from": day}) == [down_here]
    assert _records(client, "/trading/opportunities/", {"sort": "ptu_start"}) == [
        up_there,
        up_here,
        down_here,
    ]
    page = client.get("/trading/opportunities/").content.decode()
    assert f'href="/trading/offers/?request={up_here.pk}" data-testid="answer-{up_here.pk}"' in page
    assert "3 open requests ·" in page and "120" in page

    rows = _csv(client, "/trading/opportunities/", {"direction": "up", "sort": "ptu_start"})
    header = rows[0]
    assert "Answer" not in "".join(header) and header[-1] == "Max price EUR/MWh" and len(rows) == 3
    assert rows[1][header.index("Zone")] == "Other zone" and rows[1][header.index("From")].endswith("+00:00")
    assert float(rows[1][header.index("kW open (max)")]) == 120 and rows[1][header.index("PTUs")] == "2"
    assert len(_xlsx(client, "/trading/opportunities/")) == 4


@pytest.mark.django_db
def test_opportunities_do_not_query_per_row(client, esp_user, actor_dso, zone, asset, product):
    client.force_login(esp_user)
    first = _request(actor_dso, zone, product)
    before = _queries(client, "/trading/opportunities/")
    _copies(first, MORE)
    assert _queries(client, "/trading/opportunities/") == before
    assert f"{MORE + 1} open requests" in client.get("/trading/opportunities/").content.decode()


def _agreement(actor_dso, esp, zone, product, asset, **kwargs):
    day = tomorrow()
    return services.agreement_propose(
        actor=actor_dso,
        esp=esp,
        grid_location=zone,
        product=product,
        capacity_kw=kwargs.pop("capacity_kw", 50),
        availability_price=5,
        activation_price=80,
        windows=[{"days": [0, 1, 2], "start": "17:00", "end": "20:00"}],
        valid_from=day,
        valid_to=day + timedelta(days=30),
        asset=asset,
    )


@pytest.mark.django_db
def test_agreements_filter_sort_export_and_the_esp_answers_in_the_row(
    client, esp_user, actor_dso, actor_esp, esp_org, esp2_org, zone, asset, asset2, product
):
    other_product = ProductFactory(market=product.market, name="Other product")
    mine = _agreement(actor_dso, esp_org, zone, product, asset, capacity_kw=40)
    mine_too = _agreement(actor_dso, esp_org, zone, other_product, asset, capacity_kw=30)
    services.agreement_respond(actor=actor_esp, agreement=mine_too, accept=False)
    _agreement(actor_dso, esp2_org, zone, product, asset2)  # another ESP's: never in this ESP's list
    client.force_login(esp_user)

    assert set(_records(client, "/trading/agreements/")) == {mine, mine_too}
    assert _records(client, "/trading/agreements/", {"state": "proposed"}) == [mine]
    assert _records(client, "/trading/agreements/", {"product": other_product.pk}) == [mine_too]
    dso_name = actor_dso.organisation.legal_name
    assert len(_records(client, "/trading/agreements/", {"q": dso_name[2:8].lower()})) == 2
    assert _records(client, "/trading/agreements/", {"q": "nobody of that name"}) == []
    assert _records(client, "/trading/agreements/", {"sort": "capacity_kw"}) == [mine_too, mine]
    page = client.get("/trading/agreements/").content.decode()
    assert (
        page.count('name="answer" value="accept"') == 1
        and f'data-testid="agreement-accept-{mine.pk}"' in page
    )
    assert f'action="/trading/agreements/{mine.pk}/answer/"' in page

    rows = _csv(client, "/trading/agreements/", {"sort": "capacity_kw"})
    header = rows[0]
    assert header[:2] == ["DSO", "ESP"] and header[-1] == "State" and len(rows) == 3
    assert [float(r[header.index("kW")]) for r in rows[1:]] == [30.0, 40.0]
    assert rows[1][header.index("Windows")] == "17:00-20:00 (0,1,2)" and rows[1][-1] == "declined"
    assert len(_xlsx(client, "/trading/agreements/")) == 3

    answered = client.post(f"/trading/agreements/{mine.pk}/answer/", {"answer": "accept"})
    assert answered.status_code == 302
    mine.refresh_from_db()
    assert mine.state == AvailabilityAgreement.State.ACTIVE
    assert 'name="answer"' not in client.get("/trading/agreements/").content.decode()


@pytest.mark.django_db
def test_agreements_do_not_query_per_row(client, dso_user, actor_dso, esp_org, zone, asset, product):
    client.force_login(dso_user)
    first = _agreement(actor_dso, esp_org, zone, product, asset)
    before = _queries(client, "/trading/agreements/")
    _copies(first, MORE)
    assert _queries(client, "/trading/agreements/") == before
    assert f"{MORE + 1} agreements" in client.get("/trading/agreements/").content.decode()


@pytest.fixture
def brp_setup(actor_dso, actor_esp, zone, session):
    """A contract delivered by an asset in a BRP's perimeter."""
    brp = OrganisationFactory(roles=["BRP"], legal_name="Balans B.V.")
    asset = FlexAssetFactory(owner=actor_esp.organisation, grid_location=zone, brp=brp)
    contract = _one_cleared_contract(actor_dso, actor_esp, zone, asset, session)
    return Actor(user=member_of(brp), organisation=brp), asset, contract


@pytest.mark.django_db
def test_activations_filter_sort_and_export_the_perimeter_part(client, brp_setup, actor_dso):
    brp, asset, contract = brp_setup
    client.force_login(brp.user)
    assert _records(client, "/trading/activations/") == [contract]
    other = GridLocationFactory(dso=actor_dso.organisation)
    assert _records(client, "/trading/activations/", {"grid_location": other.pk}) == []
    day = contract.session.delivery_day
    assert _records(client, "/trading/activations/", {"delivery_from": day, "delivery_to": day}) == [contract]
    assert _records(client, "/trading/activations/", {"delivery_from": day + timedelta(days=1)}) == []
    assert _records(client, "/trading/activations/", {"sort": "grid_location"}) == [contract]
    page = client.get("/trading/activations/").content.decode()
    assert asset.connection_ean in page and "1 activation ·" in page and "EUR" not in page

    rows = _csv(client, "/trading/activations/")
    header = rows[0]
    assert header == [
        "Contract", "Zone", "Direction", "Delivery", "Connections (EAN)", "Energy kWh", "Peak kW", "State",
    ]  # fmt: skip
    [row] = rows[1:]
    assert row[0] == contract.reference and row[4] == asset.connection_ean and row[3].endswith("+00:00")
    assert float(row[5]) == 15.0 and float(row[6]) == 60.0 and row[7] == "active"
    # Delivery is the PTUs with kW (17:00-17:15 local), not the start of the auction contract's whole day.
    bought = contract.session.delivery_start + timedelta(hours=17)
    assert contract.ptu_start == contract.session.delivery_start and row[3] == bought.isoformat()
    assert "17:00 CET–17:15 CET" in page or "17:00 CEST–17:15 CEST" in page
    assert _xlsx(client, "/trading/activations/")[1][5] == 15.0


@pytest.mark.django_db
def test_activations_do_not_query_per_row(client, brp_setup):
    brp, _, contract = brp_setup
    client.force_login(brp.user)
    before = _queries(client, "/trading/activations/")
    _more_contracts(contract)
    assert _queries(client, "/trading/activations/") == before
    assert f"{MORE + 1} activations" in client.get("/trading/activations/").content.decode()
