"""An ESP opens the D-prognosis chart editor for an autumn DST day (100 PTUs), fills a range, edits one PTU,
sees the chart follow, is refused a value that is not a number, and saves; then downloads the CSV template."""

from datetime import date

import pytest
from playwright.sync_api import expect

from settlement.models import Prognosis
from tests.browser.conftest import screenshots_at_widths
from tests.grid.factories import FlexAssetFactory

AUTUMN = date(2027, 10, 31)


def chart_values(page) -> list:
    return page.evaluate("document.getElementById('prognosis-chart').data[0].y")


@pytest.mark.django_db(transaction=True)
def test_esp_edits_a_prognosis_on_the_chart_and_saves(page, login_as, esp_user, esp_org):
    asset = FlexAssetFactory(owner=esp_org, name="Heat pump park")
    login_as(esp_user)
    page.goto("/settlement/prognoses/")
    page.select_option("#pick_asset", str(asset.pk))
    page.fill("#pick_delivery_day", AUTUMN.isoformat())
    screenshots_at_widths(page, "settlement-prognoses")
    page.get_by_test_id("open-editor").click()
    expect(page.locator("input[data-ptu]")).to_have_count(100)
    expect(page.locator("label[for=kw_13]")).to_contain_text("02:00 CET")
    page.locator("#prognosis-chart .main-svg").first.wait_for()

    page.fill("#fill-kw", "40")
    page.get_by_test_id("fill-apply").click()
    page.fill("#kw_13", "-12.5")
    values = chart_values(page)
    assert values[0] == 40 and values[12] == -12.5 and values[99] == 40  # the chart follows the inputs
    page.fill("#kw_50", "lots")
    assert chart_values(page)[49] is None
    expect(page.locator("#kw_50")).to_have_class("input is-small is-danger")
    page.get_by_test_id("editor-save").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text(
        "PTU 50 (11:15 CET): 'lots' is not a number (kW)"
    )
    assert not Prognosis.objects.exists()
    screenshots_at_widths(page, "settlement-prognosis-editor-error")

    page.fill("#kw_50", "55")
    page.get_by_test_id("editor-save").click()
    page.get_by_text(f"D-prognosis of Heat pump park for {AUTUMN} saved.").wait_for()
    prognosis = Prognosis.objects.get()
    assert (
        len(prognosis.values_kw) == 100 and prognosis.values_kw[12] == -12.5 and prognosis.values_kw[49] == 55
    )
    expect(page.locator("#kw_13")).to_have_value("-12.5")
    screenshots_at_widths(page, "settlement-prognosis-editor")

    with page.expect_download() as download:
        page.get_by_test_id("editor-template").click()
    lines = download.value.path().read_text().splitlines()
    assert len(lines) == 101 and lines[13].endswith(",02:00 CET,2027-10-31T01:00:00+00:00,-12.5")
