"""Statement amounts (settlement.amounts): hand-checked cases, the USEF settle-phase example, and properties against
an independent reference written with fractions."""

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement import amounts

SELLER, BUYER, FMO = 1, 2, 3


def terms(contracted, prices, delivered, **rules):
    return amounts.ContractTerms(
        contract=7,
        seller=SELLER,
        buyer=BUYER,
        contracted_kw=[Decimal(str(v)) for v in contracted],
        prices=[Decimal(str(v)) for v in prices],
        delivered_kw=[Decimal(str(v)) for v in delivered],
        **rules,
    )


def by_org_and_kind(lines):
    result = {}
    for line in lines:
        key = (line.organisation, line.kind)
        result[key] = result.get(key, Decimal(0)) + line.amount
    return result


def test_half_a_cent_rounds_up_exactly():
    # 45 kW x 36 EUR/MW/h x 0.25 h = 0.405 EUR: 0.41 (binary floats give 0.40).
    lines = amounts.contract_lines(terms([45], [36], [0], availability=True), fmo=FMO)
    assert by_org_and_kind(lines) == {
        (SELLER, "availability"): Decimal("0.41"),
        (BUYER, "availability"): Decimal("-0.41"),
    }


def test_the_fmo_fee_line_is_the_sum_of_the_two_rounded_fee_lines():
    # 1.725 EUR of fee per side rounds to 1.73 each; the FMO gets 3.46 (not 3.45 from rounding 3.45 separately).
    lines = amounts.contract_lines(terms([690], [50], [690], fee_eur_per_mwh=Decimal("10")), fmo=FMO)
    amounts_by = by_org_and_kind(lines)
    assert amounts_by[(SELLER, "fee")] == amounts_by[(BUYER, "fee")] == Decimal("-1.73")
    assert amounts_by[(FMO, "fee")] == Decimal("3.46")
    assert sum(line.amount for line in lines) == 0


def test_exactly_the_tolerance_counts_as_delivered():
    # 89.1 of 99 kW at a 10 % tolerance is 90 % exactly (89.1 / 99 = 0.8999999999999999 in floats): full pay.
    lines = amounts.contract_lines(terms([99], [400], ["89.1"], tolerance=Decimal("0.10")), fmo=FMO)
    assert by_org_and_kind(lines) == {
        (SELLER, "activation"): Decimal("9.90"),
        (BUYER, "activation"): Decimal("-9.90"),
    }
    below = amounts.contract_lines(terms([99], [400], ["89.099"], tolerance=Decimal("0.10")), fmo=FMO)
    assert by_org_and_kind(below)[(SELLER, "activation")] == Decimal("8.91")


# UFTP settle phase (Shapeshifter general-description/settle-phase.md): baseline 10 MW, 2 MW ordered for one ISP,
# flex price 7 EUR/MW per ISP (28 EUR/MWh), penalty 11 EUR/MW per ISP (44 EUR/MWh). Allocation -> settlement.
USEF_EXAMPLE = [(7, 14, 0, 14), (8, 14, 0, 14), (9, 7, -11, -4), (10, 0, -22, -22), (11, 0, -33, -33)]


@pytest.mark.parametrize(("allocation_mw", "flex_paid", "penalty", "settlement"), USEF_EXAMPLE)
def test_usef_penalty_rule_reproduces_the_settle_phase_example(allocation_mw, flex_paid, penalty, settlement):
    delivered_kw = (10 - allocation_mw) * 1000
    lines = amounts.contract_lines(
        terms([2000], [28], [delivered_kw], penalty_rule=amounts.USEF, penalty_price=Decimal("44")), fmo=FMO
    )
    seller = by_org_and_kind(lines)
    assert seller[(SELLER, "activation")] == flex_paid
    assert seller.get((SELLER, "penalty"), Decimal(0)) == penalty
    assert amounts.totals(lines)[SELLER] == settlement
    assert amounts.totals(lines)[BUYER] == -settlement


def test_the_capped_rule_stops_the_penalty_at_the_contracted_amount():
    # The same 11 MW row under the capped rule: the deficiency is capped at the 2 MW ordered, -22 not -33.
    lines = amounts.contract_lines(
        terms([2000], [28], [-1000], penalty_rule=amounts.CAPPED, penalty_price=Decimal("44")), fmo=FMO
    )
    assert amounts.totals(lines)[SELLER] == Decimal("-22")


def test_penalty_factor_applies_to_the_contract_price_without_a_penalty_price():
    # 100 kW for 4 PTUs at 80 EUR/MWh, 60 kW delivered, factor 0.5: penalty 0.04 MWh x 80 x 0.5 = 1.60.
    lines = amounts.contract_lines(
        terms([100] * 4, [80] * 4, [60] * 4, tolerance=Decimal("0.1"), penalty_factor=Decimal("0.5")), fmo=FMO
    )
    assert by_org_and_kind(lines)[(SELLER, "penalty")] == Decimal("-1.60")
    assert by_org_and_kind(lines)[(BUYER, "penalty")] == Decimal("1.60")


def test_an_agreements_availability_fee_is_paid_by_the_dso_to_the_esp():
    # 250 kW held for 3 h a day on 5 days = 60 PTUs: 0.25 MW x 15 h x 12.34 EUR/MW/h = 46.275 -> 46.28.
    lines = amounts.agreement_lines(
        amounts.AgreementTerms(
            agreement=4,
            esp=SELLER,
            dso=BUYER,
            capacity_kw=Decimal("250"),
            price_eur_per_mw_h=Decimal("12.34"),
            window_ptus=60,
        )
    )
    assert [(line.organisation, line.kind, line.amount, line.agreement) for line in lines] == [
        (SELLER, "availability", Decimal("46.28"), 4),
        (BUYER, "availability", Decimal("-46.28"), 4),
    ]
    assert lines[0].quantity == Decimal("3.75")


def test_reactive_power_is_paid_as_cleared_by_the_buyer_to_the_seller():
    # 40 kVAr injected at 10 EUR/Mvarh and 20 kVAr absorbed at -5 EUR/Mvarh, a quarter hour each:
    # (40 x 10 + 20 x 5) x 0.25 / 1000 = 0.125 -> 0.13 (half up); 0.015 Mvarh moved.
    lines = amounts.contract_lines(
        terms([100, 100], [50, 50], [100, 100], reactive_kvar=[Decimal("40"), Decimal("-20")],
              reactive_prices=[Decimal("10"), Decimal("-5")]),
        fmo=FMO,
    )  # fmt: skip
    reactive = [line for line in lines if line.kind == "reactive"]
    assert [(line.organisation, line.amount) for line in reactive] == [
        (SELLER, Decimal("0.13")),
        (BUYER, Decimal("-0.13")),
    ]
    assert reactive[0].quantity == Decimal("0.015")
    assert sum((line.amount for line in lines), Decimal(0)) == 0


# --- an independent reference: fractions, per PTU, rounding written out ---------------------------------------


def half_up(value: Fraction) -> Fraction:
    """Round a non-negative amount half up to the cent."""
    assert value >= 0
    return Fraction(floor(value * 100 + Fraction(1, 2)), 100)


def reference(contract: dict) -> dict:
    """Expected amount per (organisation, kind), straight from the rules in docs/settlement.md."""
    q = [Fraction(v) for v in contract["contracted"]]
    p = [Fraction(v) for v in contract["prices"]]
    d = [Fraction(v) for v in contract["delivered"]]
    tolerance = Fraction(contract["tolerance"])
    mwh = lambda kw: kw / 4 / 1000  # noqa: E731
    result = {}
    if contract["availability"]:
        pay = half_up(sum(mwh(kw) * price for kw, price in zip(q, p, strict=True)))
        result[(SELLER, "availability")], result[(BUYER, "availability")] = pay, -pay
    else:
        paid = penalty = Fraction(0)
        for kw, price, done in zip(q, p, d, strict=True):
            if kw <= 0:
                continue
            if done >= kw * (1 - tolerance):
                paid += mwh(kw) * price
                continue
            capped = min(max(done, 0), kw)
            paid += mwh(capped) * price
            short = kw - done if contract["rule"] == "usef" else kw - capped
            rate = (
                Fraction(contract["penalty_price"])
                if contract["penalty_price"] is not None
                else price * Fraction(contract["factor"])
            )
            penalty += mwh(short) * rate
        pay, fine = half_up(paid), half_up(penalty)
        result[(SELLER, "activation")], result[(BUYER, "activation")] = pay, -pay
        if fine:
            result[(SELLER, "penalty")], result[(BUYER, "penalty")] = -fine, fine
    reactive = half_up(sum(mwh(Fraction(kvar)) * Fraction(price) for kvar, price in contract["reactive"]))
    if reactive:
        result[(SELLER, "reactive")], result[(BUYER, "reactive")] = reactive, -reactive
    fee = half_up(sum(mwh(kw) for kw in q if kw > 0) * Fraction(contract["fee"]))
    if fee:
        result[(SELLER, "fee")], result[(BUYER, "fee")], result[(FMO, "fee")] = -fee, -fee, 2 * fee
    return result


def decimals(low, high, places):
    return st.decimals(low, high, places=places, allow_nan=False, allow_infinity=False)


@st.composite
def contracts(draw):
    n = draw(st.integers(1, 8))
    return {
        "contracted": draw(st.lists(decimals(0, 2000, 3), min_size=n, max_size=n)),
        "prices": draw(st.lists(decimals(0, 500, 4), min_size=n, max_size=n)),
        "delivered": draw(st.lists(decimals(-500, 2500, 3), min_size=n, max_size=n)),
        "tolerance": draw(decimals(0, "0.5", 4)),
        "factor": draw(decimals(0, 3, 4)),
        "penalty_price": draw(st.none() | decimals(0, 500, 4)),
        "rule": draw(st.sampled_from(["capped", "usef"])),
        "fee": draw(decimals(0, 5, 4)),
        "availability": draw(st.booleans()),
        # Cleared reactive power and its Q-LMP carry the same sign (the seller is paid): none, or one per PTU.
        "reactive": draw(
            st.just([])
            | st.lists(
                st.tuples(decimals(0, 500, 3), decimals(0, 80, 4), st.sampled_from([1, -1])).map(
                    lambda t: (t[0] * t[2], t[1] * t[2])
                ),
                min_size=n,
                max_size=n,
            )
        ),
    }


def engine_lines(contract: dict):
    return amounts.contract_lines(
        amounts.ContractTerms(
            contract=1,
            seller=SELLER,
            buyer=BUYER,
            contracted_kw=contract["contracted"],
            prices=contract["prices"],
            delivered_kw=contract["delivered"],
            availability=contract["availability"],
            tolerance=contract["tolerance"],
            penalty_rule=contract["rule"],
            penalty_factor=contract["factor"],
            penalty_price=contract["penalty_price"],
            fee_eur_per_mwh=contract["fee"],
            reactive_kvar=[kvar for kvar, _ in contract["reactive"]],
            reactive_prices=[price for _, price in contract["reactive"]],
        ),
        fmo=FMO,
    )


@settings(max_examples=200, deadline=None)
@given(contracts())
def test_engine_matches_the_reference(contract):
    expected = {
        key: Decimal(value.numerator) / Decimal(value.denominator)
        for key, value in reference(contract).items()
    }
    assert by_org_and_kind(engine_lines(contract)) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(contracts(), min_size=1, max_size=12))
def test_any_period_sums_to_exactly_zero(period):
    lines = [line for contract in period for line in engine_lines(contract)]
    assert all(line.amount == line.amount.quantize(amounts.CENT) for line in lines)
    assert sum((line.amount for line in lines), Decimal(0)) == Decimal("0.00")
