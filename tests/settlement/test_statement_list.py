"""The statement list: filter by period, period state and (the FMO only) organisation; sort by period and amount;
money to the cent on the page and plain Decimal strings in the CSV and XLSX; no query per row."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from settlement import selectors
from settlement.models import Invoice, SettlementPeriod, SettlementStatement


@pytest.fixture
def statements(esp_org, esp2_org):
    may = SettlementPeriod.objects.create(
        name="May", start=date(2026, 5, 1), end=date(2026, 5, 31), state="locked"
    )
    june = SettlementPeriod.objects.create(name="June", start=date(2026, 6, 1), end=date(2026, 6, 30))
    rows = {
        ("may", "esp"): SettlementStatement.objects.create(
            period=may, organisation=esp_org, total_eur="1234.50"
        ),
        ("june", "esp"): SettlementStatement.objects.create(
            period=june, organisation=esp_org, total_eur="-20.00"
        ),
        ("june", "esp2"): SettlementStatement.objects.create(
            period=june, organisation=esp2_org, total_eur="7.10"
        ),
    }
    Invoice.objects.create(statement=rows[("may", "esp")], number="FM-2026-0001")
    return {"may": may, "june": june, **{f"{p}-{o}": s for (p, o), s in rows.items()}}


def _csv(client, **params) -> list[list[str]]:
    response = client.get("/settlement/statements/", {**params, "_export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
def test_an_esp_sees_filters_and_exports_only_its_own_statements(client, esp_user, statements):
    client.force_login(esp_user)
    page = client.get("/settlement/statements/").content.decode()
    assert "2 statements ·" in page and "1,234.50" in page and "7.10" not in page
    assert 'name="organisation"' not in page  # nothing to choose: an ESP sees its own
    # The organisation parameter is ignored, never a way to see someone else's statements.
    assert "2 statements ·" in client.get("/settlement/statements/", {"organisation": "999"}).content.decode()
    rows = _csv(client)
    assert rows[0] == ["Period", "Organisation", "Kind", "Net EUR", "VAT EUR", "Gross EUR", "Invoice"]
    assert sorted(r[3] for r in rows[1:]) == ["-20.00", "1234.50"]  # plain Decimal strings, no separators
    assert {r[6] for r in rows[1:]} == {"FM-2026-0001", ""} and {r[2] for r in rows[1:]} == {"regular"}
    assert [r[0] for r in _csv(client, state="locked")[1:]] == ["May"]
    assert [r[0] for r in _csv(client, period=statements["june"].pk)[1:]] == ["June"]


@pytest.mark.django_db
def test_the_fmo_filters_by_organisation_and_sorts_by_period_and_amount(
    client, fmo_user, esp2_org, statements
):
    client.force_login(fmo_user)
    page = client.get("/settlement/statements/").content.decode()
    assert "3 statements ·" in page and 'name="organisation"' in page
    assert [r[3] for r in _csv(client, sort="total_eur")[1:]] == ["-20.00", "7.10", "1234.50"]
    assert [r[3] for r in _csv(client, sort="-total_eur")[1:]] == ["1234.50", "7.10", "-20.00"]
    assert [r[0] for r in _csv(client, sort="-period")[1:]][-1] == "May"
    assert [r[0] for r in _csv(client, sort="period")[1:]][0] == "May"
    assert [r[1] for r in _csv(client, organisation=esp2_org.pk)[1:]] == [esp2_org.legal_name]
    workbook = load_workbook(
        io.BytesIO(client.get("/settlement/statements/", {"_export": "xlsx", "sort": "total_eur"}).content)
    )
    cells = [[c.value for c in row] for row in workbook.active.iter_rows()]
    assert cells[0][3] == "Net EUR" and [row[3] for row in cells[1:]] == ["-20.00", "7.10", "1234.50"]


@pytest.mark.django_db
def test_a_bad_filter_value_is_a_form_error_not_a_crash(client, fmo_user, statements):
    client.force_login(fmo_user)
    response = client.get("/settlement/statements/", {"period": "nope", "state": "bogus"})
    assert response.status_code == 200
    errors = response.context["filter"].form.errors
    assert set(errors) == {"period", "state"}


@pytest.mark.django_db
def test_the_statement_list_does_not_query_per_row(client, fmo_user, esp_org, statements):
    client.force_login(fmo_user)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/settlement/statements/").status_code == 200
        return len(captured.captured_queries)

    before = count()
    june = statements["june"]
    for i in range(30):
        statement = SettlementStatement.objects.create(
            period=june, organisation=esp_org, total_eur=Decimal(i)
        )
        Invoice.objects.create(statement=statement, number=f"FM-2026-{i + 100:04d}")
    assert count() == before
    assert "33 statements" in client.get("/settlement/statements/").content.decode()


@pytest.mark.django_db
def test_the_money_chart_sums_the_organisations_own_statements_per_period(
    client, esp_user, actor_esp, esp_org, statements
):
    SettlementStatement.objects.create(
        period=statements["june"], organisation=esp_org, kind="adjustment", total_eur="5.05"
    )
    assert selectors.statement_totals_per_period(actor=actor_esp) == [
        ("May", Decimal("1234.50")),
        ("June", Decimal("-14.95")),  # the adjustment adds to June; the other ESP's 7.10 does not
    ]
    client.force_login(esp_user)
    page = client.get("/settlement/statements/", {"period": statements["may"].pk})
    assert 'data-testid="money-chart"' in page.content.decode()
    assert list(page.context["chart"]["data"][0]["x"]) == [
        "May",
        "June",
    ]  # the chart ignores the table's filter
