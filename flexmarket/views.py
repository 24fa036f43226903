"""The landing page, the health check, and error handlers that answer API clients in the API's format."""

from importlib import import_module

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults

from accounts.permissions import request_actor
from flexmarket import health
from flexmarket.api.errors import error_body, server_error_response

# Each app's dashboard.py has `panels(request, actor) -> list[dict(template=..., **context)]`.
DASHBOARD_MODULES = ["accounts.dashboard", "grid.dashboard", "trading.dashboard", "settlement.dashboard"]
API_PREFIX = "/api/"


@login_required
def home(request):
    actor = request_actor(request)
    panels = []
    if actor.organisation is not None and actor.organisation.is_approved:
        for module_name in DASHBOARD_MODULES:
            panels.extend(import_module(module_name).panels(request, actor))
    return render(request, "home.html", {"panels": panels})


def healthz(request):
    """200 when the database and the broker answer, else 503 naming what is down (for load balancers)."""
    checks = {"database": health.database_check(), "broker": health.broker_check()}
    healthy = all(check.ok for check in checks.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            **{name: check.detail if check.ok else "down" for name, check in checks.items()},
            "errors": {name: check.detail for name, check in checks.items() if not check.ok},
        },
        status=200 if healthy else 503,
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


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to perform this action."), status=403
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return server_error_response(request)
    return defaults.server_error(request)
