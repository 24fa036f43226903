"""Reads of platform records with visibility rules: an organisation sees its own import jobs, the FMO all."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.context import Actor
from flexmarket.models import ImportJob


def import_jobs_get_visible(*, actor: Actor) -> QuerySet[ImportJob]:
    if actor.organisation is None:
        return ImportJob.objects.none()
    qs = ImportJob.objects.select_related("owner")
    if actor.is_fmo and not actor.on_behalf:
        return qs
    return qs.filter(owner=actor.organisation)


def import_job_get_visible(*, actor: Actor, pk) -> ImportJob:
    job = import_jobs_get_visible(actor=actor).filter(pk=pk).first()
    if job is None:
        raise Http404
    return job
