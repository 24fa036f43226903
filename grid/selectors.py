"""Reads for grid locations, network models, power-flow runs, assets and portfolios, with visibility rules.

Zone outlines and status are public to every approved participant; assets are seen by their owner, by the
DSO of the zone they are in, and by the FMO; network models only by their DSO and the FMO.
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from accounts.context import Actor
from accounts.models import Role
from grid.geometry import ZoneShape
from grid.models import (
    FlexAsset,
    GridLocation,
    NetworkModel,
    NetworkModelLoad,
    Portfolio,
    PowerFlowRun,
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
        .order_by("-prequalification", "created_at")
    )


def asset_get_prequalifiable(*, actor: Actor, pk) -> FlexAsset:
    asset = assets_get_prequalification_queue(actor=actor).filter(pk=pk).first()
    if asset is None:
        raise Http404
    return asset


def portfolios_get_visible(*, actor: Actor) -> QuerySet[Portfolio]:
    if actor.organisation is None:
        return Portfolio.objects.none()
    qs = Portfolio.objects.select_related("grid_location", "owner").prefetch_related("assets")
    if _is_operator(actor):
        return qs
    return qs.filter(Q(owner=actor.organisation) | Q(grid_location__dso=actor.organisation))


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
