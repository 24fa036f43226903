"""A DSO finds the zone temperature page from the M&V menu, sees a bad file refused row by row, uploads a good
one; the demo's accuracy page ranks the temperature baseline beside the others."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from settlement.models import BaselineAccuracy, ZoneTemperature
from tests.browser.conftest import screenshot


@pytest.mark.django_db(transaction=True)
def test_a_dso_uploads_zone_temperatures(page, login_as, dso_user, world, tmp_path):
    code = world["zone"].code
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"grid_location_code,start,celsius\n{code},2026-01-15T07:00Z,3\n{code},2026-01-15T08:10Z,warm\n"
    )
    good = tmp_path / "temperatures.csv"
    hours = [datetime(2026, 1, 15, tzinfo=ZoneInfo("UTC")) + timedelta(hours=h) for h in range(48)]
    good.write_text(
        "grid_location_code,start,celsius\n"
        + "".join(
            f"{code},{moment:%Y-%m-%dT%H:%MZ},{(h % 24) / 4 - 2:.1f}\n" for h, moment in enumerate(hours)
        )
    )

    login_as(dso_user)
    page.goto("/settlement/accuracy/")
    page.get_by_test_id("nav-settlement").hover()
    page.get_by_test_id("nav-temperatures").click()
    page.wait_for_url("**/settlement/temperatures/")

    page.set_input_files("input[name=file]", str(bad))
    page.get_by_test_id("temperature-upload").get_by_role("button", name="Upload").click()
    errors = page.get_by_test_id("row-errors").inner_text()
    assert "start" in errors and "15-minute boundary" in errors
    assert not ZoneTemperature.objects.exists()

    page.set_input_files("input[name=file]", str(good))
    page.get_by_test_id("temperature-upload").get_by_role("button", name="Upload").click()
    page.get_by_text("48 temperatures checked: 48 new, 0 changed.").wait_for()
    coverage = page.get_by_test_id("temperature-coverage").inner_text()
    assert code in coverage and "48" in coverage and "2026-01-17 00:00 CET" in coverage
    screenshot(page, "settlement-temperatures")


@pytest.mark.django_db(transaction=True)
def test_the_demo_accuracy_page_ranks_the_temperature_baseline(page, login_as):
    from accounts import demo as accounts_demo
    from grid import demo as grid_demo
    from settlement import demo as settlement_demo
    from trading import demo as trading_demo

    with time_machine.travel(datetime(2026, 1, 21, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam")), tick=False):
        cast = accounts_demo.seed()
        grid_demo.seed(cast)
        trading_demo.seed(cast)
        settlement_demo.seed(cast)
    assert BaselineAccuracy.objects.filter(method="temperature", samples__gt=0).exists()

    login_as(cast.users["dso_north"])
    page.goto("/settlement/accuracy/")
    table = page.get_by_test_id("accuracy-table")
    assert "temperature" in table.locator("thead").inner_text()
    assert table.locator("tbody tr").count() > 0
    screenshot(page, "settlement-accuracy-with-temperature")
