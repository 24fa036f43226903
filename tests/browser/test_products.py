"""A trader finds the product catalogue from the menu and reads each product's order rules (issue 12 item 1)."""

from decimal import Decimal

import pytest

from tests.browser.conftest import screenshot
from tests.trading.factories import MarketFactory, ProductFactory


@pytest.mark.django_db(transaction=True)
def test_a_trader_reads_the_product_rules(page, login_as, esp_user):
    market = MarketFactory(name="NL local flex")
    ProductFactory(
        market=market,
        name="Intraday congestion",
        code="cm-intraday",
        clearing_rule="continuous",
        min_quantity_kw=Decimal("1"),
        quantity_step_kw=Decimal("10"),
        price_cap=Decimal("1000"),
        max_duration_ptus=16,
        accepts_block_offers=False,
    )
    ProductFactory(market=market, name="Retired product", code="old", is_active=False)
    login_as(esp_user)
    page.goto("/")
    page.get_by_test_id("nav-trading").hover()
    page.get_by_test_id("nav-products").click()
    page.wait_for_url("**/trading/products/")
    row = page.get_by_test_id("product-cm-intraday").inner_text()
    for text in ("≥ 1 kW, steps of 10 kW", "≤ 1,000.00 EUR/MWh", "1–16 PTUs", "resting, aggressor"):
        assert text in row
    assert "blocks" not in row
    assert page.get_by_test_id("product-old").count() == 0  # inactive products are the operator's business
    screenshot(page, "trading-products")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "trading-products-phone")
