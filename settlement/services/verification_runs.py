"""Verification runs: queue a contract's verification, compute it under a lease, recover runs that lost a worker.

The computation itself is `verification_run` (settlement/services/verification.py); this module makes it a run
that cannot stay stuck (flexmarket/runs.py) and audits every result that is new or changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record
from flexmarket import runs
from settlement.models import DeliveryVerification, VerificationRun
from settlement.services.verification import verification_run
from trading.models import Contract

SAFETY_NET_DAYS = 7
AUDITED_FIELDS = ("state", "contracted_kwh", "delivered_kwh", "method", "inputs_hash")


def verification_runs_request(
    *, contract_ids: Iterable[int], reason: str = VerificationRun.Reason.METER_DATA
) -> list[VerificationRun]:
    """Queue a verification run per contract, sent after commit; a contract whose run is still pending joins it.

    Call it inside the transaction that wrote the new data, so the runs exist exactly when the data does.
    """
    from settlement.tasks import verification_run_task

    wanted = sorted(set(contract_ids))
    waiting = set(
        VerificationRun.objects.filter(contract_id__in=wanted, state=runs.RunState.PENDING).values_list(
            "contract_id", flat=True
        )
    )
    created = []
    for contract_id in wanted:
        if contract_id in waiting:
            continue
        try:
            with transaction.atomic():
                run = VerificationRun.objects.create(contract_id=contract_id, reason=reason)
        except IntegrityError:  # another transaction queued one meanwhile; it will read this data too
            continue
        runs.run_enqueue_on_commit(run, task=verification_run_task)
        created.append(run)
    return created


@transaction.atomic
def verification_runs_request_due(*, now: datetime | None = None) -> list[VerificationRun]:
    """Safety net (beat, hourly): queue runs for the payable (active or settled) contracts of the last 7 days
    whose result is missing or awaiting data."""
    from settlement.services.verification import VERIFIABLE_STATES

    now = now or timezone.now()
    due = Contract.objects.filter(
        state__in=VERIFIABLE_STATES, ptu_start__lt=now, ptu_start__gte=now - timedelta(days=SAFETY_NET_DAYS)
    ).exclude(
        verification__state__in=[DeliveryVerification.State.VERIFIED, DeliveryVerification.State.DISPUTED]
    )
    return verification_runs_request(
        contract_ids=due.values_list("pk", flat=True), reason=VerificationRun.Reason.SAFETY_NET
    )


def verification_run_execute(*, run_id: int) -> VerificationRun | None:
    """Compute one queued verification under a lease; any failure is recorded on the run and audited."""
    return runs.run_execute(VerificationRun, pk=run_id, work=_verify, on_failed=_audit_failure)


def verification_runs_sweep() -> runs.SweepReport:
    """Re-send or fail verification runs that lost their worker or their message (beat, every minute)."""
    from settlement.tasks import verification_run_task

    return runs.run_sweep(VerificationRun, task=verification_run_task, on_failed=_audit_failure)


def _summary(verification: DeliveryVerification | None) -> dict | None:
    if verification is None:
        return None
    return {name: str(getattr(verification, name)) for name in AUDITED_FIELDS}


def _verify(run: VerificationRun) -> dict:
    contract = Contract.objects.select_related("seller").get(pk=run.contract_id)
    before = _summary(DeliveryVerification.objects.filter(contract=contract).first())
    verification = verification_run(contract=contract)
    verification = DeliveryVerification.objects.get(pk=verification.pk)  # as stored (decimal places)
    after = _summary(verification)
    if after != before:
        changed = [name for name in AUDITED_FIELDS if before is None or before[name] != after[name]]
        audit_record(
            actor=Actor(user=None, organisation=contract.seller),
            action="verification.computed" if before is None else "verification.changed",
            target=verification,
            before=None if before is None else {name: before[name] for name in changed},
            after={name: after[name] for name in changed} | {"run": run.pk},
        )
    return {"outcome": verification.state}


def _audit_failure(run: VerificationRun) -> None:
    audit_record(
        actor=Actor(user=None, organisation=run.contract.seller),
        action="verification.failed",
        target=run,
        after={"contract": run.contract_id, "attempt": run.attempts, "error": run.error[:500]},
    )
