"""Reads for markets, sessions, orders, contracts and agreements, with visibility rules.

Own orders are private; ESPs additionally see open FlexRequests in zones where they have approved assets
(opportunities); the order book and prices are public but anonymised. Contracts are seen by buyer, seller and FMO.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.context import Actor
from grid.models import FlexAsset
from trading.models import (
    AvailabilityAgreement,
    ClearingReplay,
    ClearingRun,
    ClearingRunNetwork,
    Contract,
    FlexOffer,
    FlexRequest,
    Market,
    MarketSession,
    OrderState,
    Product,
)

OPEN_STATES = (OrderState.ACTIVE, OrderState.PARTIALLY_FILLED)
PTU = timedelta(minutes=15)


def _operator(actor: Actor) -> bool:
    return actor.is_fmo and not actor.on_behalf


def products_active() -> QuerySet[Product]:
    return Product.objects.select_related("market").filter(is_active=True, market__is_active=True)


def products_get_visible(*, actor: Actor) -> QuerySet[Product]:
    """The product catalogue every participant reads (issue 12 item 1): active products of active markets; the
    market operator also sees inactive ones."""
    if actor.organisation is None:
        return Product.objects.none()
    products = Product.objects.select_related("market").order_by("market__name", "name", "pk")
    return products if _operator(actor) else products.filter(is_active=True, market__is_active=True)


def markets_get_visible(*, actor: Actor) -> QuerySet[Market]:
    """Markets with their zones and products (ids), for the catalogue; inactive ones for the operator only."""
    if actor.organisation is None:
        return Market.objects.none()
    operator = _operator(actor)
    products = Product.objects.order_by("name", "pk")
    markets = Market.objects.prefetch_related(
        "grid_locations",
        Prefetch(
            "products",
            queryset=products if operator else products.filter(is_active=True),
            to_attr="catalogue",
        ),
    ).order_by("name", "pk")
    return markets if operator else markets.filter(is_active=True)


def sessions_get_visible(*, actor: Actor) -> QuerySet[MarketSession]:
    if actor.organisation is None:
        return MarketSession.objects.none()
    return MarketSession.objects.select_related("product", "product__market")


def session_get_visible(*, actor: Actor, pk) -> MarketSession:
    session = sessions_get_visible(actor=actor).filter(pk=pk).first()
    if session is None:
        raise Http404
    return session


def session_get(*, pk) -> MarketSession:
    """Any session by id (for system tasks; pages and the API use session_get_visible)."""
    return MarketSession.objects.select_related("product", "product__market").get(pk=pk)


def session_for_ptu(*, product: Product, ptu_start: datetime) -> MarketSession | None:
    return MarketSession.objects.filter(
        product=product, delivery_start__lte=ptu_start, delivery_end__gt=ptu_start
    ).first()


def requests_get_visible(*, actor: Actor) -> QuerySet[FlexRequest]:
    if actor.organisation is None:
        return FlexRequest.objects.none()
    qs = FlexRequest.objects.select_related("grid_location", "product", "owner", "session")
    return qs if _operator(actor) else qs.filter(owner=actor.organisation)


def request_get_visible(*, actor: Actor, pk) -> FlexRequest:
    order = requests_get_visible(actor=actor).filter(pk=pk).first()
    if order is None:
        raise Http404
    return order


def opportunities_get(*, actor: Actor) -> QuerySet[FlexRequest]:
    """Open requests in zones where the ESP has approved assets, before gate closure."""
    if actor.organisation is None:
        return FlexRequest.objects.none()
    zones = FlexAsset.objects.filter(
        owner=actor.organisation,
        prequalification=FlexAsset.Prequalification.APPROVED,
        archived_at__isnull=True,
    ).values("grid_location")
    return (
        FlexRequest.objects.select_related("grid_location", "product", "session", "owner")
        .filter(grid_location__in=zones, state__in=OPEN_STATES, session__gate_closure__gt=timezone.now())
        .order_by("-is_tso", "ptu_start")
    )


def opportunity_get(*, actor: Actor, pk) -> FlexRequest:
    order = opportunities_get(actor=actor).filter(pk=pk).first()
    if order is None:
        raise Http404
    return order


def offers_get_visible(*, actor: Actor) -> QuerySet[FlexOffer]:
    if actor.organisation is None:
        return FlexOffer.objects.none()
    qs = FlexOffer.objects.select_related("grid_location", "product", "asset", "portfolio", "session")
    return qs if _operator(actor) else qs.filter(owner=actor.organisation)


def offer_get_visible(*, actor: Actor, pk) -> FlexOffer:
    order = offers_get_visible(actor=actor).filter(pk=pk).first()
    if order is None:
        raise Http404
    return order


def contracts_get_visible(*, actor: Actor) -> QuerySet[Contract]:
    if actor.organisation is None:
        return Contract.objects.none()
    qs = Contract.objects.select_related(
        "buyer", "seller", "grid_location", "product", "offer__asset", "offer__portfolio", "session"
    )
    if _operator(actor):
        return qs
    return qs.filter(Q(buyer=actor.organisation) | Q(seller=actor.organisation))


def contract_get_visible(*, actor: Actor, pk) -> Contract:
    contract = contracts_get_visible(actor=actor).filter(pk=pk).first()
    if contract is None:
        raise Http404
    return contract


def activations_in_perimeter(*, actor: Actor) -> QuerySet[Contract]:
    """For a BRP: standing contracts (activations) whose asset, or a portfolio member, is in its balance perimeter."""
    if actor.organisation is None or not actor.has_role("BRP"):
        return Contract.objects.none()
    organisation = actor.organisation
    return (
        Contract.objects.filter(state__in=[Contract.State.ACTIVE, Contract.State.SETTLED])
        .filter(Q(offer__asset__brp=organisation) | Q(offer__portfolio__assets__brp=organisation))
        .select_related("buyer", "seller", "grid_location", "product", "offer__asset", "offer__portfolio")
        .distinct()
        .order_by("-ptu_start", "-pk")
    )


def activation_get_in_perimeter(*, actor: Actor, pk) -> Contract:
    contract = activations_in_perimeter(actor=actor).filter(pk=pk).first()
    if contract is None:
        raise Http404
    return contract


def perimeter_schedule(*, contract: Contract, brp_id: int) -> tuple[list[str], list[float]]:
    """(EANs, kW per PTU of the contract) for the part of a contract delivered by assets of one BRP.

    A portfolio contract is split over its members as the offer reserved them (`member_allocation`).
    """
    offer = contract.offer
    if offer.asset_id:
        inside = offer.asset.brp_id == brp_id
        return ([offer.asset.connection_ean] if inside else []), (
            list(contract.quantities_kw) if inside else [0.0] * len(contract.quantities_kw)
        )
    members = {a.pk: a for a in offer.portfolio.assets.all()}
    allocation = {int(k): v for k, v in offer.member_allocation.items()}
    quantities = offer.quantities_kw
    offset = round((contract.ptu_start - offer.ptu_start).total_seconds() / 900)
    eans, kw = [], [0.0] * len(contract.quantities_kw)
    for asset_id, share_kw in allocation.items():
        asset = members.get(asset_id)
        if asset is None or asset.brp_id != brp_id:
            continue
        eans.append(asset.connection_ean)
        for i, value in enumerate(contract.quantities_kw):
            j = offset + i
            if 0 <= j < len(quantities) and quantities[j]:
                kw[i] = round(kw[i] + value * share_kw[j] / quantities[j], 3)
    return sorted(eans), kw


def latest_cleared_day():
    """The latest delivery day with standing contracts (the open-data page's default)."""
    return (
        Contract.objects.filter(
            state__in=[Contract.State.ACTIVE, Contract.State.SETTLED], session__isnull=False
        )
        .order_by("-session__delivery_day")
        .values_list("session__delivery_day", flat=True)
        .first()
    )


def open_market_data(*, delivery_day, product_code: str | None = None) -> list[dict]:
    """Anonymised open data (FLEXGRID external users): per product, zone and PTU of a delivery day, the cleared
    kW, the number of trades and the volume-weighted, lowest and highest price. No party is named."""
    from collections import defaultdict
    from decimal import Decimal

    contracts = Contract.objects.filter(
        state__in=[Contract.State.ACTIVE, Contract.State.SETTLED], session__delivery_day=delivery_day
    ).select_related("grid_location", "product")
    if product_code:
        contracts = contracts.filter(product__code=product_code)
    cells: dict[tuple, dict] = defaultdict(
        lambda: {"kw": Decimal("0"), "value": Decimal("0"), "trades": 0, "prices": []}
    )
    zones = {}
    for contract in contracts:
        zones[contract.grid_location_id] = contract.grid_location
        for index, (kw, price) in enumerate(zip(contract.quantities_kw, contract.prices, strict=True)):
            if not kw:
                continue
            key = (contract.product.code, contract.grid_location_id, contract.ptu_start + index * PTU)
            cell = cells[key]
            amount, unit = Decimal(repr(kw)), Decimal(price)
            cell["kw"] += amount
            cell["value"] += amount * unit
            cell["trades"] += 1
            cell["prices"].append(unit)
    rows = []
    for (code, zone_id, moment), cell in sorted(
        cells.items(), key=lambda item: (item[0][0], zones[item[0][1]].code, item[0][2])
    ):
        rows.append(
            {
                "product": code,
                "grid_location": zones[zone_id].code,
                "grid_location_name": zones[zone_id].name,
                "ptu_start": moment,
                "cleared_kw": cell["kw"],
                "trades": cell["trades"],
                "average_price": (cell["value"] / cell["kw"]).quantize(Decimal("0.0001")),
                "lowest_price": min(cell["prices"]),
                "highest_price": max(cell["prices"]),
            }
        )
    return rows


def clearing_runs_for(*, session: MarketSession) -> QuerySet[ClearingRun]:
    return ClearingRun.objects.filter(session=session).order_by("-created_at")


def open_offer_volume(
    *, asset_id: int | None, portfolio_id: int | None, direction: str, exclude_id: int | None = None
) -> dict[datetime, float]:
    """kW already offered per PTU start on an asset or portfolio by open offers (for the capability check)."""
    from datetime import timedelta

    qs = FlexOffer.objects.filter(state__in=OPEN_STATES, direction=direction)
    qs = qs.filter(asset_id=asset_id) if asset_id else qs.filter(portfolio_id=portfolio_id)
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    volume: dict[datetime, float] = {}
    for start, remaining in qs.values_list("ptu_start", "remaining_kw"):
        for index, kw in enumerate(remaining):
            moment = start + timedelta(minutes=15 * index)
            volume[moment] = volume.get(moment, 0.0) + float(kw)
    return volume


def order_book(*, session: MarketSession, grid_location_id: int) -> dict:
    """Anonymised book of a zone in a session: per PTU, price levels with summed remaining kW per side."""

    def levels(model):
        book: dict[int, dict[float, float]] = {}
        rows = model.objects.filter(session=session, grid_location_id=grid_location_id, state__in=OPEN_STATES)
        for start, remaining, price in rows.values_list("ptu_start", "remaining_kw", "price"):
            offset = int((start - session.delivery_start).total_seconds() // 900)
            for index, kw in enumerate(remaining):
                if kw > 0:
                    book.setdefault(offset + index, {}).setdefault(float(price), 0.0)
                    book[offset + index][float(price)] += float(kw)
        return book

    return {"offers": levels(FlexOffer), "requests": levels(FlexRequest)}


def agreements_get_visible(*, actor: Actor) -> QuerySet[AvailabilityAgreement]:
    if actor.organisation is None:
        return AvailabilityAgreement.objects.none()
    qs = AvailabilityAgreement.objects.select_related(
        "dso", "esp", "grid_location", "product", "asset", "portfolio"
    )
    if _operator(actor):
        return qs
    return qs.filter(Q(dso=actor.organisation) | Q(esp=actor.organisation))


def agreement_get_visible(*, actor: Actor, pk) -> AvailabilityAgreement:
    agreement = agreements_get_visible(actor=actor).filter(pk=pk).first()
    if agreement is None:
        raise Http404
    return agreement


def replays_get_visible(*, actor: Actor) -> QuerySet[ClearingReplay]:
    """The market operator sees every replay; anyone else the replays their organisation asked for."""
    if actor.organisation is None:
        return ClearingReplay.objects.none()
    qs = ClearingReplay.objects.select_related("session__product", "base_run").prefetch_related(
        "removed_zones"
    )
    return qs if _operator(actor) else qs.filter(organisation=actor.organisation)


def replay_get_visible(*, actor: Actor, pk) -> ClearingReplay:
    replay = replays_get_visible(actor=actor).filter(pk=pk).first()
    if replay is None:
        raise Http404
    return replay


def session_network_get_visible(*, actor: Actor, session: MarketSession) -> ClearingRunNetwork:
    """The network result of a session's current clearing run: LMPs, flows and binding constraints are the DSO's
    grid data, so the market operator and the DSO whose network it is see it; anyone else gets 404."""
    qs = ClearingRunNetwork.objects.select_related("network_model", "forecast_run", "run").filter(
        run__session=session, run__is_current=True
    )
    if actor.organisation is None:
        raise Http404
    if not _operator(actor):
        qs = qs.filter(network_model__dso=actor.organisation)
    found = qs.first()
    if found is None:
        raise Http404
    return found


def grid_safety_visible(*, actor: Actor, run: ClearingRun | None) -> dict | None:
    """A plain auction's grid-safety check for the session page: the networks checked and the DSOs left unchecked
    (for everyone who sees the session), and the curtailed trades the actor is a party to (all for the market
    operator). None when the run has no check (network-aware or older runs)."""
    record = run.grid_safety if run is not None else None
    if not record:
        return None
    rows = record.get("curtailed", [])
    if not _operator(actor):
        mine = actor.organisation.pk if actor.organisation else None
        offers = set(
            FlexOffer.objects.filter(owner_id=mine, pk__in=[r["offer"] for r in rows]).values_list(
                "pk", flat=True
            )
        )
        requests = set(
            FlexRequest.objects.filter(owner_id=mine, pk__in=[r["request"] for r in rows]).values_list(
                "pk", flat=True
            )
        )
        rows = [r for r in rows if r["offer"] in offers or r["request"] in requests]
    return {
        "checked": record.get("checked", []),
        "unchecked": record.get("unchecked", []),
        "curtailed": [r | {"kw_kept": round(r["kw_cleared"] - r["kw_refused"], 3)} for r in rows],
        "curtailed_total": len(record.get("curtailed", [])),
    }
