"""Platform records shared by every app: background import jobs and failures of periodic tasks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organisation


class ImportJob(models.Model):
    """A large CSV/GeoJSON import run by a worker, with progress the uploader can watch (issue 15.4).

    Small files are imported inline in the request; files above FLEXMARKET_IMPORT_INLINE_MAX_BYTES become a job.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Failed (nothing was imported)"

    kind = models.CharField(max_length=30, help_text="What is imported, e.g. assets, offers, meter_readings")
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    operator = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The FMO when its staff uploaded on behalf of the owner",
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    filename = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    rows_done = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first FLEXMARKET_IMPORT_ERRORS_LISTED")
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="What was created, e.g. {'count': 120}")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.kind})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)


class TaskFailure(models.Model):
    """One item a periodic task could not process: the task went on with every other item (issue 15.3)."""

    task = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=200, help_text="e.g. trading.availabilityagreement#12")
    target_id = models.BigIntegerField(null=True, blank=True)
    error = models.TextField()
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task}: {self.target}"
