"""An ESP uploads meter data and sees the delivery chart; the FMO computes, approves and locks the period and
downloads an invoice PDF."""

import pytest
from playwright.sync_api import expect

from settlement.models import DeliveryVerification, SettlementPeriod
from tests.browser.conftest import screenshot, screenshots_at_widths
from tests.settlement.fixtures import DELIVERY_DAY, meter_csv


@pytest.mark.django_db(transaction=True)
def test_meter_upload_delivery_chart_and_invoice(
    page, browser, live_server, login_as, esp_user, fmo_user, settled_setup, tmp_path
):
    from datetime import timedelta

    asset = settled_setup["asset"]
    csv_path = tmp_path / "meter.csv"
    history = (
        meter_csv(asset, DELIVERY_DAY - timedelta(days=30), lambda d, i: 200, days=30).decode().splitlines()
    )
    today = (
        meter_csv(asset, DELIVERY_DAY, lambda d, i: 110 if 68 <= i < 72 else 200).decode().splitlines()[1:]
    )
    csv_path.write_text("\n".join(history + today) + "\n")

    login_as(esp_user)
    page.goto("/settlement/meter-data/")
    page.set_input_files("input[name=file]", str(csv_path))
    page.get_by_test_id("upload-meter").click()
    assert "2976 readings checked" in page.get_by_test_id("upload-result").inner_text()
    screenshot(page, "settlement-meter-upload")

    verification = (
        DeliveryVerification.objects.get()
    )  # the upload queued verification (tasks run inline in tests)
    assert verification.state == "verified"
    page.goto("/settlement/verifications/")
    page.get_by_text(settled_setup["contract"].reference).click()
    page.locator("#delivery-chart .main-svg").first.wait_for()
    assert page.get_by_test_id("delivered-kwh").inner_text().startswith("90")
    # The time axis is local: the delivery day (10 June, CEST) starts at 22:00 UTC the day before, labelled
    # 00:00 CEST; the reduced PTUs 68-71 (local index) read 17:00-17:45 CEST; the axis names the zone.
    axis = page.evaluate(
        "() => { const c = document.getElementById('delivery-chart');"
        " return {x: c.data[0].x, title: c.layout.xaxis.title.text}; }"
    )
    assert axis["x"][0] == "00:00 CEST" and axis["x"][68] == "17:00 CEST" and len(axis["x"]) == 96
    assert "Europe/Amsterdam" in axis["title"]
    ticks = page.locator("#delivery-chart .xtick text").all_text_contents()
    assert ticks and all(t.endswith("CEST") for t in ticks)
    screenshot(page, "settlement-delivery-chart")

    operator = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 900}, accept_downloads=True
    )
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(fmo_user, backend="django.contrib.auth.backends.ModelBackend")
    operator.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    fmo = operator.new_page()
    fmo.goto("/settlement/console/")
    fmo.fill("input[name=name]", "June 2026")
    fmo.fill("input[name=start]", "2026-06-01")
    fmo.fill("input[name=end]", "2026-06-30")
    fmo.get_by_role("button", name="Create").click()
    period = SettlementPeriod.objects.get()
    for step in ("compute", "approve", "lock"):
        fmo.get_by_test_id(f"{step}-{period.pk}").click()
        expect(fmo.get_by_test_id("confirm-facts")).to_contain_text("June 2026 (2026-06-01 – 2026-06-30)")
        if step == "lock":
            expect(fmo.get_by_test_id("confirm-facts")).to_contain_text("Invoices numbered and sent")
            screenshots_at_widths(fmo, "settlement-confirm-lock")
        fmo.get_by_test_id(f"confirm-{step}").click()
        fmo.get_by_text(f"{step} done").wait_for()
    screenshots_at_widths(fmo, "settlement-console")
    fmo.get_by_test_id(f"reverify-{period.pk}").click()
    expect(fmo.get_by_test_id("confirm-warnings")).to_contain_text("period is locked")
    fmo.get_by_test_id("confirm-reverify").click()
    expect(fmo.get_by_test_id("confirm-form")).to_contain_text("give a reason to re-verify")
    screenshots_at_widths(fmo, "settlement-confirm-reverify")
    fmo.fill("[data-testid=confirm-reason]", "Late meter data from the DSO")
    fmo.get_by_test_id("confirm-reverify").click()
    fmo.get_by_text("reverify done").wait_for()
    fmo.goto("/settlement/statements/")
    fmo.locator(
        "[data-testid=statement-table] a", has_text=settled_setup["contract"].seller.legal_name
    ).click()
    assert fmo.get_by_test_id("invoice-number").inner_text().startswith("FM-INV-")
    screenshot(fmo, "settlement-statement")
    with fmo.expect_download() as download_info:
        fmo.get_by_test_id("download-pdf").click()
    pdf = download_info.value.path().read_bytes()
    assert pdf.startswith(b"%PDF")
    operator.close()
