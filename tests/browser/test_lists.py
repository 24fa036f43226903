"""List pages people work in all day (issue 14 item 2), on the demo data: filter, sort by a header, export what is
shown; screenshots at desktop and phone width."""

import csv
import io
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.browser.conftest import screenshot
from trading.models import Contract


@pytest.mark.django_db(transaction=True)
def test_a_trader_filters_sorts_and_exports_contracts_and_assets(page, login_as):
    call_command("demo", "--no-serve", stdout=StringIO())
    trader = User.objects.get(email="trader@flexy.demo")
    mine = Contract.objects.filter(seller__memberships__user=trader)
    counterparty = mine.first().buyer.legal_name
    expected = mine.filter(buyer__legal_name=counterparty).count()
    login_as(trader)

    page.goto("/trading/contracts/")
    page.fill("#id_q", counterparty)
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**q=*")
    assert page.get_by_text(f"{expected} contract").first.is_visible()
    rows = page.locator("[data-testid=contract-table] tbody tr")
    assert rows.count() == min(expected, 25)
    page.locator("[data-testid=contract-table] thead th a", has_text="Delivery").click()
    page.wait_for_url("**sort=delivery_day*")
    days = page.locator("[data-testid=contract-table] tbody tr td:nth-child(5)").all_inner_texts()
    assert days == sorted(days)
    screenshot(page, "list-contracts")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(exported) == expected + 1 and all(counterparty in (row[1], row[2]) for row in exported[1:])

    page.set_viewport_size({"width": 390, "height": 844})
    menu = page.locator("#main-menu")
    assert not menu.is_visible()  # on a phone the menu folds behind the burger
    screenshot(page, "list-contracts-phone")
    page.get_by_test_id("menu-burger").click()
    assert menu.is_visible() and page.get_by_role("link", name="Contracts").is_visible()
    page.get_by_test_id("menu-burger").click()
    assert not menu.is_visible()
    page.set_viewport_size({"width": 1440, "height": 900})

    page.goto("/grid/assets/")
    page.select_option("#id_prequalification", "pending")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**prequalification=pending*")
    tags = page.locator("[data-testid=asset-table] tbody .tag").all_inner_texts()
    assert tags and set(tags) == {"Pending"}
    screenshot(page, "list-assets-pending")

    # Verifications: filter by state, sort by delivered energy, export to XLSX what is shown.
    from openpyxl import load_workbook

    from settlement.models import DeliveryVerification

    verified = DeliveryVerification.objects.filter(
        contract__seller__memberships__user=trader, state="verified"
    ).count()
    assert verified > 1
    page.goto("/settlement/verifications/")
    page.select_option("#id_state", "verified")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**state=verified*")
    assert page.get_by_text(f"{verified} verification").first.is_visible()
    states = page.locator("[data-testid=verification-table] tbody .tag").all_inner_texts()
    assert states and set(states) == {"Verified"}
    page.locator("[data-testid=verification-table] thead th a", has_text="Delivered kWh").click()
    page.wait_for_url("**sort=delivered_kwh*")
    delivered = page.locator("[data-testid=verification-table] tbody tr td:nth-child(8)").all_inner_texts()
    values = [float(v.replace(",", "")) for v in delivered if v != "—"]
    assert values == sorted(values)
    screenshot(page, "list-verifications")
    with page.expect_download() as download:
        page.get_by_test_id("export-xlsx").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == verified + 1 and {row[-1] for row in rows[1:]} == {"verified"}

    # My FlexOffers: filter by state, sort by price, export CSV with the UTC instant of each first PTU.
    from trading.models import FlexOffer

    offers = FlexOffer.objects.filter(owner__memberships__user=trader)
    state = offers.values_list("state", flat=True).first()
    expected = offers.filter(state=state).count()
    page.goto("/trading/offers/")
    page.select_option("#id_state", state)
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url(f"**state={state}*")
    assert page.get_by_text(f"{expected} offer").first.is_visible()
    page.locator("[data-testid=order-table] thead th a", has_text="Price").click()
    page.wait_for_url("**sort=price*")
    prices = page.locator("[data-testid=order-table] tbody tr td:nth-child(7)").all_inner_texts()
    assert prices and [float(p.replace(",", "")) for p in prices] == sorted(
        float(p.replace(",", "")) for p in prices
    )
    screenshot(page, "list-offers")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "list-offers-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(exported) == expected + 1 and exported[0][0] == "#"
    assert {row[8] for row in exported[1:]} == {state} and all("+00:00" in row[3] for row in exported[1:])
