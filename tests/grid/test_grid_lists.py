"""Portfolios, network models and forecast runs as django-tables2 lists: filter, sort, export (CSV, XLSX with plain
values), no query per row, and the forms beside each table still work."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from grid.models import ForecastRun, NetworkModel, Portfolio
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, PortfolioFactory

MORE = 31


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


def _csv(client, path: str, **params) -> list[list[str]]:
    response = client.get(path, {**params, "_export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def _xlsx(client, path: str, **params) -> list[list]:
    response = client.get(path, {**params, "_export": "xlsx"})
    return [[c.value for c in row] for row in load_workbook(io.BytesIO(response.content)).active.iter_rows()]


@pytest.fixture
def portfolios(esp_org, dso_org):
    north = GridLocationFactory(dso=dso_org, name="North")
    south = GridLocationFactory(dso=dso_org, name="South")
    big = [FlexAssetFactory(owner=esp_org, grid_location=north, max_up_kw=Decimal("120.5")) for _ in range(2)]
    small = FlexAssetFactory(
        owner=esp_org, grid_location=south, max_up_kw=Decimal("10"), energy_capacity_kwh=None
    )
    PortfolioFactory(owner=esp_org, grid_location=north, name="Pool north", assets=big)
    PortfolioFactory(owner=esp_org, grid_location=south, name="Pool south", assets=[small])
    return {"north": north, "south": south, "small": small}


@pytest.mark.django_db
def test_portfolios_filter_by_name_and_zone_sort_by_capability_and_export(client, esp_user, portfolios):
    client.force_login(esp_user)
    page = client.get("/grid/portfolios/").content.decode()
    assert "2 portfolios ·" in page and "241" in page and 'data-testid="portfolio-table"' in page
    assert "1 portfolio ·" in client.get("/grid/portfolios/", {"q": "NORTH"}).content.decode()
    rows = _csv(client, "/grid/portfolios/", grid_location=portfolios["south"].pk)
    assert rows[0] == ["Portfolio", "Zone", "Assets", "Up kW", "Down kW", "kWh"]
    # Plain numbers (no thousands separators or units) whatever the database's decimal places.
    assert rows[1][:3] == ["Pool south", "South", "1"]
    assert [Decimal(v) for v in rows[1][3:]] == [Decimal("10"), Decimal("500"), Decimal("0")]
    assert [r[0] for r in _csv(client, "/grid/portfolios/", sort="-max_up_kw")[1:]] == [
        "Pool north",
        "Pool south",
    ]
    assert [r[0] for r in _csv(client, "/grid/portfolios/", sort="max_up_kw")[1:]] == [
        "Pool south",
        "Pool north",
    ]
    cells = _xlsx(client, "/grid/portfolios/", sort="name")
    assert cells[1][:3] == ["Pool north", "North", 2] and Decimal(cells[1][3]) == Decimal("241")
    # A zone that is not one of the choices is a form error, not a crash or an empty page of someone else's.
    bad = client.get("/grid/portfolios/", {"grid_location": "99999"})
    assert bad.status_code == 200 and "grid_location" in bad.context["filter"].form.errors


@pytest.mark.django_db
def test_the_portfolio_create_form_still_works_beside_the_table(client, esp_user, esp_org, portfolios):
    client.force_login(esp_user)
    created = client.post("/grid/portfolios/", {"name": "Pool small", "assets": [portfolios["small"].pk]})
    assert created.status_code == 302 and Portfolio.objects.filter(name="Pool small").exists()
    refused = client.post("/grid/portfolios/", {"name": "", "assets": []})
    assert refused.status_code == 400 and "3 portfolios ·" in refused.content.decode()


@pytest.mark.django_db
def test_the_portfolio_list_does_not_query_per_row(client, dso_user, esp_org, portfolios):
    client.force_login(dso_user)  # the DSO sees the owner column too
    before = _queries(client, "/grid/portfolios/")
    for i in range(MORE):
        asset = FlexAssetFactory(owner=esp_org, grid_location=portfolios["north"])
        PortfolioFactory(owner=esp_org, grid_location=portfolios["north"], name=f"More {i}", assets=[asset])
    assert _queries(client, "/grid/portfolios/") == before
    assert f"{MORE + 2} portfolios" in client.get("/grid/portfolios/").content.decode()


def _network(dso, name: str, version: int = 1, source: str = "upload") -> NetworkModel:
    return NetworkModel.objects.create(
        dso=dso, name=name, version=version, source=source, network_json="{}", bus_count=version * 10
    )


@pytest.mark.django_db
def test_network_models_filter_sort_export_and_stay_the_dsos_own(client, dso_user, dso_org, dso2_org):
    _network(dso_org, "Feeder A")
    _network(dso_org, "Feeder A", version=2)
    _network(dso_org, "Ring B", source="cigre_mv")
    _network(dso2_org, "Theirs")
    client.force_login(dso_user)
    page = client.get("/grid/networks/").content.decode()
    assert "3 network models ·" in page and "Theirs" not in page
    assert "1 network model ·" in client.get("/grid/networks/", {"q": "cigre"}).content.decode()
    rows = _csv(client, "/grid/networks/", q="feeder", sort="-bus_count")
    assert [r[:3] for r in rows] == [
        ["Model", "Source", "Buses"],
        ["Feeder A v2", "upload", "20"],
        ["Feeder A v1", "upload", "10"],
    ]
    assert datetime.fromisoformat(rows[1][4]).utcoffset() is not None  # the UTC instant with its offset
    assert _xlsx(client, "/grid/networks/", q="ring")[1][0] == "Ring B v1"
    before = _queries(client, "/grid/networks/")
    for i in range(MORE):
        _network(dso_org, f"More {i}")
    assert _queries(client, "/grid/networks/") == before


@pytest.mark.django_db
def test_forecast_runs_filter_by_state_and_day_sort_and_export(client, dso_user, dso_org):
    model = _network(dso_org, "Feeder")
    other = _network(dso_org, "Other")
    ForecastRun.objects.create(network_model=model, delivery_day=date(2026, 11, 18), state="failed")
    ForecastRun.objects.create(
        network_model=model, delivery_day=date(2026, 11, 19), state="succeeded", ptu_count=96, congested_ptus=16,
        max_line_loading_percent=131.24, min_voltage_pu=0.951, max_voltage_pu=1.02, load_scaling=1.5,
        created_at=datetime(2026, 11, 18, 12, tzinfo=UTC),
    )  # fmt: skip
    ForecastRun.objects.create(network_model=other, delivery_day=date(2026, 11, 19))
    url = f"/grid/networks/{model.pk}/forecasts/"
    client.force_login(dso_user)
    page = client.get(url).content.decode()
    assert (
        "2 forecasts ·" in page and "16 / 96" in page and "131.2" in page and "(load ×1.5, gen ×1.0)" in page
    )
    assert 'data-testid="forecast-run-form"' in page and 'data-testid="forecast-upload-form"' in page
    assert "1 forecast ·" in client.get(url, {"state": "failed"}).content.decode()
    rows = _csv(client, url, delivery_from="2026-11-19", delivery_to="2026-11-19")
    assert rows[0][:3] == ["Forecast", "Day", "State"]
    assert rows[1][1:6] == ["2026-11-19", "succeeded", "16", "131.24", "0.951–1.02"]
    assert rows[1][6] == "2026-11-18T12:00:00+00:00"
    assert [r[1] for r in _csv(client, url, sort="delivery_day")[1:]] == ["2026-11-18", "2026-11-19"]
    assert [r[1] for r in _xlsx(client, url, sort="-delivery_day")[1:]] == ["2026-11-19", "2026-11-18"]
    bad = client.get(url, {"delivery_from": "tomorrow", "state": "exploded"})
    assert bad.status_code == 200 and set(bad.context["filter"].form.errors) == {"delivery_from", "state"}
    before = _queries(client, url)
    ForecastRun.objects.bulk_create(
        ForecastRun(network_model=model, delivery_day=date(2026, 11, 20), state="succeeded")
        for _ in range(MORE)
    )
    assert _queries(client, url) == before
