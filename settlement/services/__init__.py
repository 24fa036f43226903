"""Business actions of the settlement app, one module per capability; re-exported here so callers do not change.

- meter: meter data uploads
- prognoses: D-prognoses
- verification: delivery verification, disputes, baseline accuracy
- verification_batch: delivery verification of many contracts at once (the path runs take)
- verification_runs: verification as leased runs (queued in batches, recovered, audited)
- periods: settlement periods, statements and invoices
- weather: zone temperatures for the temperature baseline
"""

from settlement.services.meter import (
    METER_CSV_COLUMNS,
    meter_upload_csv,
    readings_submit,
    readings_submit_background,
)
from settlement.services.periods import (
    PERIOD_STEPS,
    period_adjust,
    period_approve,
    period_compute,
    period_create,
    period_lock,
    period_lock_blockers,
    period_pending_adjustment,
    period_reverify,
    period_step_preview,
)
from settlement.services.prognoses import (
    prognoses_import_csv,
    prognosis_submit,
    prognosis_template_csv,
    ptu_labels,
)
from settlement.services.verification import (
    ACCURACY_METHODS,
    accuracy_compute,
    accuracy_compute_due,
    dispute_open,
    dispute_reopen,
    dispute_resolve,
    verification_run,
)
from settlement.services.verification_batch import verifications_compute
from settlement.services.verification_runs import (
    verification_run_execute,
    verification_runs_execute,
    verification_runs_request,
    verification_runs_request_due,
    verification_runs_sweep,
)
from settlement.services.weather import temperatures_import_csv, temperatures_submit

__all__ = [
    "ACCURACY_METHODS",
    "METER_CSV_COLUMNS",
    "accuracy_compute",
    "accuracy_compute_due",
    "dispute_open",
    "dispute_reopen",
    "dispute_resolve",
    "meter_upload_csv",
    "readings_submit_background",
    "period_adjust",
    "period_approve",
    "period_compute",
    "period_create",
    "period_lock",
    "period_lock_blockers",
    "period_pending_adjustment",
    "period_reverify",
    "period_step_preview",
    "PERIOD_STEPS",
    "prognoses_import_csv",
    "prognosis_submit",
    "prognosis_template_csv",
    "ptu_labels",
    "readings_submit",
    "verification_run",
    "verification_run_execute",
    "verification_runs_execute",
    "verification_runs_request",
    "verification_runs_request_due",
    "verification_runs_sweep",
    "temperatures_import_csv",
    "temperatures_submit",
    "verifications_compute",
]
