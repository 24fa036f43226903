"""Background import jobs: `GET /import-jobs/` and `/import-jobs/{id}/` show state, progress and errors."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.response import Response

from flexmarket import selectors
from flexmarket.api.viewsets import OrganisationScopedReadOnlyViewSet
from flexmarket.imports import job_progress
from flexmarket.models import ImportJob


class ImportJobSerializer(serializers.ModelSerializer):
    rows_done = serializers.SerializerMethodField()
    error_count = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "filename",
            "size_bytes",
            "state",
            "rows_done",
            "error_count",
            "errors",
            "message",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_rows_done(self, job) -> int:
        return job_progress(job)[0]

    def get_error_count(self, job) -> int:
        return job_progress(job)[1]


def job_accepted(job: ImportJob) -> Response:
    """202 Accepted with the job; `Location` is where its progress and outcome are read."""
    return Response(
        ImportJobSerializer(job).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/import-jobs/{job.pk}/"},
    )


class ImportJobViewSet(OrganisationScopedReadOnlyViewSet):
    """Large CSV/GeoJSON imports run as jobs: the import endpoints answer 202 with the job to watch here."""

    model = ImportJob
    serializer_class = ImportJobSerializer
    filterset_fields = ["state", "kind"]

    def get_visible_queryset(self, actor):
        return selectors.import_jobs_get_visible(actor=actor)
