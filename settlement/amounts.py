"""Statement amounts: exact Decimal arithmetic, rounded once per line (pure: no Django, no floats).

The rounding rule (docs/settlement.md): every amount is computed exactly from its Decimal inputs (kW, prices,
factors) and rounded once, half up to the cent, as one statement line. The buyer's line is the seller's rounded line
with the opposite sign; each side's platform fee is rounded once and the FMO's fee line is the sum of those two
rounded lines. So each contract, and therefore each period, sums to exactly 0.00 over the organisations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
PTU_HOURS = Decimal("0.25")
KW_PER_MW = Decimal(1000)
ZERO = Decimal(0)

CAPPED = (
    "capped"  # penalise the undelivered part of the contract: contracted − clamp(delivered, 0, contracted)
)
USEF = "usef"  # penalise the whole deviation from the adjusted baseline: contracted − delivered (UFTP settle phase)


def money(value: Decimal) -> Decimal:
    """The one rounding step: half up to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value) -> Decimal:
    """A JSON number or string as the Decimal it was written as (0.1 stays 0.1, never 0.1000000000000000055...)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise TypeError(f"not a number: {value!r}")
    return Decimal(str(value))


def within_tolerance(delivered_kw: Decimal, contracted_kw: Decimal, tolerance: Decimal) -> bool:
    """Exact: 89.1 of 99 kW at a 10 % tolerance is delivered (89.1 ≥ 99 × 0.9)."""
    return delivered_kw >= contracted_kw * (1 - tolerance)


@dataclass(frozen=True)
class Line:
    organisation: int
    kind: str  # activation, penalty, availability, reactive, fee
    amount: Decimal  # EUR, rounded to the cent; + received, − paid
    quantity: Decimal  # MWh (activation, penalty, fee) or MW·h (availability), exact
    contract: int | None = None
    agreement: int | None = None

    @property
    def unit_price(self) -> Decimal:
        """Informational: the amount per unit of quantity (a weighted mean where prices differ per PTU)."""
        return abs(self.amount) / self.quantity if self.quantity else ZERO


@dataclass(frozen=True)
class ContractTerms:
    """One verified contract: per PTU contracted kW, price and delivered kW, with the product's rules."""

    contract: int
    seller: int
    buyer: int
    contracted_kw: Sequence[Decimal]
    prices: Sequence[Decimal]
    delivered_kw: Sequence[Decimal]
    availability: bool = False
    tolerance: Decimal = ZERO
    penalty_rule: str = CAPPED
    penalty_factor: Decimal = Decimal(1)
    penalty_price: Decimal | None = None
    fee_eur_per_mwh: Decimal = ZERO
    # Network-aware sessions: the offer's cleared kVAr per PTU and the Q-LMP (EUR/Mvarh) it is paid, as cleared.
    reactive_kvar: Sequence[Decimal] = ()
    reactive_prices: Sequence[Decimal] = ()


@dataclass(frozen=True)
class AgreementTerms:
    """An accepted availability agreement: capacity held during `window_ptus` PTUs of the period."""

    agreement: int
    esp: int
    dso: int
    capacity_kw: Decimal
    price_eur_per_mw_h: Decimal
    window_ptus: int


def _mwh(kw: Decimal) -> Decimal:
    return kw * PTU_HOURS / KW_PER_MW


def _pair(
    terms: ContractTerms, kind: str, exact: Decimal, quantity: Decimal, *, seller_sign: int
) -> list[Line]:
    amount = money(exact)
    return [
        Line(terms.seller, kind, seller_sign * amount, quantity, contract=terms.contract),
        Line(terms.buyer, kind, -seller_sign * amount, quantity, contract=terms.contract),
    ]


def contract_lines(terms: ContractTerms, *, fmo: int) -> list[Line]:
    """Statement lines of one contract for the seller, the buyer and the FMO (+ receives, − pays).

    Activation: each PTU pays price × the contracted energy when delivered within tolerance, else price × the
    delivered energy (≥ 0, ≤ contracted). Penalty, per PTU below tolerance: the penalty price (the product's
    penalty price, or penalty factor × contract price) × the deficiency, which is contracted − clamp(delivered, 0,
    contracted) under the capped rule and contracted − delivered (the whole deviation from the adjusted baseline,
    so it may exceed the contract) under the USEF rule; the seller pays it to the buyer. Availability contracts pay
    price × MW × 0.25 h per PTU whatever the activation. The platform fee (EUR/MWh of contracted energy) is charged
    to seller and buyer each and credited to the FMO. Reactive power (network-aware sessions) is paid as cleared,
    kVAr × Q-LMP × 0.25 h per PTU, by the buyer to the seller, in one "reactive" line: there is no reactive metering
    to verify it against (docs/network.md, "Paying reactive power").
    """
    contracted = [to_decimal(kw) for kw in terms.contracted_kw]
    prices = [to_decimal(price) for price in terms.prices]
    lines: list[Line] = []
    if terms.availability:
        exact = sum((_mwh(kw) * price for kw, price in zip(contracted, prices, strict=True)), ZERO)
        quantity = sum((_mwh(kw) for kw in contracted), ZERO)
        lines += _pair(terms, "availability", exact, quantity, seller_sign=1)
    else:
        delivered = [to_decimal(kw) for kw in terms.delivered_kw]
        paid, paid_mwh, penalty, deficiency_mwh = ZERO, ZERO, ZERO, ZERO
        for kw, price, done in zip(contracted, prices, delivered, strict=True):
            if kw <= 0:
                continue
            if within_tolerance(done, kw, terms.tolerance):
                energy = _mwh(kw)
            else:
                energy = _mwh(min(max(done, ZERO), kw))
                short = kw - done if terms.penalty_rule == USEF else kw - min(max(done, ZERO), kw)
                rate = (
                    terms.penalty_price if terms.penalty_price is not None else price * terms.penalty_factor
                )
                penalty += _mwh(short) * rate
                deficiency_mwh += _mwh(short)
            paid += energy * price
            paid_mwh += energy
        lines += _pair(terms, "activation", paid, paid_mwh, seller_sign=1)
        if money(penalty) != 0:
            lines += _pair(terms, "penalty", penalty, deficiency_mwh, seller_sign=-1)
    reactive = [
        (to_decimal(kvar), to_decimal(price))
        for kvar, price in zip(terms.reactive_kvar, terms.reactive_prices, strict=True)
    ]
    if reactive:
        exact = sum((_mwh(kvar) * price for kvar, price in reactive), ZERO)
        if money(exact) != 0:
            lines += _pair(
                terms, "reactive", exact, sum((_mwh(abs(kvar)) for kvar, _ in reactive), ZERO), seller_sign=1
            )
    energy_mwh = sum((_mwh(kw) for kw in contracted if kw > 0), ZERO)
    fee = money(energy_mwh * to_decimal(terms.fee_eur_per_mwh))
    if fee != 0:
        lines.append(Line(terms.seller, "fee", -fee, energy_mwh, contract=terms.contract))
        lines.append(Line(terms.buyer, "fee", -fee, energy_mwh, contract=terms.contract))
        lines.append(Line(fmo, "fee", fee + fee, 2 * energy_mwh, contract=terms.contract))
    return lines


def agreement_lines(terms: AgreementTerms) -> list[Line]:
    """The availability fee of an agreement for a period: capacity MW × window hours × EUR/MW/h, ESP + and DSO −."""
    quantity = to_decimal(terms.capacity_kw) / KW_PER_MW * PTU_HOURS * terms.window_ptus
    amount = money(quantity * to_decimal(terms.price_eur_per_mw_h))
    if quantity == 0:
        return []
    return [
        Line(terms.esp, "availability", amount, quantity, agreement=terms.agreement),
        Line(terms.dso, "availability", -amount, quantity, agreement=terms.agreement),
    ]


def totals(lines: Iterable[Line]) -> dict[int, Decimal]:
    """Net amount per organisation."""
    result: dict[int, Decimal] = {}
    for line in lines:
        result[line.organisation] = result.get(line.organisation, ZERO) + line.amount
    return result
