"""Trading list pages on the demo data (issue 14 item 2): a trader filters market sessions by product, sorts them
by gate closure and exports what is shown; opportunities, agreements and a BRP's activations are seen at desktop
and phone width."""

import csv
import io
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from accounts.context import Actor
from accounts.models import User
from grid.models import FlexAsset
from tests.browser.conftest import screenshots_at_widths
from trading import services
from trading.models import MarketSession, Product


def _proposed_to(trader):
    """An availability agreement a DSO proposes to the trader's organisation (the demo has none)."""
    esp = trader.memberships.first().organisation
    asset = FlexAsset.objects.filter(owner=esp, prequalification="approved").first()
    dso = asset.grid_location.dso
    day = MarketSession.objects.order_by("-delivery_day").first().delivery_day
    return services.agreement_propose(
        actor=Actor(user=dso.memberships.first().user, organisation=dso),
        esp=esp,
        grid_location=asset.grid_location,
        product=Product.objects.filter(market__grid_locations=asset.grid_location).first(),
        capacity_kw=10,
        availability_price=5,
        activation_price=80,
        windows=[{"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "20:00"}],
        valid_from=day,
        valid_to=day + timedelta(days=30),
        asset=asset,
    )


@pytest.mark.django_db(transaction=True)
def test_a_trader_filters_sorts_and_exports_sessions_and_reads_the_other_trading_lists(page, login_as):
    call_command("demo", "--no-serve", stdout=StringIO())
    trader = User.objects.get(email="trader@flexy.demo")
    product = MarketSession.objects.values_list("product", "product__name").first()
    expected = MarketSession.objects.filter(product=product[0]).count()
    assert expected > 1
    login_as(trader)

    page.goto("/trading/sessions/")
    page.select_option("#id_product", str(product[0]))
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**product=*")
    assert page.get_by_text(f"{expected} session").first.is_visible()
    names = page.locator("[data-testid=session-table] tbody tr td:nth-child(1)").all_inner_texts()
    assert names and set(names) == {product[1]}
    page.locator("[data-testid=session-table] thead th a", has_text="Gate closure").click()
    page.wait_for_url("**sort=gate_closure*")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    closures = [row[4] for row in rows[1:]]
    assert len(rows) == expected + 1 and closures == sorted(closures) and all("+00:00" in c for c in closures)
    with page.expect_download() as download:
        page.get_by_test_id("export-xlsx").click()
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet.max_row == expected + 1
    screenshots_at_widths(page, "list-sessions")

    page.goto("/trading/opportunities/")
    page.select_option("#id_direction", "up")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**direction=up*")
    assert page.get_by_test_id("opportunity-table").is_visible()
    screenshots_at_widths(page, "list-opportunities")

    agreement = _proposed_to(trader)
    page.goto("/trading/agreements/")
    page.select_option("#id_state", "proposed")
    page.get_by_test_id("apply-filter").click()
    page.wait_for_url("**state=proposed*")
    assert page.get_by_text("1 agreement").first.is_visible()
    screenshots_at_widths(page, "list-agreements")
    page.get_by_test_id(f"agreement-accept-{agreement.pk}").click()
    page.wait_for_url("**/trading/agreements/")
    agreement.refresh_from_db()
    assert agreement.state == "active" and page.get_by_text("Answer recorded.").is_visible()

    login_as(User.objects.get(email="analyst@balans.demo"))
    page.goto("/trading/activations/")
    assert page.get_by_test_id("activation-table").is_visible()
    page.locator("[data-testid=activation-table] thead th a", has_text="Zone").click()
    page.wait_for_url("**sort=grid_location*")
    screenshots_at_widths(page, "list-activations")
