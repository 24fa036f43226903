"""Background imports: files above FLEXMARKET_IMPORT_INLINE_MAX_BYTES run on a worker as an ImportJob.

Every import (assets, requests, offers, zones, meter readings, prognoses) keeps its own all-or-nothing service;
this module stores the upload, queues it, runs the service with a progress callback and records the outcome:
exact row and error counts with the first FLEXMARKET_IMPORT_ERRORS_LISTED errors. While a job runs, its
progress lives in the "imports" cache (Redis in production), because the import's own transaction is not
visible to other connections until it commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.context import Actor
from accounts.models import Role
from flexmarket.csvio import check_upload_size
from flexmarket.errors import DomainError, ValidationErrors
from flexmarket.models import ImportJob

logger = logging.getLogger("flexmarket.imports")


@dataclass(frozen=True)
class ImportKind:
    label: str
    runner: str  # dotted path of `run(*, actor, file, filename, progress) -> dict` in the owning app
    done_url: str  # where the uploader sees the imported objects
    roles: tuple[str, ...]  # who may upload it (checked before the file is stored; the service checks again)


KINDS = {
    "assets": ImportKind("assets", "grid.services.assets_import_job", "grid:asset-list", (Role.ESP,)),
    "zones": ImportKind("grid locations", "grid.services.zones_import_job", "grid:zone-map", (Role.DSO,)),
    "requests": ImportKind(
        "FlexRequests",
        "trading.services.imports.requests_import_job",
        "trading:my-requests",
        (Role.DSO, Role.TSO),
    ),
    "offers": ImportKind(
        "FlexOffers", "trading.services.imports.offers_import_job", "trading:my-offers", (Role.ESP,)
    ),
    "meter_readings": ImportKind(
        "meter readings",
        "settlement.services.meter.meter_import_job",
        "settlement:meter-upload",
        (Role.ESP, Role.DSO),
    ),
    "prognoses": ImportKind(
        "D-prognoses",
        "settlement.services.prognoses.prognoses_import_job",
        "settlement:prognoses",
        (Role.ESP,),
    ),
    "temperatures": ImportKind(
        "temperatures",
        "settlement.services.weather.temperatures_import_job",
        "settlement:temperatures",
        (Role.DSO, Role.FMO),
    ),
}


def runs_in_background(upload) -> bool:
    """Large files become jobs; small ones are imported in the request as before."""
    return (getattr(upload, "size", 0) or 0) > settings.FLEXMARKET_IMPORT_INLINE_MAX_BYTES


def _progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


class Progress:
    """The callback a running import calls with (rows done, errors so far); written at most once a second."""

    def __init__(self, job_id: int, *, every_seconds: float = 1.0):
        self.job_id = job_id
        self.every_seconds = every_seconds
        self.last = 0.0
        self.rows = self.errors = 0

    def __call__(self, rows: int, errors: int) -> None:
        self.rows, self.errors = rows, errors
        now = time.monotonic()
        if now - self.last >= self.every_seconds:
            self.last = now
            self.flush()

    def flush(self) -> None:
        caches["imports"].set(_progress_key(self.job_id), (self.rows, self.errors), timeout=24 * 3600)


def job_progress(job: ImportJob) -> tuple[int, int]:
    """(rows done, errors so far): live from the cache while the job runs, else as recorded."""
    if job.state == ImportJob.State.RUNNING:
        live = caches["imports"].get(_progress_key(job.pk))
        if live is not None:
            return live
    return job.rows_done, job.error_count


@transaction.atomic
def import_job_create(*, actor: Actor, kind: str, upload) -> ImportJob:
    """Store an upload and queue its import after commit; the answer is the job to watch."""
    if kind not in KINDS:
        raise DomainError("invalid_import", f"Unknown import kind {kind!r}.")
    if actor.organisation is None or not actor.has_role(*KINDS[kind].roles):
        raise DomainError(
            "role_required", f"Only {' or '.join(KINDS[kind].roles)}s import {KINDS[kind].label}."
        )
    check_upload_size(upload, "invalid_import")
    job = ImportJob(
        kind=kind,
        owner=actor.organisation,
        created_by=actor.user,
        operator=actor.operator,
        filename=(getattr(upload, "name", "") or "")[:200],
        size_bytes=getattr(upload, "size", 0) or 0,
    )
    job.file.save(f"{kind}.upload", upload, save=False)
    job.save()
    from flexmarket.tasks import import_job_run_task

    transaction.on_commit(lambda: import_job_run_task.delay(job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job once (claimed by a conditional update); any outcome is recorded on the job."""
    claimed = ImportJob.objects.filter(pk=job_id, state=ImportJob.State.PENDING).update(
        state=ImportJob.State.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.select_related("owner", "operator", "created_by").get(pk=job_id)
    if not claimed:
        return job
    actor = Actor(user=job.created_by, organisation=job.owner, operator=job.operator)
    progress = Progress(job.pk)
    run = import_string(KINDS[job.kind].runner)
    fields: dict = {"finished_at": None}
    try:
        with job.file.open("rb") as file:
            result = run(actor=actor, file=file, filename=job.filename, progress=progress)
    except ValidationErrors as error:
        fields = {
            "state": ImportJob.State.FAILED,
            "errors": error.errors,
            "error_count": error.extra.get("error_count", len(error.errors)),
            "message": error.message[:500],
        }
    except DomainError as error:
        fields = {
            "state": ImportJob.State.FAILED,
            "errors": [{"row": None, "field": error.field, "message": error.message}],
            "error_count": 1,
            "message": error.message[:500],
        }
    except Exception as error:  # recorded for the uploader and the FMO, never left "running"
        logger.exception("import job %s failed", job.pk)
        fields = {
            "state": ImportJob.State.FAILED,
            "error_count": 0,
            "message": f"The import failed unexpectedly ({type(error).__name__}); nothing was imported.",
        }
    else:
        fields = {"state": ImportJob.State.SUCCEEDED, "result": result, "error_count": 0}
        fields["message"] = f"Imported {result.get('count', 0):,} {KINDS[job.kind].label}."
    fields |= {"rows_done": progress.rows, "finished_at": timezone.now()}
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    caches["imports"].delete(_progress_key(job.pk))
    job.refresh_from_db()
    return job
