"""Product rules (issue 12 item 1): the catalogue participants read, and every rule enforced at submission with an
error that names it. A hypothesis property compares the service's verdict with a plain re-statement of the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmarket.errors import DomainError
from trading import services
from trading.models import FlexOffer, FlexRequest, OrderMode, Product
from trading.services import product_rules

START = datetime(2027, 1, 12, 16, 0, tzinfo=UTC)  # 17:00 CET


def _product(**rules) -> Product:
    from tests.trading.factories import ProductFactory

    return ProductFactory(**rules)


def _offer(actor_esp, asset, session, **overrides):
    kwargs = {
        "actor": actor_esp,
        "asset": asset,
        "product": session.product,
        "ptu_start": session.delivery_start + timedelta(hours=17),
        "quantities_kw": [20, 20],
        "price": 60,
    } | overrides
    return services.offer_submit(**kwargs)


def _session(product):
    from tests.trading.factories import session_for, tomorrow

    return session_for(product, tomorrow())


CASES = [
    ({"min_quantity_kw": Decimal("10")}, {"quantities_kw": [20, 5]}, "the minimum size is 10 kW per PTU", "quantities_kw"),
    ({"quantity_step_kw": Decimal("10")}, {"quantities_kw": [20, 25]}, "whole multiples of 10 kW", "quantities_kw"),
    ({"price_floor": Decimal("50")}, {"price": 40}, "the price floor is 50", "price"),
    ({"price_cap": Decimal("100")}, {"price": "100.01"}, "the price cap is 100", "price"),
    ({"min_duration_ptus": 4}, {}, "at least 4 PTUs", "quantities_kw"),
    ({"max_duration_ptus": 1}, {}, "at most 1 PTUs", "quantities_kw"),
    ({"max_ramp_kw": Decimal("15")}, {}, "the ramp is at most 15 kW", "quantities_kw"),
    ({"accepts_aggressor_orders": False}, {"order_mode": OrderMode.AGGRESSOR}, "aggressor orders (fill and kill, fill or kill) are not", "order_mode"),
    ({"accepts_initiator_orders": False}, {}, "orders that rest in the book are not", "order_mode"),
    ({"accepts_block_offers": False}, {"all_or_nothing": True}, "block offers", "min_quantity_kw"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("rules", "order", "message", "field"), CASES)
def test_an_offer_breaking_a_rule_is_refused_naming_it(actor_esp, asset, rules, order, message, field):
    session = _session(_product(name="Peak relief", **rules))
    with pytest.raises(DomainError) as refused:
        _offer(actor_esp, asset, session, **order)
    assert refused.value.code == "product_rule" and refused.value.field == field
    assert str(refused.value).startswith("Peak relief: ") and message in str(refused.value)
    assert not FlexOffer.objects.exists()


@pytest.mark.django_db
def test_a_request_keeps_the_same_rules_and_the_message_gives_the_ptu_in_local_time(actor_dso, zone):
    session = _session(_product(name="Peak relief", quantity_step_kw=Decimal("10")))
    start = session.delivery_start + timedelta(hours=17)
    with pytest.raises(DomainError) as refused:
        services.request_submit(
            actor=actor_dso,
            grid_location=zone,
            product=session.product,
            ptu_start=start,
            quantities_kw=[30, 35],
            price=80,
        )
    assert "35 kW at " in str(refused.value) and (
        "17:15 CET" in str(refused.value) or "17:15 CEST" in str(refused.value)
    )
    assert not FlexRequest.objects.exists()


@pytest.mark.django_db
def test_orders_within_every_rule_are_accepted(actor_esp, asset):
    rules = {
        "min_quantity_kw": Decimal("10"),
        "quantity_step_kw": Decimal("10"),
        "price_floor": Decimal("20"),
        "price_cap": Decimal("200"),
        "min_duration_ptus": 2,
        "max_duration_ptus": 8,
        "max_ramp_kw": Decimal("20"),
    }
    session = _session(_product(**rules))
    offer = _offer(actor_esp, asset, session, quantities_kw=[20, 30, 20, 0, 10], price=200)
    assert offer.quantities_kw == [20, 30, 20, 0, 10]


@pytest.mark.django_db
def test_the_api_answers_400_with_the_rule_on_the_field(client_for, esp_user, asset):
    session = _session(_product(name="Peak relief", quantity_step_kw=Decimal("10")))
    body = {
        "asset": asset.pk,
        "product": session.product_id,
        "ptu_start": (session.delivery_start + timedelta(hours=17)).isoformat(),
        "quantities_kw": [15],
        "price": "60",
    }
    response = client_for(esp_user).post("/api/v1/flex-offers/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "product_rule"
    assert "whole multiples of 10 kW" in error["fields"]["quantities_kw"][0]


@pytest.mark.django_db
def test_the_catalogue_lists_active_products_with_their_rules(client_for, esp_user, fmo_user):
    shown = _product(name="Peak relief", quantity_step_kw=Decimal("10"), price_cap=Decimal("300"))
    hidden = _product(name="Retired", market=shown.market, is_active=False)
    esp = client_for(esp_user)
    products = esp.get("/api/v1/products/").json()
    rows = products["results"] if isinstance(products, dict) else products
    mine = {row["id"]: row for row in rows}
    assert shown.pk in mine and hidden.pk not in mine
    assert mine[shown.pk]["quantity_step_kw"] == "10.000" and mine[shown.pk]["price_cap"] == "300.0000"
    assert mine[shown.pk]["accepts_aggressor_orders"] is True
    assert mine[shown.pk]["gate_closure_local_time"] == "12:00"  # wall clock in the market's zone, no offset
    assert esp.get(f"/api/v1/products/{hidden.pk}/").status_code == 404
    assert client_for(fmo_user).get(f"/api/v1/products/{hidden.pk}/").status_code == 200
    market = esp.get(f"/api/v1/markets/{shown.market_id}/").json()
    assert market["products"] == [shown.pk] and market["time_zone"] == "Europe/Amsterdam"
    session = _session(shown)
    assert esp.get(f"/api/v1/sessions/{session.pk}/").json()["product_id"] == shown.pk


@pytest.mark.django_db
def test_contradictory_rules_are_refused_in_the_admin_form():
    product = _product()
    product.price_floor, product.price_cap = Decimal("90"), Decimal("80")
    product.min_duration_ptus, product.max_duration_ptus = 4, 2
    product.accepts_initiator_orders = product.accepts_aggressor_orders = False
    with pytest.raises(ValidationError) as refused:
        product.clean()
    assert set(refused.value.message_dict) == {"price_cap", "max_duration_ptus", "accepts_aggressor_orders"}


# --- an independent statement of the rules, compared on random products and orders -------------------------


def _reference_allows(rules: dict, quantities: list[float], price: Decimal, mode: str, block: bool) -> bool:
    if mode == "initiator" and not rules["accepts_initiator_orders"]:
        return False
    if mode in ("aggressor", "fill_or_kill") and not rules["accepts_aggressor_orders"]:
        return False
    if block and not rules["accepts_block_offers"]:
        return False
    if not rules["min_duration_ptus"] <= len(quantities) <= (rules["max_duration_ptus"] or 10**6):
        return False
    if rules["price_floor"] is not None and price < rules["price_floor"]:
        return False
    if rules["price_cap"] is not None and price > rules["price_cap"]:
        return False
    thousandths = [round(q * 1000) for q in quantities]
    for q in thousandths:
        if q and q < rules["min_quantity_kw"] * 1000:
            return False
        if q and rules["quantity_step_kw"] and q % round(rules["quantity_step_kw"] * 1000):
            return False
    if rules["max_ramp_kw"] is not None:
        padded = [0, *thousandths, 0]
        if any(abs(b - a) > rules["max_ramp_kw"] * 1000 for a, b in pairwise(padded)):
            return False
    return True


RULES = st.fixed_dictionaries(
    {
        "min_quantity_kw": st.sampled_from([Decimal("0"), Decimal("1"), Decimal("10")]),
        "quantity_step_kw": st.sampled_from([Decimal("0"), Decimal("0.5"), Decimal("10")]),
        "price_floor": st.sampled_from([None, Decimal("10")]),
        "price_cap": st.sampled_from([None, Decimal("100.5")]),
        "min_duration_ptus": st.integers(1, 3),
        "max_duration_ptus": st.sampled_from([None, 2, 4]),
        "max_ramp_kw": st.sampled_from([None, Decimal("10"), Decimal("25.5")]),
        "accepts_initiator_orders": st.booleans(),
        "accepts_aggressor_orders": st.booleans(),
        "accepts_block_offers": st.booleans(),
    }
)


@given(
    rules=RULES,
    quantities=st.lists(
        st.sampled_from([0.0, 0.5, 1.0, 5.0, 10.0, 12.5, 20.0, 30.0, 45.5]), min_size=1, max_size=6
    ),
    price=st.sampled_from([Decimal("0"), Decimal("10"), Decimal("50.25"), Decimal("100.5"), Decimal("101")]),
    mode=st.sampled_from(["initiator", "aggressor", "fill_or_kill"]),
    block=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_order_agrees_with_a_plain_statement_of_the_rules(rules, quantities, price, mode, block):
    product = Product(name="P", **rules)
    try:
        product_rules.check_order(
            product, ptu_start=START, quantities=quantities, price=price, order_mode=mode, block=block
        )
        allowed = True
    except DomainError:
        allowed = False
    assert allowed == _reference_allows(rules, quantities, price, mode, block)


def test_the_product_admin_shows_every_rule():
    """The admin groups the product's fields; a field left out of the groups would be invisible to the FMO."""
    from trading.admin import ProductAdmin

    editable = {
        f.name for f in Product._meta.get_fields() if getattr(f, "editable", False) and not f.auto_created
    }
    shown = set()
    for _title, options in ProductAdmin.fieldsets:
        for entry in options["fields"]:
            shown |= set(entry) if isinstance(entry, tuple) else {entry}
    assert shown == editable
