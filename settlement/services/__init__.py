"""Business actions of the settlement app, one module per capability; re-exported here so callers do not change.

- meter: meter data uploads
- prognoses: D-prognoses
- verification: delivery verification, disputes, baseline accuracy
- periods: settlement periods, statements and invoices
"""

from settlement.services.meter import METER_CSV_COLUMNS, meter_upload_csv, readings_submit
from settlement.services.periods import (
    period_adjust,
    period_approve,
    period_compute,
    period_create,
    period_lock,
    period_lock_blockers,
    period_pending_adjustment,
    period_reverify,
)
from settlement.services.prognoses import prognoses_import_csv, prognosis_submit
from settlement.services.verification import (
    ACCURACY_METHODS,
    accuracy_compute,
    dispute_open,
    dispute_reopen,
    dispute_resolve,
    verification_run,
    verifications_run_due,
)

__all__ = [
    "ACCURACY_METHODS",
    "METER_CSV_COLUMNS",
    "accuracy_compute",
    "dispute_open",
    "dispute_reopen",
    "dispute_resolve",
    "meter_upload_csv",
    "period_adjust",
    "period_approve",
    "period_compute",
    "period_create",
    "period_lock",
    "period_lock_blockers",
    "period_pending_adjustment",
    "period_reverify",
    "prognoses_import_csv",
    "prognosis_submit",
    "readings_submit",
    "verification_run",
    "verifications_run_due",
]
