"""Notifications page (issue 14 items 2 and 6): filter by category and read state, mark one and all read, export;
screenshots at desktop and phone width."""

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts import services
from accounts.models import Notification
from tests.browser.conftest import screenshot

Category = Notification.Category


@pytest.mark.django_db(transaction=True)
def test_a_user_filters_marks_read_and_exports_notifications(page, login_as, esp_user, esp_org, esp2_org):
    for n in range(3):
        services.notify_organisation(
            organisation=esp_org, category=Category.TRADING, title=f"Contract C-{n}: you sold 25 kWh",
            body="Delivery tomorrow 17:00.", link="/trading/contracts/",
        )  # fmt: skip
    services.notify_organisation(organisation=esp_org, category=Category.GRID, title="Battery A: approved")
    services.notify_organisation(organisation=esp2_org, category=Category.GRID, title="Not yours")
    login_as(esp_user)
    rows = page.get_by_test_id("notification-row")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/organisation/notifications/")
        expect(rows).to_have_count(4)
        expect(page.get_by_test_id("mark-all-read")).to_have_text("Mark all as read (4)")
        screenshot(page, f"notifications-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.select_option("#id_category", "grid")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**category=grid*")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Battery A: approved")
    rows.first.get_by_test_id("mark-read").click()
    page.wait_for_url("**category=grid*")
    expect(rows.first.get_by_test_id("mark-read")).to_have_count(0)

    page.goto("/organisation/notifications/?read=unread")
    expect(rows).to_have_count(3)
    page.get_by_test_id("mark-all-read").click()
    expect(
        page.locator(".notification, .message", has_text="3 notifications marked as read.")
    ).to_be_visible()
    expect(rows).to_have_count(0)
    expect(page.get_by_test_id("mark-all-read")).to_be_disabled()
    screenshot(page, "notifications-all-read")
    assert Notification.objects.get(title="Not yours").read_at is None

    page.goto("/organisation/notifications/?category=trading")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    exported = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert exported[0] == ["When", "Category", "Notification", "Details", "Read"]
    assert sorted(row[2] for row in exported[1:]) == [f"Contract C-{n}: you sold 25 kWh" for n in range(3)]
