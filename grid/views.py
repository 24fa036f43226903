"""Grid pages: zone map and editor, imports, assets, prequalification, portfolios, networks and power flows."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import request_actor, role_required
from flexmarket import imports, ptu
from flexmarket.errors import DomainError, ValidationErrors
from flexmarket.localtime import clock_label
from flexmarket.tables import table_or_export
from grid import charts, selectors, services
from grid.forms import (
    AssetCsvForm,
    AssetForm,
    ChecklistForm,
    ForecastRunForm,
    ForecastUploadForm,
    NetworkModelForm,
    PortfolioForm,
    PowerFlowForm,
    PrequalificationForm,
    ZoneImportForm,
)
from grid.models import PrequalificationCheck
from grid.tables import (
    AssetFilter,
    AssetTable,
    ForecastRunFilter,
    ForecastRunTable,
    NetworkModelFilter,
    NetworkModelTable,
    PortfolioFilter,
    PortfolioTable,
    PrequalificationTable,
)


def map_settings() -> dict:
    """What every map needs: the tile server (empty: offline) and the offline base drawn when there are no tiles."""
    return {
        "tileUrl": settings.MAP_TILE_URL,
        "baseMapUrl": static("geo/base-map.geojson"),
        "attribution": settings.MAP_TILE_ATTRIBUTION,
        "center": list(settings.MAP_DEFAULT_CENTER),
        "zoom": settings.MAP_DEFAULT_ZOOM,
    }


def _form_error(form, error: DomainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@role_required()
def zone_map(request):
    actor = request_actor(request)
    zones = selectors.grid_locations_get_visible(actor=actor)
    context = {
        "zones_geojson": services.grid_locations_as_geojson(zones),
        "network_geojson": own_network_geojson(actor),
        "map_settings": map_settings(),
        "can_edit": actor.has_role(Role.DSO),
        "own_dso_id": actor.organisation.pk,
        "zones": zones,
    }
    return render(request, "grid/zone_map.html", context)


@role_required(Role.DSO)
def zone_import(request):
    form = ZoneImportForm(request.POST or None, request.FILES or None)
    row_errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if imports.runs_in_background(upload):
                job = imports.import_job_create(actor=request_actor(request), kind="zones", upload=upload)
                return redirect("import-job", pk=job.pk)
            data = services.geojson_upload_read(upload)
            zones = services.grid_locations_import_geojson(actor=request_actor(request), data=data)
        except ValidationErrors as error:
            row_errors = error.errors
            form.add_error(None, error.message)
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Imported {len(zones)} zone(s).")
            return redirect("grid:zone-map")
    return render(
        request,
        "grid/zone_import.html",
        {"form": form, "row_errors": row_errors},
        status=400 if form.errors else 200,
    )


@role_required()
def asset_list(request):
    """Assets on a map and in a table: filter, sort, page through, export what is shown (`?_export=`)."""
    actor = request_actor(request)
    zones = selectors.grid_locations_get_visible(actor=actor)
    found = AssetFilter(
        request.GET or None,
        queryset=selectors.assets_get_visible(actor=actor)
        .filter(archived_at__isnull=True)
        .select_related("owner", "grid_location"),
        zones=zones,
    )
    assets = found.qs
    # An ESP sees its own assets: the owner column would repeat its name on every row.
    table = AssetTable(assets, exclude=("owner",) if actor.has_role(Role.ESP) else ())
    exported = table_or_export(request, table, "assets")
    if exported is not None:
        return exported
    assets_geojson = services.assets_as_geojson(assets)
    return render(
        request,
        "grid/asset_list.html",
        {
            "table": table,
            "filter": found,
            "assets_geojson": assets_geojson,
            "zones_geojson": services.grid_locations_as_geojson(zones),
            "network_geojson": own_network_geojson(actor),
            "map_settings": map_settings(),
            "portfolios": selectors.portfolios_get_visible(actor=actor),
            "is_esp": actor.has_role(Role.ESP),
        },
    )


@role_required(Role.ESP)
def asset_register_view(request):
    actor = request_actor(request)
    form = AssetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            asset = services.asset_register(actor=actor, **form.cleaned_data)
        except DomainError as error:
            _form_error(form, error)
        else:
            where = (
                f"in zone {asset.grid_location.name}"
                if asset.grid_location
                else "outside every zone (it cannot trade)"
            )
            messages.success(request, f"{asset.name} registered {where}; it waits for prequalification.")
            return redirect("grid:asset-detail", pk=asset.pk)
    zones = selectors.grid_locations_get_visible(actor=actor)
    return render(
        request,
        "grid/asset_register.html",
        {
            "form": form,
            "zones_geojson": services.grid_locations_as_geojson(zones),
            "map_settings": map_settings(),
        },
        status=400 if form.errors else 200,
    )


@role_required(Role.ESP)
def asset_import(request):
    form = AssetCsvForm(request.POST or None, request.FILES or None)
    row_errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if imports.runs_in_background(upload):
                job = imports.import_job_create(actor=request_actor(request), kind="assets", upload=upload)
                return redirect("import-job", pk=job.pk)
            assets = services.assets_import_csv(actor=request_actor(request), file=upload.file)
        except ValidationErrors as error:
            row_errors = error.errors
            form.add_error(None, error.message)
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Registered {len(assets)} asset(s).")
            return redirect("grid:asset-list")
    return render(
        request,
        "grid/asset_import.html",
        {"form": form, "row_errors": row_errors},
        status=400 if form.errors else 200,
    )


@role_required()
def asset_detail(request, pk: int):
    actor = request_actor(request)
    asset = selectors.asset_get_visible(actor=actor, pk=pk)
    return render(
        request,
        "grid/asset_detail.html",
        {
            "asset": asset,
            "asset_point": [asset.latitude, asset.longitude],
            "zones_geojson": services.grid_locations_as_geojson(
                [asset.grid_location] if asset.grid_location else []
            ),
            "network_geojson": own_network_geojson(actor),
            "map_settings": map_settings(),
            "can_decide": asset.grid_location and asset.grid_location.dso_id == actor.organisation.pk,
            "decision_form": PrequalificationForm(),
            "checklist": selectors.asset_checklist(asset),
        },
    )


@role_required(Role.DSO)
@require_POST
def prequalification_checklist(request, pk: int):
    """The zone's DSO saves the asset's checklist (ticks and notes) and returns to the asset page."""
    actor = request_actor(request)
    asset = selectors.asset_get_prequalifiable(actor=actor, pk=pk)
    form = ChecklistForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "Checklist not saved: " + "; ".join(e for es in form.errors.values() for e in es)
        )
    else:
        try:
            services.asset_checklist_update(
                actor=actor, asset=asset, checked=form.cleaned_data["checked"], notes=form.notes()
            )
            messages.success(request, f"{asset.name}: checklist saved.")
        except DomainError as error:
            messages.error(request, f"{asset.name}: {error.message}")
    return redirect("grid:asset-detail", pk=asset.pk)


@role_required(Role.DSO)
def prequalification_queue(request):
    """Assets in the DSO's zones, pending first: filter, sort, export (a decision form per row)."""
    actor = request_actor(request)
    found = AssetFilter(
        request.GET or None,
        queryset=selectors.assets_get_prequalification_queue(actor=actor),
        zones=selectors.grid_locations_get_editable(actor=actor),
    )
    table = PrequalificationTable(
        found.qs, mandatory=len(PrequalificationCheck.MANDATORY), csrf_token=get_token(request)
    )
    exported = table_or_export(request, table, "prequalification")
    if exported is not None:
        return exported
    return render(request, "grid/prequalification.html", {"table": table, "filter": found})


@role_required(Role.DSO)
@require_POST
def prequalification_decide(request, pk: int):
    actor = request_actor(request)
    asset = selectors.asset_get_prequalifiable(actor=actor, pk=pk)
    form = PrequalificationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a decision.")
    else:
        try:
            asset = services.asset_prequalify(actor=actor, asset=asset, **form.cleaned_data)
            messages.success(request, f"{asset.name}: {asset.get_prequalification_display().lower()}.")
        except DomainError as error:
            messages.error(request, f"{asset.name}: {error.message}")
    return redirect(request.POST.get("next") or "grid:prequalification")


@role_required()
def portfolio_list(request):
    actor = request_actor(request)
    form = PortfolioForm(
        request.POST or None,
        assets=selectors.assets_get_owned(actor=actor).filter(prequalification="approved"),
    )
    if request.method == "POST" and form.is_valid():
        try:
            portfolio = services.portfolio_create(
                actor=actor, name=form.cleaned_data["name"], assets=list(form.cleaned_data["assets"])
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Portfolio {portfolio.name} created.")
            return redirect("grid:portfolio-list")
    found = PortfolioFilter(
        request.GET or None,
        queryset=selectors.portfolios_with_capabilities(actor=actor),
        zones=selectors.grid_locations_get_visible(actor=actor),
    )
    # An ESP sees its own portfolios: the owner column would repeat its name on every row.
    table = PortfolioTable(found.qs, exclude=("owner",) if actor.has_role(Role.ESP) else ())
    exported = table_or_export(request, table, "portfolios")
    if exported is not None:
        return exported
    return render(
        request,
        "grid/portfolio_list.html",
        {"table": table, "filter": found, "form": form, "is_esp": actor.has_role(Role.ESP)},
        status=400 if form.errors else 200,
    )


@role_required(Role.DSO)
def network_list(request):
    actor = request_actor(request)
    form = NetworkModelForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            load = services.network_model_load_request(
                actor=actor,
                name=form.cleaned_data["name"],
                example=form.cleaned_data["example"] or None,
                network_json=services.network_upload_read(upload) if upload else None,
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            return redirect("grid:network-load", pk=load.pk)
    found = NetworkModelFilter(
        request.GET or None, queryset=selectors.network_models_get_visible(actor=actor)
    )
    table = NetworkModelTable(found.qs)
    exported = table_or_export(request, table, "network-models")
    if exported is not None:
        return exported
    return render(
        request,
        "grid/network_list.html",
        {"table": table, "filter": found, "form": form},
        status=400 if form.errors else 200,
    )


@role_required(Role.DSO)
def network_load_detail(request, pk: int):
    """A queued network load: refreshes while a worker loads it, then opens the model or shows the error."""
    actor = request_actor(request)
    load = selectors.network_model_load_get_visible(actor=actor, pk=pk)
    if load.state == load.State.SUCCEEDED and load.network_model_id is not None:
        model = selectors.network_model_get_visible(actor=actor, pk=load.network_model_id)
        messages.success(request, f"{model} loaded: {model.bus_count} buses, {model.line_count} lines.")
        return redirect("grid:network-detail", pk=model.pk)
    return render(request, "grid/network_load.html", {"load": load})


@role_required(Role.DSO)
def network_detail(request, pk: int):
    actor = request_actor(request)
    model = selectors.network_model_get_visible(actor=actor, pk=pk)
    form = PowerFlowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.power_flow_run_request(actor=actor, network_model=model, **form.cleaned_data)
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.info(request, f"Power flow #{run.pk} queued.")
            return redirect("grid:power-flow-detail", pk=run.pk)
    mapping = selectors.bus_zone_mapping(network_model=model)
    return render(
        request,
        "grid/network_detail.html",
        {
            "model": model,
            "form": form,
            "runs": selectors.power_flow_runs_get_visible(actor=actor).filter(network_model=model)[:20],
            "mapped_buses": len(mapping),
            "mapped_zones": len(set(mapping.values())),
        },
    )


@role_required(Role.DSO)
def power_flow_detail(request, pk: int):
    actor = request_actor(request)
    run = selectors.power_flow_run_get_visible(actor=actor, pk=pk)
    run_status = (run.results or {}).get("zone_status", {})
    zones = selectors.grid_locations_get_editable(actor=actor).filter(pk__in=[int(k) for k in run_status])
    zones_geojson = services.grid_locations_as_geojson(zones)
    for feature in zones_geojson["features"]:
        feature["properties"]["status"] = run_status[str(feature["properties"]["id"])]
    return render(
        request,
        "grid/power_flow_detail.html",
        {
            "run": run,
            "chart": charts.power_flow_chart(run),
            "network_geojson": own_network_geojson(actor),
            "map_settings": map_settings(),
            "zones_geojson": zones_geojson,
        },
    )


def own_network_geojson(actor) -> dict | None:
    """A DSO's latest network model, coloured by the latest forecast's highest loading over the day."""
    if not actor.has_role(Role.DSO):
        return None
    model = selectors.network_models_get_visible(actor=actor).filter(dso=actor.organisation).first()
    if model is None:
        return None
    run = (
        selectors.forecast_runs_get_visible(actor=actor)
        .filter(network_model=model, state="succeeded")
        .order_by("-delivery_day", "-created_at")
        .first()
    )
    return selectors.network_as_geojson(network_model=model, run=run)


@role_required(Role.DSO)
def forecast_list(request, pk: int):
    """A network's congestion forecasts: request one for a day, upload the DSO's own forecast; the runs in a
    filterable, sortable table exported with `?_export=`."""
    actor = request_actor(request)
    model = selectors.network_model_get_visible(actor=actor, pk=pk)
    action = request.POST.get("action") if request.method == "POST" else None
    run_form = ForecastRunForm(request.POST if action == "run" else None)
    upload_form = ForecastUploadForm(
        request.POST if action == "upload" else None, request.FILES if action == "upload" else None
    )
    row_errors = []
    if action == "run" and run_form.is_valid():
        try:
            run = services.forecast_run_request(actor=actor, network_model=model, **run_form.cleaned_data)
        except DomainError as error:
            _form_error(run_form, error)
        else:
            messages.info(request, f"Forecast #{run.pk} queued.")
            return redirect("grid:forecast-detail", pk=run.pk)
    if action == "upload" and upload_form.is_valid():
        try:
            upload = services.forecast_upload_csv(
                actor=actor,
                network_model=model,
                delivery_day=upload_form.cleaned_data["delivery_day"],
                file=upload_form.cleaned_data["file"].file,
            )
        except ValidationErrors as error:
            row_errors = error.errors
            upload_form.add_error(None, error.message)
        except DomainError as error:
            _form_error(upload_form, error)
        else:
            messages.success(
                request, f"Forecast upload #{upload.pk}: {upload.row_count} rows for {upload.delivery_day}."
            )
            return redirect("grid:forecast-list", pk=model.pk)
    found = ForecastRunFilter(
        request.GET or None,
        queryset=selectors.forecast_runs_get_visible(actor=actor)
        .filter(network_model=model)
        .defer("results", "zone_states", "needs", "inputs"),
    )
    table = ForecastRunTable(found.qs)
    exported = table_or_export(request, table, f"forecasts-{model.pk}")
    if exported is not None:
        return exported
    return render(
        request,
        "grid/forecast_list.html",
        {
            "model": model,
            "run_form": run_form,
            "upload_form": upload_form,
            "row_errors": row_errors,
            "table": table,
            "filter": found,
            "uploads": selectors.forecast_uploads_get_visible(actor=actor).filter(network_model=model)[:10],
        },
        status=400 if run_form.errors or upload_form.errors else 200,
    )


@role_required(Role.DSO)
def forecast_detail(request, pk: int):
    """One forecast: network map for a PTU and the zone x PTU heat strip."""
    actor = request_actor(request)
    run = selectors.forecast_run_get_visible(actor=actor, pk=pk)
    context = {"run": run}
    if run.state == run.State.SUCCEEDED:
        local = ZoneInfo(settings.FLEXMARKET_GRID_TIME_ZONE)
        starts = [
            s.astimezone(local) for s in ptu.ptu_starts(run.delivery_day, settings.FLEXMARKET_GRID_TIME_ZONE)
        ]
        labels = [clock_label(s, local) for s in starts]
        zones = {
            z.pk: z
            for z in selectors.grid_locations_get_visible(actor=actor).filter(
                pk__in=[int(k) for k in run.zone_states]
            )
        }
        strip = [
            {"zone": zones[int(zone_id)], "cells": list(states)}
            for zone_id, states in sorted(run.zone_states.items(), key=lambda item: zones[int(item[0])].name)
            if int(zone_id) in zones
        ]
        worst = [max((int(row["cells"][n]) for row in strip), default=0) for n in range(run.ptu_count)]
        peak = max(
            range(run.ptu_count),
            key=lambda n: (worst[n], max(series[n] for series in run.results["line_loading_percent"])),
        )
        zones_geojson = services.grid_locations_as_geojson(list(zones.values()))
        context |= {
            "strip": strip,
            "hours": [(n, labels[n][:2]) for n, s in enumerate(starts) if s.minute == 0],
            "ptu_labels": labels,
            "selected_ptu": peak,
            "map_settings": map_settings(),
            "zones_geojson": zones_geojson,
            "network_geojson": selectors.network_as_geojson(
                network_model=run.network_model, run=run, ptu=peak
            ),
            "series": {
                "line_index": run.results["line_index"],
                "trafo_index": run.results["trafo_index"],
                "line_loading_percent": run.results["line_loading_percent"],
                "trafo_loading_percent": run.results["trafo_loading_percent"],
                "zone_states": run.zone_states,
                "ptu_labels": labels,
            },
        }
    return render(request, "grid/forecast_detail.html", context)


@role_required(Role.DSO)
def network_mapping(request, pk: int):
    """Check and edit which buses make up each zone and which bus each asset is connected to."""
    actor = request_actor(request)
    model = selectors.network_model_get_visible(actor=actor, pk=pk)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            if "zone" in request.POST:
                zone = selectors.grid_location_get_editable(actor=actor, pk=request.POST["zone"])
                text = request.POST.get("buses", "")
                try:
                    buses = [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
                except ValueError:
                    raise DomainError(
                        "mapping_invalid", "List bus numbers separated by commas.", field="buses"
                    )
                services.zone_buses_set(actor=actor, network_model=model, grid_location=zone, buses=buses)
                messages.success(request, f"{zone.name}: {len(buses)} bus(es) mapped.")
            elif "asset" in request.POST:
                asset = selectors.asset_get_prequalifiable(actor=actor, pk=request.POST["asset"])
                text = request.POST.get("bus_index", "").strip()
                if text and not text.lstrip("-").isdigit():
                    raise DomainError(
                        "mapping_invalid",
                        "Give a bus number, or leave it empty for the nearest bus.",
                        field="bus_index",
                    )
                services.asset_bus_set(
                    actor=actor, network_model=model, asset=asset, bus_index=int(text) if text else None
                )
                messages.success(
                    request, f"{asset.name}: bus {'set' if text else 'back to the nearest in its zone'}."
                )
            else:
                raise Http404
        except DomainError as error:
            errors[request.POST.get("zone") or request.POST.get("asset") or ""] = error.message
            messages.error(request, error.message)
        else:
            return redirect("grid:network-mapping", pk=model.pk)
    zone_rows, unmapped = selectors.zone_bus_rows(network_model=model)
    return render(
        request,
        "grid/network_mapping.html",
        {
            "model": model,
            "zone_rows": zone_rows,
            "unmapped": unmapped,
            "asset_rows": selectors.asset_bus_rows(network_model=model),
            "errors": errors,
            "map_settings": map_settings(),
            "network_geojson": selectors.network_as_geojson(network_model=model),
            "zones_geojson": services.grid_locations_as_geojson([row["zone"] for row in zone_rows]),
        },
        status=400 if errors else 200,
    )
