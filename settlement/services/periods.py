"""Settlement periods, statements, approval, lock, invoices and adjustments."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Organisation, Role
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    DeliveryVerification,
    Dispute,
    Invoice,
    InvoiceSequence,
    SettlementPeriod,
    SettlementStatement,
    StatementLine,
)
from trading.models import Contract

CENT = Decimal("0.01")


# --- settlement -------------------------------------------------------------------------------------


def _require_fmo(actor: Actor) -> None:
    if not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator runs settlement.")


@transaction.atomic
def period_create(*, actor: Actor, name: str, start: date, end: date) -> SettlementPeriod:
    _require_fmo(actor)
    if end < start:
        raise DomainError(Code.INVALID_PERIOD, "The period ends before it starts.", field="end")
    if SettlementPeriod.objects.filter(start__lte=end, end__gte=start).exists():
        raise DomainError(Code.INVALID_PERIOD, "The period overlaps another period.", field="start")
    period = SettlementPeriod.objects.create(name=name.strip() or f"{start}–{end}", start=start, end=end)
    audit_record(
        actor=actor,
        action="settlement.period_create",
        target=period,
        after={"start": str(start), "end": str(end)},
    )
    return period


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def settlement_lines(contract: Contract, verification: DeliveryVerification) -> dict[int, list[dict]]:
    """Statement lines per organisation for one verified contract (+ receives, − pays).

    Activation: each PTU pays price × min(delivered, contracted) energy; a PTU delivered within the product's
    tolerance pays the full contracted energy. Under-delivery below tolerance costs the seller
    price × penalty factor × undelivered energy, paid to the buyer. Availability products pay contracted MW ×
    0.25 h × price per PTU regardless of activation. The platform fee (EUR/MWh of contracted energy) is charged to
    buyer and seller each and credited to the FMO.
    """
    product = contract.product
    tolerance = float(product.delivery_tolerance)
    contracted = np.array(contract.quantities_kw, dtype=float)
    prices = np.array([float(p) for p in contract.prices])
    n = contracted.size
    start_index = int(
        (contract.ptu_start - (contract.session.delivery_start if contract.session else contract.ptu_start))
        / ptus.PTU
    )
    delivered = np.nan_to_num(
        np.array([np.nan if v is None else v for v in verification.delivered_kw], dtype=float)
    )[start_index : start_index + n]
    lines: dict[int, list[dict]] = defaultdict(list)
    energy_mwh = contracted / 4 / 1000
    if product.kind == product.Kind.AVAILABILITY:
        payment = float(np.sum(contracted / 1000 * 0.25 * prices))
        quantity = float(np.sum(contracted / 1000 * 0.25))
        lines[contract.seller_id].append(
            {
                "kind": "availability",
                "quantity": quantity,
                "unit_price": payment / quantity if quantity else 0,
                "amount": payment,
            }
        )
        lines[contract.buyer_id].append(
            {
                "kind": "availability",
                "quantity": quantity,
                "unit_price": payment / quantity if quantity else 0,
                "amount": -payment,
            }
        )
    else:
        ratio = np.where(contracted > 0, delivered / np.where(contracted > 0, contracted, 1), 0)
        within = ratio >= 1 - tolerance
        paid_kw = np.where(within, contracted, np.clip(delivered, 0, contracted))
        paid_mwh = paid_kw / 4 / 1000
        payment = float(np.sum(paid_mwh * prices))
        undelivered_mwh = np.where(
            within | (contracted == 0), 0, (contracted - np.clip(delivered, 0, contracted)) / 4 / 1000
        )
        penalty = float(np.sum(undelivered_mwh * prices)) * float(product.penalty_factor)
        quantity = float(paid_mwh.sum())
        unit = payment / quantity if quantity else 0
        lines[contract.seller_id].append(
            {"kind": "activation", "quantity": quantity, "unit_price": unit, "amount": payment}
        )
        lines[contract.buyer_id].append(
            {"kind": "activation", "quantity": quantity, "unit_price": unit, "amount": -payment}
        )
        if penalty > 0:
            under = float(undelivered_mwh.sum())
            lines[contract.seller_id].append(
                {"kind": "penalty", "quantity": under, "unit_price": penalty / under, "amount": -penalty}
            )
            lines[contract.buyer_id].append(
                {"kind": "penalty", "quantity": under, "unit_price": penalty / under, "amount": penalty}
            )
    fee_rate = float(product.fee_eur_per_mwh)
    fee = float(energy_mwh.sum()) * fee_rate
    if fee > 0:
        for organisation_id in (contract.seller_id, contract.buyer_id):
            lines[organisation_id].append(
                {"kind": "fee", "quantity": float(energy_mwh.sum()), "unit_price": fee_rate, "amount": -fee}
            )
        fmo = (
            Organisation.objects.filter(role_grants__role=Role.FMO, status=Organisation.Status.APPROVED)
            .order_by("pk")
            .first()
        )
        if fmo is not None:
            lines[fmo.pk].append(
                {
                    "kind": "fee",
                    "quantity": 2 * float(energy_mwh.sum()),
                    "unit_price": fee_rate,
                    "amount": 2 * fee,
                }
            )
    return lines


def _period_contracts(period: SettlementPeriod):
    return Contract.objects.filter(
        state__in=[Contract.State.ACTIVE, Contract.State.SETTLED],
        session__delivery_day__gte=period.start,
        session__delivery_day__lte=period.end,
    ).select_related("product", "session", "verification")


def _compute_totals(period: SettlementPeriod) -> tuple[dict[int, list[tuple]], int]:
    by_org: dict[int, list[tuple]] = defaultdict(list)
    pending = 0
    for contract in _period_contracts(period):
        verification = getattr(contract, "verification", None)
        if verification is None or verification.state != DeliveryVerification.State.VERIFIED:
            pending += 1
            continue
        if verification.disputes.filter(
            state=Dispute.State.UPHELD, accepted_delivered_kwh__isnull=False
        ).exists():
            # An upheld dispute fixes the delivered energy: spread it over the contracted PTUs pro rata.
            scale = float(verification.delivered_kwh) / float(verification.contracted_kwh or 1)
            verification.delivered_kw = [c * scale for c in _contracted_day(contract, verification)]
        for organisation_id, lines in settlement_lines(contract, verification).items():
            for line in lines:
                by_org[organisation_id].append((contract, line))
    return by_org, pending


def _contracted_day(contract: Contract, verification: DeliveryVerification) -> list[float]:
    n = len(verification.delivered_kw)
    values = [0.0] * n
    start_index = (
        int((contract.ptu_start - contract.session.delivery_start) / ptus.PTU) if contract.session else 0
    )
    for i, kw in enumerate(contract.quantities_kw):
        if 0 <= start_index + i < n:
            values[start_index + i] = kw
    return values


def _write_statement(period, organisation_id, entries, kind) -> SettlementStatement:
    statement = SettlementStatement.objects.create(period=period, organisation_id=organisation_id, kind=kind)
    total = Decimal("0")
    for contract, line in entries:
        amount = _money(line["amount"])
        StatementLine.objects.create(
            statement=statement,
            contract=contract,
            kind=line["kind"],
            description=f"{contract.reference} {line['kind']}" if contract else line["kind"],
            quantity=Decimal(str(round(line["quantity"], 4))),
            unit_price=Decimal(str(round(line["unit_price"], 4))),
            amount_eur=amount,
        )
        total += amount
    statement.total_eur = total
    statement.save(update_fields=["total_eur"])
    return statement


@transaction.atomic
def period_compute(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    """(Re)compute the regular statements of an unlocked period from the current verifications."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state == SettlementPeriod.State.LOCKED:
        raise DomainError(
            Code.PERIOD_LOCKED, f"{period} is locked; corrections go into an adjustment statement."
        )
    SettlementStatement.objects.filter(period=period).delete()
    by_org, pending = _compute_totals(period)
    for organisation_id, entries in by_org.items():
        _write_statement(period, organisation_id, entries, SettlementStatement.Kind.REGULAR)
    period.state, period.computed_at, period.pending_contracts = (
        SettlementPeriod.State.COMPUTED,
        timezone.now(),
        pending,
    )
    period.save(update_fields=["state", "computed_at", "pending_contracts"])
    audit_record(
        actor=actor,
        action="settlement.compute",
        target=period,
        after={"statements": len(by_org), "pending": pending},
    )
    return period


@transaction.atomic
def period_approve(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.COMPUTED:
        raise DomainError(Code.INVALID_STATE, "Compute the period before approving it.")
    period.state, period.approved_by, period.approved_at = (
        SettlementPeriod.State.APPROVED,
        actor.user,
        timezone.now(),
    )
    period.save(update_fields=["state", "approved_by", "approved_at"])
    audit_record(actor=actor, action="settlement.approve", target=period)
    return period


def _next_invoice_number(year: int) -> str:
    sequence, _ = InvoiceSequence.objects.select_for_update().get_or_create(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"FM-INV-{year}-{sequence.last:06d}"


@transaction.atomic
def period_lock(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    """Lock an approved period and number its invoices (gapless per year); contracts become settled."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.APPROVED:
        raise DomainError(Code.INVALID_STATE, "Approve the period before locking it.")
    now = timezone.now()
    for statement in period.statements.filter(invoice__isnull=True).order_by("organisation__legal_name"):
        Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
        notify_organisation(
            organisation=statement.organisation,
            title=f"Settlement {period}: statement and invoice ready",
            link=f"/settlement/statements/{statement.pk}/",
            email=True,
        )
    _period_contracts(period).filter(verification__state=DeliveryVerification.State.VERIFIED).update(
        state=Contract.State.SETTLED
    )
    period.state, period.locked_at = SettlementPeriod.State.LOCKED, now
    period.save(update_fields=["state", "locked_at"])
    audit_record(actor=actor, action="settlement.lock", target=period)
    return period


@transaction.atomic
def period_adjust(*, actor: Actor, period: SettlementPeriod) -> list[SettlementStatement]:
    """Correct a locked period: per organisation, an adjustment statement with the difference to what was invoiced."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.LOCKED:
        raise DomainError(Code.INVALID_STATE, "Only locked periods are adjusted; recompute an unlocked one.")
    by_org, _ = _compute_totals(period)
    invoiced = defaultdict(Decimal)
    for statement in period.statements.all():
        invoiced[statement.organisation_id] += statement.total_eur
    adjustments = []
    now = timezone.now()
    for organisation_id in set(by_org) | set(invoiced):
        fresh = sum((_money(line["amount"]) for _, line in by_org.get(organisation_id, [])), Decimal("0"))
        difference = fresh - invoiced[organisation_id]
        if difference:
            statement = SettlementStatement.objects.create(
                period=period,
                organisation_id=organisation_id,
                kind=SettlementStatement.Kind.ADJUSTMENT,
                total_eur=difference,
            )
            StatementLine.objects.create(
                statement=statement,
                kind=StatementLine.Kind.ACTIVATION,
                description="Correction after updated meter data or disputes",
                quantity=Decimal("1"),
                unit_price=difference,
                amount_eur=difference,
            )
            Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
            adjustments.append(statement)
    audit_record(
        actor=actor, action="settlement.adjust", target=period, after={"adjustments": len(adjustments)}
    )
    return adjustments
