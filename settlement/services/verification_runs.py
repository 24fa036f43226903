"""Verification runs: queue contracts' verifications, compute them in batches under a lease, recover lost runs.

One run per contract (at most one pending), so every contract's verification is visible, failed or recovered on
its own (flexmarket/runs.py). The runs queued together (one meter upload, one safety-net pass) travel in one task
message per FLEXMARKET_VERIFICATION_BATCH_CONTRACTS runs, and a worker verifies them together with
`verifications_compute` (settlement/services/verification_batch.py). Every result that is new or changed is
audited.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_build, audit_record, audit_record_many
from flexmarket import runs
from settlement.models import DeliveryVerification, VerificationRun
from settlement.services.verification_batch import BatchReport, batch_size, verifications_compute
from trading.models import Contract

logger = logging.getLogger(__name__)

SAFETY_NET_DAYS = 7
AUDITED_FIELDS = ("state", "contracted_kwh", "delivered_kwh", "method", "inputs_hash")


class VerificationFailed(Exception):
    """A contract's verification raised; the message is the original error's."""


def verification_runs_request(
    *, contract_ids: Iterable[int], reason: str = VerificationRun.Reason.METER_DATA
) -> list[VerificationRun]:
    """Queue a verification run per contract, sent after commit in batches; a contract whose run is still pending
    joins it. Call it inside the transaction that wrote the new data, so the runs exist exactly when the data does.
    """
    from settlement.tasks import verification_runs_task

    wanted = sorted(set(contract_ids))
    if not wanted:
        return []
    waiting = set(
        VerificationRun.objects.filter(contract_id__in=wanted, state=runs.RunState.PENDING).values_list(
            "contract_id", flat=True
        )
    )
    new = [contract_id for contract_id in wanted if contract_id not in waiting]
    if not new:
        return []
    stamp = timezone.now()
    # A run another transaction queued meanwhile wins the one-pending-run rule; it will read this data too.
    VerificationRun.objects.bulk_create(
        [VerificationRun(contract_id=contract_id, reason=reason, created_at=stamp) for contract_id in new],
        ignore_conflicts=True,
    )
    created = list(
        VerificationRun.objects.filter(
            contract_id__in=new, state=runs.RunState.PENDING, reason=reason, created_at=stamp
        ).order_by("contract_id")
    )
    runs.run_enqueue_many_on_commit(
        VerificationRun, runs=created, task=verification_runs_task, chunk=batch_size()
    )
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


def verification_runs_execute(*, run_ids: list[int]) -> dict[str, int]:
    """Claim the runs and verify their contracts in one batch, in one transaction; finish each run with its
    contract's outcome, or failed with the error of its own contract. A database error fails every claimed run,
    writing nothing. Runs another attempt holds are left to it, then RunBusy is raised so that the task retries
    once their leases have expired (and takes them over if that attempt's worker was lost)."""
    claims = runs.run_claim_many(VerificationRun, pks=run_ids)
    report = _execute_claimed(claims.attempts)
    if claims.busy_for is not None:
        raise runs.RunBusy(claims.busy_for)
    return report


def _execute_claimed(claimed: dict[int, int]) -> dict[str, int]:
    if not claimed:
        return {"claimed": 0, "succeeded": 0, "failed": 0}
    contract_of = dict(VerificationRun.objects.filter(pk__in=claimed).values_list("pk", "contract_id"))
    failed: dict[int, str] = {}
    try:
        with transaction.atomic():
            report = verifications_compute(contract_ids=contract_of.values())
            _audit_results(report, {contract_id: pk for pk, contract_id in contract_of.items()})
            succeeded = {pk: claimed[pk] for pk, c in contract_of.items() if c not in report.failed}
            finished = runs.run_finish_many(
                VerificationRun,
                attempts=succeeded,
                fields={pk: {"outcome": report.states.get(contract_of[pk], "")} for pk in succeeded},
            )
            by_error: dict[str, dict[int, int]] = defaultdict(dict)
            for pk, contract_id in contract_of.items():
                if contract_id in report.failed:
                    by_error[report.failed[contract_id]][pk] = claimed[pk]
                    failed[pk] = report.failed[contract_id]
            for error, attempts in by_error.items():
                finished += runs.run_finish_many(
                    VerificationRun, attempts=attempts, state=runs.RunState.FAILED, error=error
                )
            if finished != len(claimed):
                raise runs.RunSuperseded
    except runs.RunSuperseded:
        logger.warning(
            "Verification runs %s were taken over; this batch's results are discarded", sorted(claimed)
        )
        return {"claimed": len(claimed), "succeeded": 0, "failed": 0}
    except Exception as error:  # every failure is recorded on the runs
        logger.exception("Verification batch of runs %s failed", sorted(claimed))
        failed = {pk: runs.error_text(error) for pk in claimed}
        if not runs.run_finish_many(
            VerificationRun, attempts=claimed, state=runs.RunState.FAILED, error=runs.error_text(error)
        ):
            failed = {}
    for run in VerificationRun.objects.select_related("contract").filter(pk__in=failed, state="failed"):
        _audit_failure(run)
    return {"claimed": len(claimed), "succeeded": len(claimed) - len(failed), "failed": len(failed)}


def verification_run_execute(*, run_id: int) -> VerificationRun | None:
    """Compute one queued verification under a lease (a batch of one); any failure is recorded and audited."""
    return runs.run_execute(
        VerificationRun, pk=run_id, work=_verify, expected=(VerificationFailed,), on_failed=_audit_failure
    )


def verification_runs_sweep() -> runs.SweepReport:
    """Re-send or fail verification runs that lost their worker or their message (beat, every minute)."""
    from settlement.tasks import verification_run_task

    return runs.run_sweep(VerificationRun, task=verification_run_task, on_failed=_audit_failure)


def _verify(run: VerificationRun) -> dict:
    report = verifications_compute(contract_ids=[run.contract_id])
    if run.contract_id in report.failed:
        raise VerificationFailed(report.failed[run.contract_id])
    _audit_results(report, {run.contract_id: run.pk})
    return {"outcome": report.states.get(run.contract_id, "")}


def _audit_results(report: BatchReport, run_of: dict[int, int]) -> None:
    """One audit event per result that is new or changed (in the fields that matter), written in one INSERT."""
    if not report.written:
        return
    events = []
    stored = (
        DeliveryVerification.objects.select_related("contract__seller")
        .filter(contract_id__in=report.written)
        .only("contract_id", *AUDITED_FIELDS, "contract__seller")
    )
    for verification in stored:
        before = report.written[verification.contract_id]
        after = {name: str(getattr(verification, name)) for name in AUDITED_FIELDS}
        if after == before:
            continue
        changed = [name for name in AUDITED_FIELDS if before is None or before[name] != after[name]]
        events.append(
            audit_build(
                actor=Actor(user=None, organisation=verification.contract.seller),
                action="verification.computed" if before is None else "verification.changed",
                target=verification,
                before=None if before is None else {name: before[name] for name in changed},
                after={name: after[name] for name in changed} | {"run": run_of.get(verification.contract_id)},
            )
        )
    audit_record_many(events)


def _audit_failure(run: VerificationRun) -> None:
    audit_record(
        actor=Actor(user=None, organisation=run.contract.seller),
        action="verification.failed",
        target=run,
        after={"contract": run.contract_id, "attempt": run.attempts, "error": run.error[:500]},
    )
