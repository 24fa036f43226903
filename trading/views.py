"""Trading pages: sessions with results and order books, requests, opportunities, offers, contracts, FMO monitor."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import request_actor, role_required
from flexmarket import imports
from flexmarket.errors import DomainError, ValidationErrors
from flexmarket.localtime import clock_label, ptu_choices, ptu_value
from flexmarket.ptu import PTU
from flexmarket.tables import table_or_export
from grid.selectors import (
    assets_get_owned,
    grid_locations_get_editable,
    grid_locations_get_visible,
    network_as_geojson,
    network_branch_ratings,
)
from grid.views import map_settings
from trading import charts, exports, price_selectors, selectors, services
from trading.filters import (
    ActivationFilter,
    AgreementFilter,
    ContractFilter,
    OpportunityFilter,
    OrderFilter,
    SessionFilter,
)
from trading.forms import OfferForm, PricesForm, RequestForm
from trading.models import ClearingReplay, MarketSession, Product
from trading.services.replays import replay_zone_rows
from trading.tables import (
    ActivationTable,
    AgreementTable,
    ContractTable,
    OpportunityTable,
    OrderTable,
    SessionTable,
)


def _open_sessions(actor):
    return (
        selectors.sessions_get_visible(actor=actor)
        .filter(state=MarketSession.State.OPEN, gate_closure__gt=timezone.now())
        .order_by("delivery_day")
    )


def _form_error(form, error: DomainError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@role_required()
def product_catalogue(request):
    """Markets and their products with every order rule (issue 12 item 1; the API has the same)."""
    actor = request_actor(request)
    return render(request, "trading/products.html", {"markets": selectors.markets_get_visible(actor=actor)})


@role_required()
def session_list(request):
    """Market sessions: filter, sort, page through, export (CSV, XLSX) with `?_export=`."""
    actor = request_actor(request)
    sessions = SessionFilter(
        request.GET or None,
        queryset=selectors.sessions_get_visible(actor=actor),
        products=selectors.products_get_visible(actor=actor),
    )
    table = SessionTable(sessions.qs)
    exported = table_or_export(request, table, "sessions")
    if exported is not None:
        return exported
    return render(request, "trading/session_list.html", {"table": table, "filter": sessions})


def _int_param(value: str | None, *, default: int) -> int:
    """A whole-number query parameter; anything else (`?ptu=abc`) falls back to the default."""
    try:
        return int(value) if value else default
    except ValueError:
        return default


@role_required()
def session_detail(request, pk: int):
    actor = request_actor(request)
    session = selectors.session_get_visible(actor=actor, pk=pk)
    runs = list(selectors.clearing_runs_for(session=session))
    current = next((run for run in runs if run.is_current), None)
    zones = {z.pk: z.name for z in grid_locations_get_visible(actor=actor)}
    n_ptus = int((session.delivery_end - session.delivery_start).total_seconds() // 900)
    zone_id = _int_param(request.GET.get("zone"), default=next(iter(zones), 0) or 0)
    ptu_labels = [
        label
        for _, label in ptu_choices(
            session.delivery_start, session.delivery_end, ZoneInfo(session.product.market.time_zone)
        )
    ]
    evening = next((i for i, label in enumerate(ptu_labels) if label.startswith("17:00")), 0)
    stored = _network_stored(actor, session)
    if stored is not None:
        interesting = charts.network_interesting_ptu(stored)
        evening = evening if interesting is None else interesting
    ptu = min(max(_int_param(request.GET.get("ptu"), default=evening), 0), max(n_ptus - 1, 0))
    book = (
        selectors.order_book(session=session, grid_location_id=zone_id)
        if zone_id
        else {"offers": {}, "requests": {}}
    )
    return render(
        request,
        "trading/session_detail.html",
        {
            "session": session,
            "runs": runs,
            "current": current,
            "zones": zones,
            "zone_id": zone_id,
            "ptu": ptu,
            "ptu_label": ptu_labels[ptu] if ptu_labels else "",
            "ptu_labels": ptu_labels,
            "n_ptus": n_ptus,
            "heatmap": charts.price_heatmap(current, zones, ptu_labels),
            "book_chart": charts.order_book_curves(book, ptu),
            "is_operator": actor.is_fmo and not actor.on_behalf,
            "can_replay": _can_replay(actor, session, current),
            "replays": selectors.replays_get_visible(actor=actor).filter(session=session)[:10],
            "grid_safety": selectors.grid_safety_visible(actor=actor, run=current),
        }
        | _network_context(stored, ptu, ptu_labels, zones),
    )


def _network_stored(actor, session):
    """A network-aware session's stored clearing for those who may see it (the FMO, the network's DSO), or None."""
    if not session.product.network_aware:
        return None
    try:
        return selectors.session_network_get_visible(actor=actor, session=session)
    except Http404:
        return None


def _described_needs(blocks: list[dict], names: dict[int, str]) -> list[dict]:
    """Need blocks (grid.selectors.forecast_need_blocks) with their zone's name, energy, peak and length."""
    for block in blocks:
        block["zone"] = names.get(block["grid_location"], f"Zone {block['grid_location']}")
        block["energy_kwh"] = round(sum(block["quantities_kw"]) / 4, 3)
        block["peak_kw"] = max(block["quantities_kw"])
        block["ptu_count"] = len(block["quantities_kw"])
    return blocks


def _network_context(stored, ptu: int, ptu_labels: list[str], zones: dict[int, str]) -> dict:
    """The stored clearing's tables and heat strip, its D-LMP map on the network, and the needs per zone of the
    forecast it was linearised at (issue 11 item 8)."""
    if stored is None:
        return {"network": None}
    from grid.selectors import forecast_need_blocks

    model = stored.network_model
    needs = forecast_need_blocks(stored.forecast_run) if stored.forecast_run else []
    return {
        "network": stored,
        "network_needs": _described_needs(needs, zones),
        "network_view": charts.network_clearing(stored, ptu, ptu_labels),
        "map_settings": map_settings(),
        "network_geojson": network_as_geojson(network_model=model),
        "price_map": charts.network_price_map(
            stored, ptu_labels, network_branch_ratings(network_model=model)
        ),
    }


def _can_replay(actor, session, current) -> bool:
    return (
        current is not None
        and session.state in (MarketSession.State.CLEARED, MarketSession.State.SETTLED)
        and session.product.clearing_rule != Product.ClearingRule.CONTINUOUS
        and ((actor.is_fmo and not actor.on_behalf) or actor.has_role(Role.DSO))
    )


@role_required(Role.DSO)
@require_POST
def session_replay(request, pk: int):
    """Queue a what-if replay from the session page's form; the replay page shows it when it is done."""
    actor = request_actor(request)
    session = selectors.session_get_visible(actor=actor, pk=pk)
    try:
        network = request.POST.get("network") or ClearingReplay.Network.AS_CLEARED
        on_network = network == ClearingReplay.Network.ON or (
            network == ClearingReplay.Network.AS_CLEARED and session.product.network_aware
        )
        replay = services.replay_request(
            actor=actor,
            session=session,
            # The form always sends a pricing rule; on the network the price is the D-LMP.
            pricing_rule=None if on_network else request.POST.get("pricing_rule") or None,
            removed_zone_ids=[int(z) for z in request.POST.getlist("removed_zones") if z.isdigit()],
            price_cap=request.POST.get("price_cap") or None,
            network=network,
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("trading:session-detail", pk=pk)
    return redirect("trading:replay-detail", pk=replay.pk)


@role_required(Role.DSO)
def replay_detail(request, pk: int):
    actor = request_actor(request)
    replay = selectors.replay_get_visible(actor=actor, pk=pk)
    names = {z.pk: z.name for z in grid_locations_get_visible(actor=actor)}
    done = replay.state in ("succeeded", "failed")
    return render(
        request,
        "trading/replay_detail.html",
        {
            "replay": replay,
            "done": done,
            "zone_rows": replay_zone_rows(replay, names) if replay.result else [],
            "removed": [names.get(z.pk, z.name) for z in replay.removed_zones.all()],
            "price_chart": charts.replay_prices(replay, names),
        },
    )


@role_required(Role.DSO, Role.TSO)
def my_requests(request):
    actor = request_actor(request)
    zones = (
        grid_locations_get_editable(actor=actor)
        if not actor.has_role(Role.TSO)
        else grid_locations_get_visible(actor=actor)
    )
    form = RequestForm(request.POST or None, zones=zones, sessions=_open_sessions(actor))
    if request.method == "POST" and form.is_valid():
        try:
            order = services.request_submit(
                actor=actor, grid_location=form.cleaned_data["grid_location"], **form.service_kwargs()
            )
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Request #{order.pk} posted ({order.get_state_display().lower()}).")
            return redirect("trading:my-requests")
    orders, table = _orders_listed(
        request, selectors.requests_get_visible(actor=actor), kind="request", zones=zones
    )
    if isinstance(table, HttpResponse):
        return table
    return render(
        request,
        "trading/my_requests.html",
        {"form": form, "filter": orders, "table": table},
        status=400 if form.errors else 200,
    )


def _orders_listed(request, queryset, *, kind: str, zones):
    """The order list of My FlexRequests / My FlexOffers: (filter, table), or the export when `?_export=`."""
    orders = OrderFilter(
        request.GET or None, queryset=queryset.select_related("grid_location", "session"), zones=zones
    )
    table = OrderTable(orders.qs, kind=kind, csrf_token=get_token(request))
    exported = table_or_export(request, table, f"{kind}s")
    return orders, table if exported is None else exported


@role_required(Role.ESP)
def opportunities(request):
    """Open FlexRequests an ESP may answer: filter, sort, page through, export with `?_export=`."""
    actor = request_actor(request)
    requests = OpportunityFilter(
        request.GET or None,
        queryset=selectors.opportunities_get(actor=actor),
        zones=grid_locations_get_visible(actor=actor),
    )
    table = OpportunityTable(requests.qs)
    exported = table_or_export(request, table, "opportunities")
    if exported is not None:
        return exported
    return render(request, "trading/opportunities.html", {"table": table, "filter": requests})


@role_required(Role.ESP)
def my_offers(request):
    actor = request_actor(request)
    answering = (
        selectors.opportunity_get(actor=actor, pk=request.GET["request"])
        if request.GET.get("request")
        else None
    )
    initial = {}
    if answering is not None:
        initial = {
            "session": answering.session_id,
            "ptu_start": ptu_value(answering.ptu_start),
            "ptu_count": len(answering.quantities_kw),
            "quantity_kw": max(answering.remaining_kw),
            "price": answering.price,
        }
    assets = assets_get_owned(actor=actor).filter(prequalification="approved")
    if answering is not None:
        assets = assets.filter(grid_location=answering.grid_location)
        initial["asset"] = assets.first()
    form = OfferForm(request.POST or None, initial=initial, assets=assets, sessions=_open_sessions(actor))
    if request.method == "POST" and form.is_valid():
        answered = (
            selectors.opportunity_get(actor=actor, pk=request.POST["answers_request"])
            if request.POST.get("answers_request")
            else None
        )
        try:
            order = services.offer_submit(actor=actor, answers_request=answered, **form.service_kwargs())
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Offer #{order.pk} posted ({order.get_state_display().lower()}).")
            return redirect("trading:my-offers")
    orders, table = _orders_listed(
        request,
        selectors.offers_get_visible(actor=actor),
        kind="offer",
        zones=grid_locations_get_visible(actor=actor),
    )
    if isinstance(table, HttpResponse):
        return table
    return render(
        request,
        "trading/my_offers.html",
        {"form": form, "answering": answering, "filter": orders, "table": table},
        status=400 if form.errors else 200,
    )


@role_required()
@require_POST
def order_cancel_view(request, kind: str, pk: int):
    actor = request_actor(request)
    order = (
        selectors.offer_get_visible(actor=actor, pk=pk)
        if kind == "offer"
        else selectors.request_get_visible(actor=actor, pk=pk)
    )
    try:
        services.order_cancel(actor=actor, order=order)
        messages.success(request, f"{kind.title()} #{pk} revoked.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("trading:my-offers" if kind == "offer" else "trading:my-requests")


@role_required()
def contract_list(request):
    """Contracts: filter, sort, page through, export what is shown (CSV, XLSX) with `?_export=`."""
    actor = request_actor(request)
    contracts = ContractFilter(
        request.GET or None,
        queryset=selectors.contracts_get_visible(actor=actor),
        zones=grid_locations_get_visible(actor=actor),
    )
    table = ContractTable(contracts.qs)
    exported = table_or_export(request, table, "contracts")
    if exported is not None:
        return exported
    return render(request, "trading/contract_list.html", {"table": table, "filter": contracts})


@role_required()
def open_data(request):
    """Anonymised prices and volumes of a delivery day for every approved organisation (observers included)."""
    from datetime import date

    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        day = selectors.latest_cleared_day() or timezone.now().date()
    rows = selectors.open_market_data(delivery_day=day)
    return render(request, "trading/open_data.html", {"day": day, "rows": rows})


@role_required()
def prices(request):
    """Prices in sight for every participant (observers included): per product, zone and PTU the best bid and
    offer, the last and the indicative clearing price, the price history and the anonymised depth of the book."""
    products = list(price_selectors.price_products())
    product = next((p for p in products if str(p.pk) == request.GET.get("product")), None) or next(
        iter(products), None
    )
    if product is None:
        return render(request, "trading/prices.html", {"form": None})
    zones = list(price_selectors.price_zones(product=product))
    if not zones:
        return render(request, "trading/prices.html", {"form": None, "product": product})
    day = _date_param(request.GET.get("day"))
    if day is None or not price_selectors.price_day_allowed(day):
        day = price_selectors.price_default_day(product=product)
    starts = price_selectors.price_ptu_starts(product=product, delivery_day=day)
    local = ZoneInfo(product.market.time_zone)
    zone, first_ptu = zones[0], None
    if "grid_location" not in request.GET:
        zone, first_ptu = price_selectors.price_default_focus(product=product, delivery_day=day, zones=zones)
    initial = {
        "product": product.pk,
        "grid_location": zone.pk,
        "day": day.isoformat(),
        "ptu": starts.index(first_ptu)
        if first_ptu in starts
        else price_selectors.evening_index(product, starts),
    }
    form = PricesForm(
        {**initial, **request.GET.dict()},
        products=products,
        zones=zones,
        ptu_labels=[label for _, label in ptu_choices(starts[0], starts[-1] + PTU, local)],
    )
    context = {"form": form, "product": product, "prices": None}
    if form.is_valid():
        chosen = form.cleaned_data
        figures = price_selectors.market_prices(
            product=product,
            grid_location=chosen["grid_location"],
            delivery_day=chosen["day"],
            ptu_start=starts[chosen["ptu"]],
        )
        context |= {
            "prices": figures,
            "ptu_label": clock_label(figures.ptu_start, local),
            "history_chart": charts.price_history(figures.history, local, product.price_unit),
            "depth_chart": charts.depth(figures.bids, figures.offers, product.price_unit),
        }
    return render(request, "trading/prices.html", context)


def _date_param(value: str | None):
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


@role_required("BRP")
def activation_list(request):
    """A BRP's activations: contracts touching connections in its balance perimeter (no prices)."""
    actor = request_actor(request)
    activations = ActivationFilter(
        request.GET or None,
        queryset=selectors.activations_in_perimeter(actor=actor).prefetch_related("offer__portfolio__assets"),
        zones=grid_locations_get_visible(actor=actor),
    )
    table = ActivationTable(activations.qs, brp_id=actor.organisation.pk)
    exported = table_or_export(request, table, "activations")
    if exported is not None:
        return exported
    return render(request, "trading/activation_list.html", {"table": table, "filter": activations})


@role_required()
def contract_detail(request, pk: int):
    actor = request_actor(request)
    contract = selectors.contract_get_visible(actor=actor, pk=pk)
    download = request.GET.get("download")
    if download == "csv":
        response = HttpResponse(exports.schedule_csv(contract), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{contract.reference}-schedule.csv"'
        return response
    if download == "json":
        response = JsonResponse(exports.schedule_json(contract))
        response["Content-Disposition"] = f'attachment; filename="{contract.reference}-schedule.json"'
        return response
    return render(
        request,
        "trading/contract_detail.html",
        {
            "contract": contract,
            "rows": [
                row
                | {
                    "start": datetime.fromisoformat(row["ptu_start"]),
                    "end": datetime.fromisoformat(row["ptu_end"]),
                }
                for row in exports.schedule_rows(contract)
            ],
        },
    )


@role_required(Role.FMO)
def monitor(request):
    actor = request_actor(request)
    sessions = selectors.sessions_get_visible(actor=actor).order_by("-delivery_day")[:50]
    runs = []
    for session in sessions:
        runs.extend(selectors.clearing_runs_for(session=session)[:3])
    return render(request, "trading/monitor.html", {"sessions": sessions, "runs": runs[:50]})


@role_required(Role.FMO)
@require_POST
def session_rerun(request, pk: int):
    actor = request_actor(request)
    session = selectors.session_get_visible(actor=actor, pk=pk)
    try:
        run = services.session_clear(
            session=session, actor=actor, rerun=session.state == MarketSession.State.CLEARED
        )
        messages.success(request, f"Clearing run #{run.pk}: {run.get_state_display().lower()}.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("trading:session-detail", pk=pk)


@role_required(Role.DSO, Role.TSO, Role.ESP)
def orders_import(request, kind: str):
    from trading.forms import OrderCsvForm

    actor = request_actor(request)
    if (
        (kind == "offer" and not actor.has_role(Role.ESP))
        or (kind == "request" and not actor.has_role(Role.DSO, Role.TSO))
        or kind not in ("offer", "request")
    ):
        raise Http404
    form = OrderCsvForm(request.POST or None, request.FILES or None)
    row_errors = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if imports.runs_in_background(upload):
                job = imports.import_job_create(actor=actor, kind=f"{kind}s", upload=upload)
                return redirect("import-job", pk=job.pk)
            orders = services.orders_import_csv(actor=actor, kind=kind, file=upload.file)
        except ValidationErrors as error:
            row_errors = error.errors
            form.add_error(None, error.message)
        except DomainError as error:
            _form_error(form, error)
        else:
            messages.success(request, f"Posted {len(orders)} {kind}(s).")
            return redirect("trading:my-offers" if kind == "offer" else "trading:my-requests")
    columns = services.OFFER_CSV_COLUMNS if kind == "offer" else services.ORDER_CSV_COLUMNS
    return render(
        request,
        "trading/orders_import.html",
        {"form": form, "row_errors": row_errors, "kind": kind, "columns": ",".join(columns)},
        status=400 if form.errors else 200,
    )


@role_required(Role.DSO, Role.ESP)
def agreement_list(request):
    from accounts.selectors import organisations_with_roles
    from grid.selectors import assets_get_prequalification_queue
    from trading.forms import AgreementForm

    actor = request_actor(request)
    form = None
    if actor.has_role(Role.DSO):
        form = AgreementForm(
            request.POST or None,
            esps=organisations_with_roles().filter(role_grants__role=Role.ESP, status="approved"),
            assets=assets_get_prequalification_queue(actor=actor).filter(prequalification="approved"),
            products=selectors.products_active(),
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.agreement_propose(actor=actor, **form.service_kwargs())
            except DomainError as error:
                _form_error(form, error)
            else:
                messages.success(request, "Agreement proposed to the ESP.")
                return redirect("trading:agreements")
    agreements = AgreementFilter(
        request.GET or None,
        queryset=selectors.agreements_get_visible(actor=actor),
        zones=grid_locations_get_visible(actor=actor),
        products=selectors.products_get_visible(actor=actor),
    )
    table = AgreementTable(
        agreements.qs,
        answering_esp_id=actor.organisation.pk if actor.has_role(Role.ESP) else None,
        csrf_token=get_token(request),
    )
    exported = table_or_export(request, table, "agreements")
    if exported is not None:
        return exported
    return render(
        request,
        "trading/agreements.html",
        {"table": table, "filter": agreements, "form": form},
        status=400 if form is not None and form.errors else 200,
    )


@role_required(Role.ESP)
@require_POST
def agreement_answer(request, pk: int):
    actor = request_actor(request)
    agreement = selectors.agreement_get_visible(actor=actor, pk=pk)
    try:
        services.agreement_respond(
            actor=actor, agreement=agreement, accept=request.POST.get("answer") == "accept"
        )
        messages.success(request, "Answer recorded.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("trading:agreements")


@role_required(Role.DSO)
def forecast_needs(request, pk: int):
    """A forecast's needs per zone and block of PTUs; the DSO picks a product and price limit and posts them."""
    from grid.selectors import forecast_need_blocks, forecast_run_get_visible
    from trading.services.needs import requests_from_needs

    actor = request_actor(request)
    run = forecast_run_get_visible(actor=actor, pk=pk)
    blocks = _described_needs(
        forecast_need_blocks(run), {z.pk: z.name for z in grid_locations_get_visible(actor=actor)}
    )
    products = [p for p in selectors.products_active() if p.clearing_rule != Product.ClearingRule.CONTINUOUS]
    error = None
    if request.method == "POST":
        product = next((p for p in products if str(p.pk) == request.POST.get("product")), None)
        zones = [int(z) for z in request.POST.getlist("zones") if z.isdigit()]
        try:
            if product is None:
                raise DomainError("invalid_state", "Choose a product.", field="product")
            posted = requests_from_needs(
                actor=actor,
                forecast_run=run,
                product=product,
                price=request.POST.get("price", ""),
                grid_location_ids=zones,
            )
        except DomainError as failure:
            error = failure.message
        else:
            messages.success(request, f"{len(posted)} FlexRequest(s) posted from forecast #{run.pk}.")
            return redirect("trading:my-requests")
    return render(
        request,
        "trading/forecast_needs.html",
        {"run": run, "blocks": blocks, "products": products, "error": error, "post": request.POST},
        status=400 if error else 200,
    )
