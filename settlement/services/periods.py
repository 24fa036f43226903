"""Settlement periods: statements, approval, lock with invoices, re-verification and adjustments after a lock.

Amounts come from the pure `settlement.amounts` (Decimal, one rounding per line). A locked period is never
recomputed: corrections (meter data, dispute rulings, contracts verified late) become adjustment statements whose
lines keep their type (activation, penalty, availability, fee) and hold the difference to what was invoiced.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Notification
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from settlement import amounts
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
from settlement.services.verification_batch import verifications_compute
from trading.models import AvailabilityAgreement, Contract, Market, Product

PAYABLE_STATES = [Contract.State.ACTIVE, Contract.State.SETTLED]
QUANTITY = Decimal("0.0001")


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


# --- what a period owes -----------------------------------------------------------------------------


def _period_contracts(period: SettlementPeriod):
    return (
        Contract.objects.filter(
            state__in=PAYABLE_STATES,
            session__delivery_day__gte=period.start,
            session__delivery_day__lte=period.end,
        )
        .select_related("product", "session", "verification")
        .order_by("pk")
    )


def _latest_dispute(verification: DeliveryVerification) -> Dispute | None:
    return verification.disputes.order_by("-created_at", "-pk").first()


def _is_payable(contract: Contract) -> bool:
    """Verified, and no dispute open on it."""
    verification = getattr(contract, "verification", None)
    return verification is not None and verification.state == DeliveryVerification.State.VERIFIED


def _contract_terms(contract: Contract) -> amounts.ContractTerms:
    verification = contract.verification
    product = contract.product
    contracted = [amounts.to_decimal(kw) for kw in contract.quantities_kw]
    start = contract.session.delivery_start if contract.session else contract.ptu_start
    offset = int((contract.ptu_start - start) / ptus.PTU)
    day = verification.delivered_kw
    delivered = [
        amounts.to_decimal(day[offset + i])
        if 0 <= offset + i < len(day) and day[offset + i] is not None
        else amounts.ZERO
        for i in range(len(contracted))
    ]
    dispute = _latest_dispute(verification)
    if (
        dispute is not None
        and dispute.state == Dispute.State.UPHELD
        and dispute.accepted_delivered_kwh is not None
    ):
        # An upheld dispute fixes the delivered energy: spread it over the contracted PTUs pro rata.
        total_kwh = sum(contracted, amounts.ZERO) * amounts.PTU_HOURS
        share = dispute.accepted_delivered_kwh / total_kwh if total_kwh else amounts.ZERO
        delivered = [kw * share for kw in contracted]
    return amounts.ContractTerms(
        contract=contract.pk,
        seller=contract.seller_id,
        buyer=contract.buyer_id,
        contracted_kw=contracted,
        prices=[amounts.to_decimal(price) for price in contract.prices],
        delivered_kw=delivered,
        availability=product.kind == Product.Kind.AVAILABILITY,
        tolerance=product.delivery_tolerance,
        penalty_rule=product.penalty_rule,
        penalty_factor=product.penalty_factor,
        penalty_price=product.penalty_price,
        fee_eur_per_mwh=product.fee_eur_per_mwh,
        reactive_kvar=[amounts.to_decimal(kvar) for kvar in contract.reactive_kvar],
        reactive_prices=[amounts.to_decimal(price) for price in contract.reactive_prices],
    )


def _window_ptus(agreement: AvailabilityAgreement, first: date, last: date) -> int:
    """PTUs of the agreement's windows (local weekday in `days`, start ≤ HH:MM < end) from `first` to `last`."""
    tz = agreement.product.market.time_zone
    zone = ZoneInfo(tz)
    windows = agreement.windows
    try:
        rules = [
            ({int(day) for day in window["days"]}, str(window["start"]), str(window["end"]))
            for window in windows
        ]
    except (TypeError, KeyError, ValueError):
        raise DomainError(
            Code.INVALID_AGREEMENT,
            f"Availability agreement #{agreement.pk} has malformed windows; correct them before settling.",
        )
    count = 0
    day = first
    while day <= last:
        for start in ptus.ptu_starts(day, tz):
            local = start.astimezone(zone)
            clock = local.strftime("%H:%M")
            count += any(local.weekday() in days and begin <= clock < end for days, begin, end in rules)
        day = date.fromordinal(day.toordinal() + 1)
    return count


def _agreement_lines(period: SettlementPeriod) -> list[amounts.Line]:
    """The availability fee of every accepted agreement for the days of the period it covers."""
    lines = []
    for agreement in (
        AvailabilityAgreement.objects.filter(
            state__in=[AvailabilityAgreement.State.ACTIVE, AvailabilityAgreement.State.ENDED],
            valid_from__lte=period.end,
            valid_to__gte=period.start,
        )
        .select_related("product__market")
        .order_by("pk")
    ):
        first, last = max(agreement.valid_from, period.start), min(agreement.valid_to, period.end)
        lines += amounts.agreement_lines(
            amounts.AgreementTerms(
                agreement=agreement.pk,
                esp=agreement.esp_id,
                dso=agreement.dso_id,
                capacity_kw=agreement.capacity_kw,
                price_eur_per_mw_h=agreement.availability_price,
                window_ptus=_window_ptus(agreement, first, last),
            )
        )
    return lines


def _fresh_lines(period: SettlementPeriod, fmo: int) -> tuple[list[amounts.Line], list[Contract]]:
    """Lines of every payable contract and agreement of the period, and the contracts left out (unverified)."""
    lines, pending = [], []
    for contract in _period_contracts(period):
        if _is_payable(contract):
            lines += amounts.contract_lines(_contract_terms(contract), fmo=fmo)
        else:
            pending.append(contract)
    return lines + _agreement_lines(period), pending


def _describe(line, references: dict[int, str], prefix: str = "") -> str:
    if line.contract is not None:
        subject = references.get(line.contract, f"contract #{line.contract}")
    elif line.agreement is not None:
        subject = f"Availability agreement #{line.agreement}"
    else:
        subject = ""
    return f"{prefix}{subject} {line.kind}".strip()[:200]


def _write_statement(period, organisation_id, lines, kind, *, prefix: str = "") -> SettlementStatement:
    vat_rate = Decimal(settings.SETTLEMENT_VAT_RATE)
    statement = SettlementStatement.objects.create(
        period=period,
        organisation_id=organisation_id,
        kind=kind,
        currency=settings.SETTLEMENT_CURRENCY,
        vat_rate=vat_rate,
    )
    references = dict(
        Contract.objects.filter(pk__in={line.contract for line in lines if line.contract}).values_list(
            "pk", "reference"
        )
    )
    StatementLine.objects.bulk_create(
        StatementLine(
            statement=statement,
            contract_id=line.contract,
            agreement_id=line.agreement,
            kind=line.kind,
            description=_describe(line, references, prefix),
            quantity=line.quantity.quantize(QUANTITY),
            unit_price=line.unit_price.quantize(QUANTITY),
            amount_eur=line.amount,
        )
        for line in lines
    )
    statement.total_eur = sum((line.amount for line in lines), amounts.ZERO)
    statement.vat_eur = amounts.money(statement.total_eur * vat_rate)
    statement.save(update_fields=["total_eur", "vat_eur"])
    return statement


def _by_organisation(lines: list[amounts.Line]) -> dict[int, list[amounts.Line]]:
    grouped: dict[int, list[amounts.Line]] = defaultdict(list)
    for line in lines:
        grouped[line.organisation].append(line)
    return grouped


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
    lines, pending = _fresh_lines(period, actor.organisation.pk)
    grouped = _by_organisation(lines)
    for organisation_id, entries in sorted(grouped.items()):
        _write_statement(period, organisation_id, entries, SettlementStatement.Kind.REGULAR)
    period.state, period.computed_at, period.pending_contracts = (
        SettlementPeriod.State.COMPUTED,
        timezone.now(),
        len(pending),
    )
    period.save(update_fields=["state", "computed_at", "pending_contracts"])
    audit_record(
        actor=actor,
        action="settlement.compute",
        target=period,
        after={"statements": len(grouped), "pending": len(pending)},
    )
    return period


@transaction.atomic
def period_approve(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.COMPUTED:
        raise DomainError(Code.INVALID_STATE, "Compute the period before approving it.")
    _check_balanced(period)
    stale = period_lock_blockers(period=period)["stale"]
    if stale:
        raise DomainError(
            Code.STALE,
            "Recompute before approving: " + "; ".join(stale) + ".",
            extra={"stale": stale},
        )
    period.state, period.approved_by, period.approved_at = (
        SettlementPeriod.State.APPROVED,
        actor.user,
        timezone.now(),
    )
    period.save(update_fields=["state", "approved_by", "approved_at"])
    audit_record(actor=actor, action="settlement.approve", target=period)
    return period


def _check_balanced(period: SettlementPeriod, pending: dict[int, list[amounts.Line]] | None = None) -> None:
    """Every payment has a payer: the statements of a period (or a pending adjustment) sum to exactly 0.00 over the
    organisations (settlement.amounts). Anything else is a data fault no reason can override."""
    if pending is None:
        total = sum(period.statements.values_list("total_eur", flat=True), amounts.ZERO)
    else:
        total = sum((line.amount for lines in pending.values() for line in lines), amounts.ZERO)
    if total != 0:
        what = "The pending adjustment" if pending is not None else f"The statements of {period}"
        raise DomainError(
            Code.UNBALANCED,
            f"{what} sum to {total} instead of 0.00: every amount received must be paid by someone. "
            "Recompute; if it persists, the statements were edited outside settlement.",
            extra={"total_eur": str(total)},
        )


def _next_invoice_number(year: int) -> str:
    sequence, _ = InvoiceSequence.objects.select_for_update().get_or_create(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"FM-INV-{year}-{sequence.last:06d}"


def period_ends_at(period: SettlementPeriod) -> datetime:
    """When the last delivery day of the period is over in every market's time zone."""
    zones = set(Market.objects.values_list("time_zone", flat=True)) or {"Europe/Amsterdam"}
    return max(ptus.day_bounds_utc(period.end, tz)[1] for tz in zones)


def period_lock_blockers(*, period: SettlementPeriod, now: datetime | None = None) -> dict:
    """What stands between an approved period and its invoices.

    `override` lists what the FMO may override with a reason (the period is not over; contracts are unverified
    or disputed: they are carried into a later adjustment); `stale` lists what needs a recompute first (results
    changed after the statements were computed).
    """
    now = now or timezone.now()
    override, stale = [], []
    ends_at = period_ends_at(period)
    if now < ends_at:
        override.append(f"the period is not over until {ends_at.isoformat()}")
    contracts = list(_period_contracts(period))
    unverified = [c.reference for c in contracts if not _is_payable(c)]
    if unverified:
        override.append(
            f"{len(unverified)} contract(s) not verified or disputed: {', '.join(unverified[:10])}"
        )
    if period.computed_at is not None:
        changed = DeliveryVerification.objects.filter(
            contract__in=contracts, computed_at__gt=period.computed_at
        ).count()
        changed += (
            Dispute.objects.filter(verification__contract__in=contracts)
            .filter(Q(created_at__gt=period.computed_at) | Q(resolved_at__gt=period.computed_at))
            .count()
        )
        if changed:
            stale.append(f"{changed} verification result(s) or dispute(s) changed since computing")
    return {"override": override, "stale": stale, "carried": unverified}


@transaction.atomic
def period_lock(
    *, actor: Actor, period: SettlementPeriod, override_reason: str = "", now: datetime | None = None
) -> SettlementPeriod:
    """Lock an approved period and number its invoices (gapless per year); the contracts paid become settled.

    Refused while the period is not over or holds unverified or disputed contracts, unless the FMO overrides with
    a reason (audited; those contracts are carried into an adjustment once verified), and refused while results
    changed after the statements were computed (recompute first).
    """
    _require_fmo(actor)
    now = now or timezone.now()
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.APPROVED:
        raise DomainError(Code.INVALID_STATE, "Approve the period before locking it.")
    blockers = period_lock_blockers(period=period, now=now)
    if blockers["stale"]:
        raise DomainError(
            Code.LOCK_REFUSED,
            "Recompute and approve the period again: " + "; ".join(blockers["stale"]) + ".",
            extra={"stale": blockers["stale"]},
        )
    _check_balanced(period)
    reason = override_reason.strip()
    if blockers["override"] and not reason:
        raise DomainError(
            Code.LOCK_REFUSED,
            "Not locked: " + "; ".join(blockers["override"]) + ". Give a reason to lock anyway.",
            field="override_reason",
            extra={"blockers": blockers["override"]},
        )
    for statement in period.statements.filter(invoice__isnull=True).order_by("organisation__legal_name"):
        Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
        notify_organisation(
            category=Notification.Category.SETTLEMENT,
            organisation=statement.organisation,
            title=f"Settlement {period}: statement and invoice ready",
            link=f"/settlement/statements/{statement.pk}/",
            email=True,
        )
    paid = StatementLine.objects.filter(statement__period=period, contract__isnull=False).values("contract")
    Contract.objects.filter(pk__in=paid).update(state=Contract.State.SETTLED)
    period.state, period.locked_at = SettlementPeriod.State.LOCKED, now
    period.lock_override_reason = reason if blockers["override"] else ""
    period.save(update_fields=["state", "locked_at", "lock_override_reason"])
    audit_record(
        actor=actor,
        action="settlement.lock",
        target=period,
        after={"overridden": blockers["override"], "carried": blockers["carried"]},
        reason=period.lock_override_reason,
    )
    return period


# --- after the lock: re-verification and adjustments ------------------------------------------------


def period_pending_adjustment(*, actor: Actor, period: SettlementPeriod) -> dict[int, list[amounts.Line]]:
    """Per organisation, the typed lines an adjustment would issue now: for each contract that is verified now
    (a disputed or unverified one keeps what was invoiced: an adjustment never reverses a contract) and each
    agreement, what is owed now minus what all earlier statements of the period hold, per line type."""
    _require_fmo(actor)
    if period.state != SettlementPeriod.State.LOCKED:
        return {}
    fresh, pending = _fresh_lines(period, actor.organisation.pk)
    carried = {contract.pk for contract in pending}
    owed: dict[tuple, list] = defaultdict(lambda: [amounts.ZERO, amounts.ZERO])
    for line in fresh:
        key = (line.organisation, line.contract, line.agreement, line.kind)
        owed[key][0] += line.amount
        owed[key][1] += line.quantity
    for organisation_id, contract_id, agreement_id, kind, amount, quantity in StatementLine.objects.filter(
        statement__period=period
    ).values_list(
        "statement__organisation_id", "contract_id", "agreement_id", "kind", "amount_eur", "quantity"
    ):
        if contract_id in carried:
            continue
        key = (organisation_id, contract_id, agreement_id, kind)
        owed[key][0] -= amount
        owed[key][1] -= quantity
    result: dict[int, list[amounts.Line]] = defaultdict(list)
    for (organisation_id, contract_id, agreement_id, kind), (amount, quantity) in sorted(
        owed.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2] or 0, item[0][3])
    ):
        if amount != 0:
            result[organisation_id].append(
                amounts.Line(organisation_id, kind, amount, abs(quantity), contract_id, agreement_id)
            )
    return dict(result)


@transaction.atomic
def period_adjust(*, actor: Actor, period: SettlementPeriod) -> list[SettlementStatement]:
    """Issue the pending adjustment of a locked period: per organisation, an adjustment statement (typed lines,
    its own invoice); contracts paid for the first time become settled."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.LOCKED:
        raise DomainError(Code.INVALID_STATE, "Only locked periods are adjusted; recompute an unlocked one.")
    pending = period_pending_adjustment(actor=actor, period=period)
    _check_balanced(period, pending)
    now = timezone.now()
    adjustments = []
    for organisation_id, lines in sorted(pending.items()):
        statement = _write_statement(
            period, organisation_id, lines, SettlementStatement.Kind.ADJUSTMENT, prefix="Correction: "
        )
        Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
        notify_organisation(
            category=Notification.Category.SETTLEMENT,
            organisation=statement.organisation,
            title=f"Settlement {period}: adjustment statement {statement.total_eur:+} {statement.currency}",
            link=f"/settlement/statements/{statement.pk}/",
            email=True,
        )
        adjustments.append(statement)
    contracts = {line.contract for lines in pending.values() for line in lines if line.contract}
    Contract.objects.filter(pk__in=contracts, state=Contract.State.ACTIVE).update(
        state=Contract.State.SETTLED
    )
    audit_record(
        actor=actor,
        action="settlement.adjust",
        target=period,
        after={
            "adjustments": len(adjustments),
            "totals": {str(s.organisation_id): str(s.total_eur) for s in adjustments},
        },
    )
    return adjustments


SIGNED_OFF = (SettlementPeriod.State.APPROVED, SettlementPeriod.State.LOCKED)


@transaction.atomic
def period_reverify(
    *, actor: Actor, period: SettlementPeriod, reason: str = "", now: datetime | None = None
) -> int:
    """Re-run verification of every payable contract of the period (whatever the period's state) in batches;
    returns how many results changed. A contract with a dispute keeps its result until the FMO rules. If a
    contract's verification fails, nothing is written and the error names it.

    An approved or locked period's figures are signed off: re-verifying one needs a reason (audited), as changed
    results send it back to recomputation or into adjustment invoices."""
    _require_fmo(actor)
    reason = reason.strip()
    if period.state in SIGNED_OFF and not reason:
        raise DomainError(
            Code.REASON_REQUIRED,
            f"{period} is {period.get_state_display().lower()}: give a reason to re-verify it "
            "(changed results need a recompute or an adjustment invoice).",
            field="reason",
        )
    report = verifications_compute(contract_ids=[c.pk for c in _period_contracts(period)], now=now)
    if report.failed:
        contract_id, error = min(report.failed.items())
        reference = Contract.objects.filter(pk=contract_id).values_list("reference", flat=True).first()
        raise DomainError(Code.INVALID_STATE, f"Verification of {reference} failed: {error}")
    changed = len(report.written)
    audit_record(
        actor=actor, action="settlement.reverify", target=period, after={"changed": changed}, reason=reason
    )
    return changed


# --- what a step will do: the confirmation the console shows before posting ---------------------------------

PERIOD_STEPS = ("compute", "approve", "lock", "adjust", "reverify")


def _totals_by_organisation(statements) -> list[dict]:
    return [
        {"organisation_name": s.organisation.legal_name, "total_eur": s.total_eur}
        for s in statements.select_related("organisation").order_by("organisation__legal_name")
    ]


def period_step_preview(
    *, actor: Actor, period: SettlementPeriod, step: str, now: datetime | None = None
) -> dict:
    """What `step` would do to the period now, for a confirmation before it is posted: `facts` (label, value),
    per-organisation `rows`, `refusals` the service will refuse with whatever is typed, and whether a reason is
    needed (`reason_field`: the input the step reads). Nothing is written."""
    _require_fmo(actor)
    if step not in PERIOD_STEPS:
        raise DomainError(Code.INVALID_STATE, f"Unknown step {step!r}.")
    states = SettlementPeriod.State
    facts: list[tuple[str, object]] = [("Period", f"{period} ({period.start} – {period.end})")]
    facts.append(("State now", period.get_state_display()))
    preview = {"step": step, "rows": [], "refusals": [], "warnings": [], "reason_field": None, "facts": facts}
    contracts = list(_period_contracts(period))
    payable = [c for c in contracts if _is_payable(c)]
    if step == "compute":
        if period.state == states.LOCKED:
            preview["refusals"].append("the period is locked; corrections go into an adjustment statement")
        lines, pending = _fresh_lines(period, actor.organisation.pk)
        grouped = _by_organisation(lines)
        facts += [
            ("Statements replaced", period.statements.count()),
            ("Statements written", len(grouped)),
            ("Contracts paid", len(payable)),
            ("Contracts left out (not verified or disputed)", len(pending)),
            (
                "Money moved (sum of receipts)",
                sum((t for t in amounts.totals(lines).values() if t > 0), amounts.ZERO),
            ),
        ]
        if period.state == states.APPROVED:
            preview["warnings"].append("the approval is withdrawn: the period must be approved again")
    elif step == "approve":
        if period.state != states.COMPUTED:
            preview["refusals"].append("compute the period before approving it")
        total = sum(period.statements.values_list("total_eur", flat=True), amounts.ZERO)
        if total != 0:
            preview["refusals"].append(f"the statements sum to {total} instead of 0.00")
        preview["refusals"] += [
            f"recompute first: {b}" for b in period_lock_blockers(period=period, now=now)["stale"]
        ]
        preview["rows"] = _totals_by_organisation(period.statements)
        facts += [
            ("Statements approved", len(preview["rows"])),
            ("Contracts not verified or disputed (left out)", period.pending_contracts),
        ]
    elif step == "lock":
        if period.state != states.APPROVED:
            preview["refusals"].append("approve the period before locking it")
        blockers = period_lock_blockers(period=period, now=now)
        preview["refusals"] += [f"recompute first: {b}" for b in blockers["stale"]]
        total = sum(period.statements.values_list("total_eur", flat=True), amounts.ZERO)
        if total != 0:
            preview["refusals"].append(f"the statements sum to {total} instead of 0.00")
        preview["rows"] = _totals_by_organisation(period.statements.filter(invoice__isnull=True))
        settled = StatementLine.objects.filter(statement__period=period, contract__isnull=False)
        facts += [
            ("Invoices numbered and sent", len(preview["rows"])),
            ("Contracts that become settled", settled.values("contract").distinct().count()),
            ("Carried into a later adjustment", len(blockers["carried"])),
        ]
        if blockers["override"]:
            preview["reason_field"] = "override_reason"
            preview["warnings"] += [f"locking needs a reason: {b}" for b in blockers["override"]]
    elif step == "adjust":
        if period.state != states.LOCKED:
            preview["refusals"].append("only locked periods are adjusted")
        pending = period_pending_adjustment(actor=actor, period=period)
        if sum((line.amount for lines in pending.values() for line in lines), amounts.ZERO) != 0:
            preview["refusals"].append("the pending adjustment does not sum to 0.00")
        names = dict(period.statements.values_list("organisation_id", "organisation__legal_name"))
        preview["rows"] = [
            {
                "organisation_name": names.get(org, f"#{org}"),
                "total_eur": sum((x.amount for x in lines), amounts.ZERO),
            }
            for org, lines in sorted(pending.items())
        ]
        facts.append(("Adjustment statements and invoices issued", len(pending)))
        if not pending:
            preview["warnings"].append("nothing to adjust: no correction since the lock")
    else:  # reverify
        disputed = (
            Dispute.objects.filter(verification__contract__in=contracts, state=Dispute.State.OPEN)
            .values("verification__contract")
            .distinct()
            .count()
        )
        facts += [("Contracts verified again", len(contracts)), ("Kept as they are (open dispute)", disputed)]
        if period.state in SIGNED_OFF:
            preview["reason_field"] = "reason"
            preview["warnings"].append(
                "the period is signed off: changed results need a recompute and a new approval"
                if period.state == states.APPROVED
                else "the period is locked: changed results become an adjustment to issue"
            )
    return preview
