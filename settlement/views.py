"""M&V and settlement pages: meter upload, delivery charts, statements and invoices, FMO console, accuracy."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import request_actor, role_required
from flexmarket import imports
from flexmarket.errors import DomainError, ValidationErrors
from flexmarket.tables import table_or_export
from settlement import charts, invoices, selectors, services
from settlement.forms import (
    DisputeForm,
    MeterUploadForm,
    PeriodForm,
    PeriodStepForm,
    ReopenForm,
    ResolveForm,
    TemperatureUploadForm,
)
from settlement.services.prognoses import kw_value
from settlement.tables import StatementFilter, StatementTable, VerificationFilter, VerificationTable


@role_required(Role.ESP, Role.DSO)
def meter_upload(request):
    actor = request_actor(request)
    form = MeterUploadForm(request.POST or None, request.FILES or None)
    row_errors, result = [], None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if imports.runs_in_background(upload):
                job = imports.import_job_create(actor=actor, kind="meter_readings", upload=upload)
                return redirect("import-job", pk=job.pk)
            # The page shows the result (with any gaps) in its own box: no flash message repeating it.
            result = services.meter_upload_csv(actor=actor, file=upload.file, filename=upload.name)
        except ValidationErrors as error:
            row_errors = error.errors
            form.add_error(None, error.message)
        except DomainError as error:
            form.add_error("file", error.message)
    uploads = selectors.uploads_get_visible(actor=actor)[:20]
    return render(
        request,
        "settlement/meter_upload.html",
        {"form": form, "row_errors": row_errors, "result": result, "uploads": uploads},
        status=400 if form.errors else 200,
    )


@role_required()
def verification_list(request):
    """Verified deliveries: filter, sort, page through, export what is shown (CSV, XLSX) with `?_export=`."""
    actor = request_actor(request)
    found = VerificationFilter(
        request.GET or None,
        queryset=selectors.verifications_get_visible(actor=actor).select_related("contract__session"),
    )
    table = VerificationTable(found.qs)
    exported = table_or_export(request, table, "verifications")
    if exported is not None:
        return exported
    return render(request, "settlement/verification_list.html", {"table": table, "filter": found})


@role_required()
def verification_detail(request, pk: int):
    actor = request_actor(request)
    verification = selectors.verification_get_visible(actor=actor, pk=pk)
    contract = verification.contract
    form = DisputeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.dispute_open(
                actor=actor, verification=verification, comment=form.cleaned_data["comment"]
            )
            messages.success(request, "Dispute opened; the market operator will resolve it.")
            return redirect("settlement:verification-detail", pk=pk)
        except DomainError as error:
            form.add_error("comment", error.message)
    return render(
        request,
        "settlement/verification_detail.html",
        {
            "verification": verification,
            "contract": contract,
            "form": form,
            "chart": charts.delivery_chart(verification, contract.session.delivery_start),
            "can_dispute": contract.seller_id == actor.organisation.pk,
            "disputes": verification.disputes.all(),
        },
    )


@role_required()
def statement_list(request):
    """Statements: filter (period, period state; the FMO also by organisation), sort, page, export (`?_export=`)."""
    actor = request_actor(request)
    found = StatementFilter(
        request.GET or None,
        queryset=selectors.statements_get_visible(actor=actor).select_related("invoice"),
        periods=selectors.periods_get_visible(actor=actor),
        organisations=selectors.statement_organisations(actor=actor),
    )
    table = StatementTable(found.qs)
    exported = table_or_export(request, table, "statements")
    if exported is not None:
        return exported
    totals = selectors.statement_totals_per_period(actor=actor)
    title = "Your settlement (EUR; + received, − paid) per period"
    return render(
        request,
        "settlement/statement_list.html",
        {
            "table": table,
            "filter": found,
            "chart": charts.money_over_time([(name, float(total)) for name, total in totals], title),
        },
    )


@role_required()
def statement_detail(request, pk: int):
    actor = request_actor(request)
    statement = selectors.statement_get_visible(actor=actor, pk=pk)
    download = request.GET.get("download")
    number = statement.invoice.number if hasattr(statement, "invoice") else f"draft-{statement.pk}"
    if download == "pdf":
        response = HttpResponse(invoices.invoice_pdf(statement), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{number}.pdf"'
        return response
    if download == "csv":
        response = HttpResponse(invoices.invoice_csv(statement), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{number}.csv"'
        return response
    return render(request, "settlement/statement_detail.html", {"statement": statement})


@role_required(Role.FMO)
def console(request):
    actor = request_actor(request)
    form = PeriodForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.period_create(actor=actor, **form.cleaned_data)
            return redirect("settlement:console")
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
    periods = list(selectors.periods_get_operated(actor=actor))
    for period in periods:
        # What stands between an approved period and its invoices, and what a locked one still owes.
        if period.state == period.State.APPROVED:
            period.blockers = services.period_lock_blockers(period=period)
        if period.state == period.State.LOCKED:
            period.pending = selectors.adjustment_rows(
                services.period_pending_adjustment(actor=actor, period=period)
            )
    return render(
        request,
        "settlement/console.html",
        {
            "periods": periods,
            "form": form,
            "disputes": selectors.disputes_open(),
            "resolved_disputes": selectors.disputes_resolved()[:20],
            "resolve_form": ResolveForm(),
        },
    )


PERIOD_STEPS = {
    "compute": (
        "Compute statements",
        lambda actor, period, form: services.period_compute(actor=actor, period=period),
    ),
    "approve": (
        "Approve statements",
        lambda actor, period, form: services.period_approve(actor=actor, period=period),
    ),
    "lock": (
        "Lock and invoice",
        lambda actor, period, form: services.period_lock(
            actor=actor, period=period, override_reason=form.cleaned_data["override_reason"]
        ),
    ),
    "adjust": (
        "Issue adjustment",
        lambda actor, period, form: services.period_adjust(actor=actor, period=period),
    ),
    "reverify": (
        "Re-verify contracts",
        lambda actor, period, form: services.period_reverify(
            actor=actor, period=period, reason=form.cleaned_data["reason"]
        ),
    ),
}


@role_required(Role.FMO)
def period_action(request, pk: int, step: str):
    """A settlement step in two moves: GET states what it will do (counts, amounts, period, what it refuses);
    the page's button posts it with `confirm`. A POST without `confirm` only shows the confirmation again."""
    actor = request_actor(request)
    period = selectors.period_get(actor=actor, pk=pk)
    if step not in PERIOD_STEPS:
        raise Http404
    label, run = PERIOD_STEPS[step]
    form = PeriodStepForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        if not form.cleaned_data["confirm"]:
            form.add_error(
                None, "Nothing was done: check what this step will do and confirm it on this page."
            )
        else:
            try:
                run(actor, period, form)
                messages.success(request, f"{period}: {step} done.")
                return redirect("settlement:console")
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
    return render(
        request,
        "settlement/period_confirm.html",
        {
            "period": period,
            "step": step,
            "label": label,
            "form": form,
            "preview": services.period_step_preview(actor=actor, period=period, step=step),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.FMO)
@require_POST
def dispute_resolve_view(request, pk: int):
    actor = request_actor(request)
    dispute = selectors.disputes_open().filter(pk=pk).first()
    form = ResolveForm(request.POST)
    if dispute is None or not form.is_valid():
        messages.error(request, "Give a resolution for an open dispute.")
        return redirect("settlement:console")
    try:
        services.dispute_resolve(
            actor=actor,
            dispute=dispute,
            uphold=form.cleaned_data["uphold"],
            resolution=form.cleaned_data["resolution"],
            accepted_delivered_kwh=form.cleaned_data["accepted_delivered_kwh"],
        )
        messages.success(request, "Dispute resolved.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("settlement:console")


@role_required(Role.FMO)
@require_POST
def dispute_reopen_view(request, pk: int):
    actor = request_actor(request)
    dispute = selectors.disputes_resolved().filter(pk=pk).first()
    form = ReopenForm(request.POST)
    if dispute is None or not form.is_valid():
        messages.error(request, "Give the reason for reopening a resolved dispute.")
        return redirect("settlement:console")
    try:
        services.dispute_reopen(actor=actor, dispute=dispute, reason=form.cleaned_data["reason"])
        messages.success(request, "Dispute reopened.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("settlement:console")


@role_required()
def accuracy(request):
    actor = request_actor(request)
    table: dict = defaultdict(dict)
    for row in selectors.accuracy_get_visible(actor=actor):
        table[row.asset][row.method] = row
    methods = list(services.ACCURACY_METHODS)
    rows = []
    for asset, scores in sorted(table.items(), key=lambda item: item[0].name):
        valid = {m: s for m, s in scores.items() if s.nmae is not None}
        best = min(valid, key=lambda m: valid[m].nmae) if valid else None
        rows.append({"asset": asset, "scores": [scores.get(m) for m in methods], "best": best})
    return render(request, "settlement/accuracy.html", {"rows": rows, "methods": methods})


@role_required(Role.DSO, Role.FMO)
def temperatures(request):
    """Upload outdoor temperatures for your zones (the FMO: any zone) for the temperature baseline."""
    actor = request_actor(request)
    form = TemperatureUploadForm(request.POST or None, request.FILES or None)
    row_errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if imports.runs_in_background(upload):
                job = imports.import_job_create(actor=actor, kind="temperatures", upload=upload)
                return redirect("import-job", pk=job.pk)
            result = services.temperatures_import_csv(actor=actor, file=upload.file)
            messages.success(
                request,
                f"{result['count']} temperatures checked: {result['created']} new, {result['updated']} changed.",
            )
            return redirect("settlement:temperatures")
        except ValidationErrors as error:
            row_errors = error.errors
            form.add_error(None, error.message)
        except DomainError as error:
            form.add_error("file", error.message)
    return render(
        request,
        "settlement/temperatures.html",
        {
            "form": form,
            "row_errors": row_errors,
            "coverage": selectors.temperature_coverage_get_visible(actor=actor),
            "zones": selectors.temperature_zones_get_writable(actor=actor),
        },
        status=400 if form.errors else 200,
    )


PROGNOSIS_TIME_ZONE = "Europe/Amsterdam"  # the zone prognosis_submit counts PTUs in


def _prognosis_day_form(actor, data):
    from grid.selectors import assets_get_owned
    from settlement.forms import PrognosisDayForm

    return PrognosisDayForm(data, assets=assets_get_owned(actor=actor))


@role_required(Role.ESP)
def prognosis_template(request):
    """The CSV template of an asset and delivery day: one row per PTU labelled in local time."""
    actor = request_actor(request)
    form = _prognosis_day_form(actor, request.GET)
    if not form.is_valid():
        messages.error(request, "Choose one of your assets and a delivery day for the template.")
        return redirect("settlement:prognoses")
    asset, day = form.cleaned_data["asset"], form.cleaned_data["delivery_day"]
    try:
        text = services.prognosis_template_csv(
            actor=actor, asset=asset, delivery_day=day, time_zone=PROGNOSIS_TIME_ZONE
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("settlement:prognoses")
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="prognosis-{asset.connection_ean}-{day}.csv"'
    return response


@role_required(Role.ESP)
def prognosis_editor(request):
    """A chart of the prognosis per PTU and one input per PTU bound to it; saving goes through prognosis_submit."""
    actor = request_actor(request)
    form = _prognosis_day_form(actor, request.POST if request.method == "POST" else request.GET or None)
    context = {"form": form, "rows": None}
    if not form.is_bound or not form.is_valid():
        return render(
            request, "settlement/prognosis_editor.html", context, status=400 if form.errors else 200
        )
    asset, day = form.cleaned_data["asset"], form.cleaned_data["delivery_day"]
    labels = services.ptu_labels(day, PROGNOSIS_TIME_ZONE)
    bad_ptus: list[int] = []
    if request.method == "POST":
        values = [request.POST.get(f"kw_{i}", "").strip() for i in range(1, len(labels) + 1)]
        try:
            services.prognosis_submit(
                actor=actor, asset=asset, delivery_day=day, values_kw=values, time_zone=PROGNOSIS_TIME_ZONE
            )
            messages.success(request, f"D-prognosis of {asset.name} for {day} saved.")
            return redirect(f"{request.path}?asset={asset.pk}&delivery_day={day}")
        except DomainError as error:
            form.add_error(None, error.message)
            bad_ptus = error.extra.get("ptus", [])
    else:
        saved = selectors.prognosis_values_get_owned(actor=actor, asset=asset, delivery_day=day)
        values = [f"{v:g}" for v in saved] if saved and len(saved) == len(labels) else [""] * len(labels)
    numbers = [_number_or_none(v) for v in values]  # the chart skips what is not (yet) a valid number
    context |= {
        "asset": asset,
        "day": day,
        "rows": [
            {"ptu": i + 1, "label": label, "utc": utc, "value": value, "bad": i + 1 in bad_ptus}
            for i, ((utc, label), value) in enumerate(zip(labels, values, strict=True))
        ],
        "chart": charts.prognosis_chart([label for _, label in labels], numbers, PROGNOSIS_TIME_ZONE),
    }
    return render(request, "settlement/prognosis_editor.html", context, status=400 if form.errors else 200)


def _number_or_none(text: str) -> float | None:
    try:
        return kw_value(text)
    except ValueError:
        return None


@role_required(Role.ESP)
def prognoses(request):
    from grid.selectors import assets_get_owned
    from settlement.forms import PrognosisCsvForm, PrognosisForm
    from settlement.selectors import prognoses_get_visible

    actor = request_actor(request)
    # Only a POST binds a form (to the one it came from): a GET shows both blank, without errors.
    posted = request.method == "POST"
    form = PrognosisForm(
        request.POST if posted and "values_kw" in request.POST else None, assets=assets_get_owned(actor=actor)
    )
    day_form = _prognosis_day_form(actor, None)
    day_form.auto_id = "pick_%s"
    csv_form = PrognosisCsvForm(
        request.POST if posted and "values_kw" not in request.POST else None,
        request.FILES if posted else None,
    )
    row_errors = []
    if request.method == "POST":
        try:
            if form.is_bound and form.is_valid():
                services.prognosis_submit(
                    actor=actor,
                    asset=form.cleaned_data["asset"],
                    delivery_day=form.cleaned_data["delivery_day"],
                    values_kw=form.cleaned_data["values_kw"].split(),
                )
                messages.success(request, "D-prognosis saved.")
                return redirect("settlement:prognoses")
            if csv_form.is_bound and csv_form.is_valid():
                upload = csv_form.cleaned_data["file"]
                if imports.runs_in_background(upload):
                    job = imports.import_job_create(actor=actor, kind="prognoses", upload=upload)
                    return redirect("import-job", pk=job.pk)
                saved = services.prognoses_import_csv(actor=actor, file=upload.file)
                messages.success(request, f"{len(saved)} D-prognoses saved.")
                return redirect("settlement:prognoses")
        except ValidationErrors as error:
            row_errors = error.errors
            csv_form.add_error(None, error.message)
        except DomainError as error:
            target = form if form.is_bound else csv_form
            target.add_error(error.field if error.field in target.fields else None, error.message)
    return render(
        request,
        "settlement/prognoses.html",
        {
            "form": form,
            "csv_form": csv_form,
            "day_form": day_form,
            "row_errors": row_errors,
            "prognoses": prognoses_get_visible(actor=actor)[:50],
        },
        status=400 if form.errors or csv_form.errors else 200,
    )
