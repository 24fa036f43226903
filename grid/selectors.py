"""Reads for grid locations, network models, power-flow runs, assets and portfolios, with visibility rules.

Zone outlines and status are public to every approved participant; assets are seen by their owner, by the
DSO of the zone they are in, and by the FMO; network models only by their DSO and the FMO.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.context import Actor
from accounts.models import Role
from flexmarket import ptu as ptus
from grid.geometry import ZoneShape
from grid.models import (
    AssetBusMapping,
    FlexAsset,
    ForecastRun,
    ForecastUpload,
    GridLocation,
    NetworkModel,
    NetworkModelLoad,
    Portfolio,
    PowerFlowRun,
    PrequalificationCheck,
    ZoneBusMapping,
)


def _is_operator(actor: Actor) -> bool:
    return actor.is_fmo and not actor.on_behalf


def grid_locations_get_visible(*, actor: Actor, include_archived: bool = False) -> QuerySet[GridLocation]:
    if actor.organisation is None:
        return GridLocation.objects.none()
    qs = GridLocation.objects.select_related("dso")
    return qs if include_archived else qs.filter(archived_at__isnull=True)


def grid_location_get_visible(*, actor: Actor, pk) -> GridLocation:
    zone = grid_locations_get_visible(actor=actor).filter(pk=pk).first()
    if zone is None:
        raise Http404
    return zone


def grid_locations_get_editable(*, actor: Actor) -> QuerySet[GridLocation]:
    """Only the owning DSO edits its zones."""
    if actor.organisation is None or not actor.has_role(Role.DSO):
        return GridLocation.objects.none()
    return GridLocation.objects.filter(dso=actor.organisation, archived_at__isnull=True)


def grid_location_get_editable(*, actor: Actor, pk) -> GridLocation:
    zone = grid_locations_get_editable(actor=actor).filter(pk=pk).first()
    if zone is None:
        raise Http404
    return zone


def zone_shapes(*, exclude_id: int | None = None, dso_id: int | None = None) -> list[ZoneShape]:
    """Active zones as shapely shapes, for point location and overlap checks."""
    from shapely.geometry import shape

    qs = GridLocation.objects.filter(archived_at__isnull=True)
    if dso_id is not None:
        qs = qs.filter(dso_id=dso_id)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return [
        ZoneShape(zone_id=pk, geometry=shape(geometry)) for pk, geometry in qs.values_list("pk", "geometry")
    ]


def zone_shapes_in_bounds(
    *, bounds: tuple[float, float, float, float], exclude_id: int | None = None
) -> list[ZoneShape]:
    """Active zones whose bounding box meets `bounds` (min_lon, min_lat, max_lon, max_lat), with their DSO."""
    from shapely.geometry import shape

    min_lon, min_lat, max_lon, max_lat = bounds
    qs = GridLocation.objects.filter(
        archived_at__isnull=True,
        min_lon__lte=max_lon,
        max_lon__gte=min_lon,
        min_lat__lte=max_lat,
        max_lat__gte=min_lat,
    )
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return [
        ZoneShape(zone_id=pk, geometry=shape(geometry), dso_id=dso_id, name=name, dso_name=dso_name)
        for pk, geometry, dso_id, name, dso_name in qs.values_list(
            "pk", "geometry", "dso_id", "name", "dso__legal_name"
        )
    ]


def zone_shapes_near(*, lon: float, lat: float) -> list[ZoneShape]:
    """Zones whose bounding box contains the point (prefilter before the exact polygon test)."""
    from shapely.geometry import shape

    qs = GridLocation.objects.filter(
        archived_at__isnull=True, min_lon__lte=lon, max_lon__gte=lon, min_lat__lte=lat, max_lat__gte=lat
    )
    return [
        ZoneShape(zone_id=pk, geometry=shape(geometry)) for pk, geometry in qs.values_list("pk", "geometry")
    ]


def assets_get_visible(*, actor: Actor) -> QuerySet[FlexAsset]:
    if actor.organisation is None:
        return FlexAsset.objects.none()
    qs = FlexAsset.objects.select_related("owner", "grid_location", "grid_location__dso")
    if _is_operator(actor):
        return qs
    return qs.filter(Q(owner=actor.organisation) | Q(grid_location__dso=actor.organisation))


def asset_get_visible(*, actor: Actor, pk) -> FlexAsset:
    asset = assets_get_visible(actor=actor).filter(pk=pk).first()
    if asset is None:
        raise Http404
    return asset


def assets_get_owned(*, actor: Actor) -> QuerySet[FlexAsset]:
    if actor.organisation is None:
        return FlexAsset.objects.none()
    return FlexAsset.objects.select_related("grid_location").filter(
        owner=actor.organisation, archived_at__isnull=True
    )


def assets_get_prequalification_queue(*, actor: Actor) -> QuerySet[FlexAsset]:
    """Assets in the DSO's zones, pending ones first."""
    if actor.organisation is None or not actor.has_role(Role.DSO):
        return FlexAsset.objects.none()
    return (
        FlexAsset.objects.select_related("owner", "grid_location")
        .filter(grid_location__dso=actor.organisation, archived_at__isnull=True)
        .annotate(
            mandatory_checked=Count(
                "prequalification_checks",
                filter=Q(
                    prequalification_checks__checked=True,
                    prequalification_checks__item__in=PrequalificationCheck.MANDATORY,
                ),
            )
        )
        .order_by("-prequalification", "created_at")
    )


def asset_get_prequalifiable(*, actor: Actor, pk) -> FlexAsset:
    asset = assets_get_prequalification_queue(actor=actor).filter(pk=pk).first()
    if asset is None:
        raise Http404
    return asset


def asset_checklist(asset: FlexAsset) -> list[PrequalificationCheck]:
    """Every checklist item of the asset in the order of PrequalificationCheck.Item; unsaved (unticked) rows
    stand in for items nobody has touched yet."""
    saved = {check.item: check for check in asset.prequalification_checks.select_related("checked_by")}
    return [
        saved.get(item) or PrequalificationCheck(asset=asset, item=item)
        for item in PrequalificationCheck.Item.values
    ]


def portfolios_get_visible(*, actor: Actor) -> QuerySet[Portfolio]:
    if actor.organisation is None:
        return Portfolio.objects.none()
    qs = Portfolio.objects.select_related("grid_location", "owner").prefetch_related("assets")
    if _is_operator(actor):
        return qs
    return qs.filter(Q(owner=actor.organisation) | Q(grid_location__dso=actor.organisation))


def portfolios_with_capabilities(*, actor: Actor) -> QuerySet[Portfolio]:
    """Visible portfolios with their summed capabilities computed in the database (asset_count, max_up_kw,
    max_down_kw, energy_capacity_kwh), so a list can sort by them and reads no assets per row."""
    zero = Value(Decimal("0"), output_field=DecimalField())
    return (
        portfolios_get_visible(actor=actor)
        .prefetch_related(None)
        .annotate(
            asset_count=Count("assets"),
            max_up_kw=Coalesce(Sum("assets__max_up_kw"), zero),
            max_down_kw=Coalesce(Sum("assets__max_down_kw"), zero),
            energy_capacity_kwh=Coalesce(Sum("assets__energy_capacity_kwh"), zero),
        )
    )


def portfolio_get_visible(*, actor: Actor, pk) -> Portfolio:
    portfolio = portfolios_get_visible(actor=actor).filter(pk=pk).first()
    if portfolio is None:
        raise Http404
    return portfolio


def network_models_get_visible(*, actor: Actor) -> QuerySet[NetworkModel]:
    if actor.organisation is None:
        return NetworkModel.objects.none()
    qs = NetworkModel.objects.select_related("dso").defer("network_json")
    return qs if _is_operator(actor) else qs.filter(dso=actor.organisation)


def network_model_get_visible(*, actor: Actor, pk) -> NetworkModel:
    model = network_models_get_visible(actor=actor).filter(pk=pk).first()
    if model is None:
        raise Http404
    return model


def network_model_loads_get_visible(*, actor: Actor) -> QuerySet[NetworkModelLoad]:
    if actor.organisation is None:
        return NetworkModelLoad.objects.none()
    qs = NetworkModelLoad.objects.defer("network_json")
    return qs if _is_operator(actor) else qs.filter(dso=actor.organisation)


def network_model_load_get_visible(*, actor: Actor, pk) -> NetworkModelLoad:
    load = network_model_loads_get_visible(actor=actor).filter(pk=pk).first()
    if load is None:
        raise Http404
    return load


def power_flow_runs_get_visible(*, actor: Actor) -> QuerySet[PowerFlowRun]:
    if actor.organisation is None:
        return PowerFlowRun.objects.none()
    qs = PowerFlowRun.objects.select_related("network_model")
    return qs if _is_operator(actor) else qs.filter(network_model__dso=actor.organisation)


def power_flow_run_get_visible(*, actor: Actor, pk) -> PowerFlowRun:
    run = power_flow_runs_get_visible(actor=actor).filter(pk=pk).first()
    if run is None:
        raise Http404
    return run


def bus_zone_mapping(*, network_model: NetworkModel) -> dict[int, int]:
    return dict(
        ZoneBusMapping.objects.filter(network_model=network_model).values_list(
            "bus_index", "grid_location_id"
        )
    )


def zone_asset_counts(*, dso) -> QuerySet[GridLocation]:
    return (
        GridLocation.objects.filter(dso=dso, archived_at__isnull=True)
        .annotate(
            asset_count=Count("assets", filter=Q(assets__archived_at__isnull=True)),
            pending_count=Count(
                "assets", filter=Q(assets__prequalification=FlexAsset.Prequalification.PENDING)
            ),
        )
        .order_by("name")
    )


@functools.lru_cache(maxsize=8)
def _network(digest: str, network_json: str):
    from grid import network

    return network.load_network(network_json)


def network_model_net(network_model: NetworkModel):
    """The parsed pandapower network of a model (cached per process by the JSON's hash: parsing takes seconds).

    Callers that change the network must work on a copy."""
    text = NetworkModel.objects.values_list("network_json", flat=True).get(pk=network_model.pk)
    return _network(hashlib.sha256(text.encode()).hexdigest(), text)


def network_branch_ratings(*, network_model: NetworkModel) -> dict[tuple[str, int], float]:
    """Rating in MVA of each in-service line and transformer, keyed (kind, index), as the clearing limits them."""
    from grid.sensitivity import branch_ratings_mva

    kinds, indices, ratings = branch_ratings_mva(network_model_net(network_model))
    return {(str(k), int(i)): float(r) for k, i, r in zip(kinds, indices, ratings, strict=True)}


def forecast_runs_get_visible(*, actor: Actor) -> QuerySet[ForecastRun]:
    """Forecasts are the DSO's own (grid data): the owning DSO and the FMO see them."""
    if actor.organisation is None:
        return ForecastRun.objects.none()
    qs = ForecastRun.objects.select_related("network_model")
    return qs if _is_operator(actor) else qs.filter(network_model__dso=actor.organisation)


def forecast_run_get_visible(*, actor: Actor, pk) -> ForecastRun:
    run = forecast_runs_get_visible(actor=actor).filter(pk=pk).first()
    if run is None:
        raise Http404
    return run


def forecast_uploads_get_visible(*, actor: Actor) -> QuerySet[ForecastUpload]:
    if actor.organisation is None:
        return ForecastUpload.objects.none()
    qs = ForecastUpload.objects.select_related("network_model").defer("values")
    return qs if _is_operator(actor) else qs.filter(network_model__dso=actor.organisation)


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres between two (lon, lat) points (equirectangular: buses are a few km apart)."""
    x = math.radians(b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2))
    return 6_371_000 * math.hypot(x, math.radians(b[1] - a[1]))


def asset_bus_rows(*, network_model: NetworkModel) -> list[dict]:
    """Each active asset in the model's DSO's zones with its bus: the DSO's choice, else the nearest bus mapped to
    the asset's zone (else the nearest bus of the network), and the distance to it."""
    from grid import timeseries

    coordinates = timeseries.bus_coordinates(network_model_net(network_model))
    chosen = dict(
        AssetBusMapping.objects.filter(network_model=network_model).values_list("asset_id", "bus_index")
    )
    zone_buses: dict[int, list[int]] = {}
    for bus, zone in bus_zone_mapping(network_model=network_model).items():
        zone_buses.setdefault(zone, []).append(bus)
    rows = []
    assets = FlexAsset.objects.select_related("grid_location", "owner").filter(
        grid_location__dso_id=network_model.dso_id, archived_at__isnull=True
    )
    for asset in assets.order_by("grid_location__name", "name"):
        point = (asset.longitude, asset.latitude)
        candidates = [b for b in zone_buses.get(asset.grid_location_id, []) if b in coordinates] or list(
            coordinates
        )
        nearest = min(candidates, key=lambda b: _distance(point, coordinates[b]), default=None)
        bus = chosen.get(asset.pk, nearest)
        rows.append(
            {
                "asset": asset,
                "bus": bus,
                "nearest": nearest,
                "set_by_dso": asset.pk in chosen,
                "distance_m": round(_distance(point, coordinates[bus])) if bus in coordinates else None,
            }
        )
    return rows


def asset_buses(*, network_model: NetworkModel, approved_only: bool = True) -> dict[int, int]:
    """Asset id -> bus for the model's assets (prequalified ones only by default)."""
    return {
        row["asset"].pk: row["bus"]
        for row in asset_bus_rows(network_model=network_model)
        if row["bus"] is not None
        and (not approved_only or row["asset"].prequalification == FlexAsset.Prequalification.APPROVED)
    }


def zone_bus_rows(*, network_model: NetworkModel) -> tuple[list[dict], list[int]]:
    """The DSO's zones with the buses mapped to them, and the buses mapped to none."""
    mapping = bus_zone_mapping(network_model=network_model)
    zones = GridLocation.objects.filter(dso_id=network_model.dso_id, archived_at__isnull=True).order_by(
        "name"
    )
    rows = [{"zone": zone, "buses": sorted(b for b, z in mapping.items() if z == zone.pk)} for zone in zones]
    all_buses = network_model_net(network_model).bus.index.astype(int).tolist()
    return rows, sorted(set(all_buses) - set(mapping))


def network_as_geojson(
    *, network_model: NetworkModel, run: ForecastRun | None = None, ptu: int | None = None
):
    """Buses, lines and transformers of a network as GeoJSON features, with loading and voltage from a forecast
    run (the given PTU, else each element's maximum over the day) when one is given."""
    from grid import timeseries

    net = network_model_net(network_model)
    coordinates = timeseries.bus_coordinates(net)
    mapping = bus_zone_mapping(network_model=network_model)
    results = (run.results or {}) if run is not None else {}

    def values(name: str, key: str, digits: int, pick=max) -> dict[int, float]:
        if not results:
            return {}
        series = results[name]
        return {
            int(element): round(float(series[n][ptu] if ptu is not None else pick(series[n])), digits)
            for n, element in enumerate(results[key])
        }

    line_loading = values("line_loading_percent", "line_index", 1)
    trafo_loading = values("trafo_loading_percent", "trafo_index", 1)
    voltage_low = values("bus_voltage_pu", "bus_index", 4, pick=min)
    features = []
    for index, from_bus, to_bus, name in net.line[["from_bus", "to_bus", "name"]].itertuples():
        geometry = None
        geo = net.line["geo"].get(index) if "geo" in net.line else None
        if isinstance(geo, str) and geo:
            geometry = json.loads(geo)
        elif from_bus in coordinates and to_bus in coordinates:
            geometry = {"type": "LineString", "coordinates": [coordinates[from_bus], coordinates[to_bus]]}
        if geometry is None:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "kind": "line",
                    "index": int(index),
                    "name": str(name or f"Line {index}"),
                    "loading_percent": line_loading.get(int(index)),
                },
            }
        )
    for index, lv_bus, name in net.trafo[["lv_bus", "name"]].itertuples():
        if lv_bus not in coordinates:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(coordinates[lv_bus])},
                "properties": {
                    "kind": "trafo",
                    "index": int(index),
                    "name": str(name or f"Transformer {index}"),
                    "loading_percent": trafo_loading.get(int(index)),
                },
            }
        )
    for index, name in net.bus["name"].items():
        if int(index) not in coordinates:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(coordinates[int(index)])},
                "properties": {
                    "kind": "bus",
                    "index": int(index),
                    "name": str(name or f"Bus {index}"),
                    "zone": mapping.get(int(index)),
                    "voltage_pu": voltage_low.get(int(index)),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def forecast_need_blocks(run) -> list[dict]:
    """A forecast's needs as blocks a FlexRequest can carry: per zone and direction, each run of consecutive PTUs
    with its kW per PTU (from the first PTU's UTC start), in zone and time order."""

    if not run.needs or not run.needs.get("zones"):
        return []
    starts = ptus.ptu_starts(run.delivery_day, settings.FLEXMARKET_GRID_TIME_ZONE)
    blocks = []
    for zone_id, by_ptu in sorted(run.needs["zones"].items(), key=lambda item: int(item[0])):
        points = sorted((int(t), float(kw)) for t, kw in by_ptu.items())
        for direction in ("up", "down"):
            mine = [(t, abs(kw)) for t, kw in points if (kw > 0) == (direction == "up")]
            block: list[tuple[int, float]] = []
            for t, kw in [*mine, (None, 0.0)]:
                if block and (t is None or t != block[-1][0] + 1):
                    blocks.append(
                        {
                            "grid_location": int(zone_id),
                            "direction": direction,
                            "ptu_start": starts[block[0][0]],
                            "first_ptu": block[0][0],
                            "quantities_kw": [round(kw, 3) for _, kw in block],
                        }
                    )
                    block = []
                if t is not None:
                    block.append((t, kw))
    return blocks
