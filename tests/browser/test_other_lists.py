"""Statements, network models, forecast runs and portfolios as lists (issue 14 item 2), on the demo data: filter,
sort by a header, export what is shown; screenshots at desktop and phone width."""

import csv
import io
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from openpyxl import load_workbook
from playwright.sync_api import expect

from accounts.models import User
from grid.models import ForecastRun, NetworkModel, Portfolio
from settlement.models import SettlementStatement
from tests.browser.conftest import screenshots_at_widths


def _download(page, testid: str) -> Path:
    with page.expect_download() as download:
        page.get_by_test_id(testid).click()
    return Path(download.value.path())


@pytest.mark.django_db(transaction=True)
def test_the_fmo_filters_sorts_and_exports_statements_and_a_dso_its_forecasts(page, login_as):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    call_command("demo", "--no-serve", stdout=StringIO())

    # Statements: the FMO picks one organisation, sorts by the net amount, exports plain Decimal strings.
    operator = User.objects.get(email="operator@fmo.demo")
    # FMO staff must have TOTP (as the fmo_user fixture): a registered authenticator keeps pages from redirecting.
    Authenticator.objects.create(
        user=operator, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    login_as(operator)
    statement = SettlementStatement.objects.select_related("organisation").first()
    organisation = statement.organisation
    expected = SettlementStatement.objects.filter(organisation=organisation).count()
    page.goto("/settlement/statements/")
    page.select_option("#id_organisation", str(organisation.pk))
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**organisation=*")
    assert page.get_by_text(f"{expected} statement").first.is_visible()
    page.goto("/settlement/statements/")
    page.locator("[data-testid=statement-table] thead th a", has_text="Net EUR").click()
    page.wait_for_url("**sort=total_eur*")
    shown = page.locator("[data-testid=statement-table] tbody tr td:nth-child(4)").all_inner_texts()
    amounts = [Decimal(v.replace(",", "")) for v in shown]
    assert len(amounts) > 1 and amounts == sorted(amounts)
    screenshots_at_widths(page, "list-statements")
    rows = list(csv.reader(io.StringIO(_download(page, "export-csv").read_text(encoding="utf-8"))))
    assert rows[0][3] == "Net EUR" and [Decimal(r[3]) for r in rows[1:]] == amounts
    assert all("," not in r[3] for r in rows[1:])

    # A DSO's networks and their forecasts: filter by name, then by state and day; export to XLSX.
    planner = User.objects.get(email="planner@zuidnet.demo")
    model = NetworkModel.objects.get(dso__memberships__user=planner)
    ForecastRun.objects.create(
        network_model=model, delivery_day=ForecastRun.objects.first().delivery_day, state="failed"
    )
    login_as(planner)
    page.goto("/grid/networks/")
    page.fill("#id_q", model.name[:5])
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**q=*")
    expect(page.get_by_test_id("network-table")).to_contain_text(str(model))
    screenshots_at_widths(page, "list-networks")
    page.get_by_role("link", name=str(model)).click()
    page.goto(f"/grid/networks/{model.pk}/forecasts/")
    assert page.get_by_text("2 forecasts").first.is_visible()
    page.select_option("#id_state", "succeeded")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**state=succeeded*")
    tags = page.locator("[data-testid=forecast-runs] tbody .tag").all_inner_texts()
    assert tags == ["Succeeded"]
    expect(page.get_by_test_id("forecast-run-form")).to_be_visible()
    screenshots_at_widths(page, "list-forecasts")
    sheet = load_workbook(io.BytesIO(_download(page, "export-xlsx").read_bytes())).active
    cells = list(sheet.iter_rows(values_only=True))
    assert len(cells) == 2 and cells[1][2] == "succeeded"

    # Portfolios: a trader filters by zone; the create form stays beside the table.
    trader = User.objects.get(email="trader@flexy.demo")
    portfolio = (
        Portfolio.objects.filter(owner__memberships__user=trader).select_related("grid_location").first()
    )
    login_as(trader)
    page.goto("/grid/portfolios/")
    page.select_option("#id_grid_location", str(portfolio.grid_location_id))
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**grid_location=*")
    expect(page.get_by_test_id("portfolio-table")).to_contain_text(portfolio.name)
    expect(page.get_by_role("button", name="Create portfolio")).to_be_visible()
    screenshots_at_widths(page, "list-portfolios")
    assert not errors
