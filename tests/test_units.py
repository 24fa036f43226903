"""Numbers for people: the `quantity` and `eur` template filters, and a contract's value and average price."""

from decimal import Decimal

import pytest
from django.template import Context, Template

from flexmarket.templatetags.units import eur, quantity
from trading.models import Contract


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("400.000"), "400"),
        (Decimal("12.500"), "12.5"),
        (0.1 + 0.2, "0.3"),
        (1234567.0005, "1,234,567.001"),
        (Decimal("-2.250"), "-2.25"),
        (0, "0"),
        (None, ""),
        ("n/a", "n/a"),
    ],
)
def test_quantity_drops_spurious_zeros(value, text):
    assert quantity(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("1234.5"), "1,234.50"), (Decimal("0.005"), "0.01"), (Decimal("-3.125"), "-3.13"), (None, "")],
)
def test_eur_rounds_half_up_to_the_cent_with_separators(value, text):
    assert eur(value) == text


def test_the_filters_are_builtins():
    assert (
        Template("{{ kw|quantity }} kW, EUR {{ money|eur }}").render(
            Context({"kw": Decimal("400.000"), "money": Decimal("99.999")})
        )
        == "400 kW, EUR 100.00"
    )


def test_contract_value_is_exact_and_rounded_once():
    # 1 kW at 16 EUR/MWh for 3 PTUs: 0.004 EUR each, 0.00 each if rounded per PTU; 0.012 -> 0.01 rounded once.
    contract = Contract(quantities_kw=[1.0, 1.0, 1.0], prices=["16.0000", "16.0000", "16.0000"])
    assert contract.value_eur == Decimal("0.01")
    contract = Contract(quantities_kw=[100.0, 0.0, 50.0], prices=["80.0000", "0", "120.5000"])
    assert contract.value_eur == Decimal("3.51")  # (100 x 80 + 50 x 120.5) / 4000 = 3.50625
    assert contract.average_price == Decimal("93.50")  # 3.50625 EUR over 0.0375 MWh
    assert Contract(quantities_kw=[0.0], prices=["0"]).average_price is None


@pytest.mark.parametrize(
    ("price", "stored"),
    [
        (49.99999999999999, "50.0000"),
        (5e-05, "0.0000"),
        (0.00015, "0.0002"),
        (123.45675, "123.4568"),
        (80, "80.0000"),
    ],
)
def test_one_rule_stores_every_computed_price(price, stored):
    from trading.clearing.prices import price_decimal

    assert str(price_decimal(price)) == stored
