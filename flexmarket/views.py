"""The landing page: one dashboard composed of panels each app provides for the acting role."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from accounts.permissions import request_actor

# Each app's dashboard.py has `panels(request, actor) -> list[dict(template=..., **context)]`.
DASHBOARD_MODULES = ["accounts.dashboard", "grid.dashboard", "trading.dashboard", "settlement.dashboard"]


@login_required
def home(request):
    actor = request_actor(request)
    panels = []
    if actor.organisation is not None and actor.organisation.is_approved:
        for module_name in DASHBOARD_MODULES:
            panels.extend(import_module(module_name).panels(request, actor))
    return render(request, "home.html", {"panels": panels})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse(
        {"status": "ok", "database": connection.vendor, "broker": settings.CELERY_BROKER_URL.split(":")[0]}
    )


@login_required
def import_job_detail(request, pk: int):
    """A background import: state, rows done, exact error count and the first errors (refreshes while running)."""
    from flexmarket.imports import KINDS, job_progress
    from flexmarket.selectors import import_job_get_visible

    job = import_job_get_visible(actor=request_actor(request), pk=pk)
    rows_done, error_count = job_progress(job)
    return render(
        request,
        "imports/job_detail.html",
        {"job": job, "kind": KINDS[job.kind], "rows_done": rows_done, "error_count": error_count},
    )
