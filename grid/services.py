"""Business actions for grid locations, network models and power flows, FlexAssets and portfolios."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.context import Actor
from accounts.models import Notification, Organisation, Role
from accounts.services import audit_record, notify_organisation, notify_organisations
from flexmarket import jsonio, ptu, runs, validation
from flexmarket.csvio import CsvReader, ImportErrors, check_upload_size
from flexmarket.errors import DomainError
from flexmarket.localtime import moment_label
from grid import geometry as geo
from grid import needs, network, timeseries
from grid.ean import check_digit, ean18_is_valid
from grid.errors import GridErrorCode
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
from grid.selectors import (
    asset_buses,
    asset_checklist,
    bus_zone_mapping,
    network_model_net,
    zone_shapes,
    zone_shapes_in_bounds,
    zone_shapes_near,
)

EAN18 = re.compile(r"^[0-9]{18}$")
ASSET_CSV_COLUMNS = [
    "name",
    "asset_type",
    "connection_ean",
    "latitude",
    "longitude",
    "max_up_kw",
    "max_down_kw",
    "energy_capacity_kwh",
    "ramp_rate_kw_per_min",
    "availability",
]
DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
NAME_MAX = FlexAsset._meta.get_field("name").max_length
ZONE_NAME_MAX = GridLocation._meta.get_field("name").max_length
ZONE_CODE_MAX = GridLocation._meta.get_field("code").max_length
NETWORK_NAME_MAX = NetworkModel._meta.get_field("name").max_length


def _require_role(actor: Actor, role: str, code: GridErrorCode) -> None:
    if actor.organisation is None or not actor.organisation.is_approved or not actor.has_role(role):
        raise DomainError(code, f"Only an approved {role} can do this.")


# --- grid locations --------------------------------------------------------------------------------


def _zone_shape(geometry) -> Any:
    try:
        return geo.validate_polygon(geometry, max_vertices=settings.FLEXMARKET_ZONE_MAX_VERTICES)
    except geo.GeometryError as error:
        raise DomainError(GridErrorCode.INVALID_GEOMETRY, str(error), field="geometry")


def _overlap_outcome(actor: Actor, hits: list[tuple[geo.ZoneShape, float]]) -> list[str]:
    """Refuse overlap with the DSO's own zones; return warnings for other DSOs' zones."""
    warnings = []
    for other, share in hits:
        if other.dso_id == actor.organisation.pk:
            raise DomainError(
                GridErrorCode.OVERLAP,
                f"The zone overlaps your zone {other.name} by {share:.0%} of the smaller zone "
                f"(at most {geo.OVERLAP_TOLERANCE:.0%} is allowed).",
                field="geometry",
            )
        warnings.append(f"Overlaps {other.name} of {other.dso_name} by {share:.0%}.")
    return warnings


def _clean_zone(
    *, actor: Actor, geometry: dict, code: str, exclude_id: int | None = None
) -> tuple[Any, list[str]]:
    """Validate geometry and code; refuse overlap with the DSO's own zones, warn about other DSOs' zones."""
    shape = _zone_shape(geometry)
    if GridLocation.objects.filter(code=code).exclude(pk=exclude_id).exists():
        raise DomainError(
            GridErrorCode.CODE_TAKEN, f"Another zone already uses the code {code}.", field="code"
        )
    candidates = zone_shapes_in_bounds(bounds=geo.bounds(shape), exclude_id=exclude_id)
    return shape, _overlap_outcome(actor, geo.overlapping([shape], candidates)[0])


def _clean_zone_text(name, code) -> tuple[str, str]:
    name = validation.clean_text(
        name, field="name", code=GridErrorCode.INVALID_GEOMETRY, max_length=ZONE_NAME_MAX, required=False
    )
    if not name:
        raise DomainError(GridErrorCode.INVALID_GEOMETRY, "Give the zone a name.", field="name")
    code = validation.clean_text(
        code, field="code", code=GridErrorCode.CODE_TAKEN, max_length=ZONE_CODE_MAX, required=False
    )
    if not code:
        raise DomainError(
            GridErrorCode.CODE_TAKEN, "Give the zone a code, e.g. its congestion point EAN.", field="code"
        )
    return name, code


def _upload_text(file, code: GridErrorCode) -> str:
    check_upload_size(file, code)
    try:
        return file.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError(code, "The file is not UTF-8 text.", field="file")


def geojson_upload_read(file) -> Any:
    """An uploaded GeoJSON file, size- and depth-checked and parsed."""
    try:
        return jsonio.loads(_upload_text(file, GridErrorCode.INVALID_IMPORT))
    except jsonio.JsonInputError as error:
        raise DomainError(GridErrorCode.INVALID_IMPORT, str(error), field="file")


def network_upload_read(file) -> str:
    """The text of an uploaded pandapower JSON file (size-checked; depth is checked on create)."""
    return _upload_text(file, GridErrorCode.NETWORK_INVALID)


def _plain_geometry(geometry: dict) -> dict:
    return geometry.get("geometry", geometry) if geometry.get("type") == "Feature" else geometry


def _zone_snapshot(zone: GridLocation) -> dict:
    return {
        "name": zone.name,
        "code": zone.code,
        "voltage_level": zone.voltage_level,
        "status": zone.status,
        "bounds": [zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat],
    }


def _validate_choice(value: str, choices, field: str) -> str:
    if value not in choices.values:
        raise DomainError(
            GridErrorCode.INVALID_STATUS, f"Choose one of: {', '.join(choices.values)}.", field=field
        )
    return value


@transaction.atomic
def grid_location_create(
    *,
    actor: Actor,
    name: str,
    code: str,
    geometry: dict,
    voltage_level: str = GridLocation.VoltageLevel.MV,
    status: str = GridLocation.Status.NORMAL,
    status_reason: str = "",
) -> GridLocation:
    """A DSO registers a congestion zone. `zone.warnings` lists overlaps with other DSOs' zones."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    name, code = _clean_zone_text(name, code)
    _validate_choice(voltage_level, GridLocation.VoltageLevel, "voltage_level")
    _validate_choice(status, GridLocation.Status, "status")
    shape, warnings = _clean_zone(actor=actor, geometry=geometry, code=code)
    zone = _zone_write(
        actor=actor,
        name=name,
        code=code,
        geometry=geometry,
        shape=shape,
        voltage_level=voltage_level,
        status=status,
        status_reason=validation.clean_text(
            status_reason or "",
            field="status_reason",
            code=GridErrorCode.INVALID_STATUS,
            max_length=300,
            required=False,
        ),
        warnings=warnings,
    )
    _tell_market_operator(zone)
    return zone


def _tell_market_operator(zone: GridLocation) -> None:
    """A new zone is traded in markets that list their zones only once the FMO adds it: tell the FMO."""
    operators = (
        Organisation.objects.filter(role_grants__role=Role.FMO).values_list("pk", flat=True).distinct()
    )
    notify_organisations(
        [
            {
                "organisation_id": pk,
                "title": f"New zone {zone.name} ({zone.code}) by {zone.dso}: add it to the markets that trade it",
                "body": "Markets that list their zones take orders in a zone only once it is listed (admin, "
                "Trading → Markets).",
                "link": "/admin/trading/market/",
            }
            for pk in operators
        ],
        category=Notification.Category.GRID,
    )


def _zone_write(
    *,
    actor,
    name,
    code,
    geometry,
    shape,
    voltage_level,
    status,
    warnings,
    place_assets=True,
    status_reason="",
) -> GridLocation:
    min_lon, min_lat, max_lon, max_lat = geo.bounds(shape)
    zone = GridLocation.objects.create(
        dso=actor.organisation,
        name=name,
        code=code,
        voltage_level=voltage_level,
        status=status,
        status_reason=status_reason.strip(),
        status_changed_at=timezone.now(),
        geometry=_plain_geometry(geometry),
        display_geometry=geo.simplify_for_display(
            shape, max_vertices=settings.FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES
        ),
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
    )
    audit_record(actor=actor, action="grid_location.create", target=zone, after=_zone_snapshot(zone))
    if place_assets:
        _assign_unplaced_assets(zone)
    zone.warnings = warnings
    return zone


@transaction.atomic
def grid_location_update(*, actor: Actor, grid_location: GridLocation, **changes) -> GridLocation:
    """The owning DSO edits name, code, voltage level, status or vertices; assets are re-placed on a shape change."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    zone = GridLocation.objects.select_for_update().get(pk=grid_location.pk, dso=actor.organisation)
    if zone.archived_at is not None:
        raise DomainError(GridErrorCode.ARCHIVED, "An archived zone cannot be edited.")
    before = _zone_snapshot(zone)
    warnings: list[str] = []
    name, code = _clean_zone_text(changes.get("name", zone.name), changes.get("code", zone.code))
    if "code" in changes or "geometry" in changes:
        geometry = changes.get("geometry", zone.geometry)
        shape, warnings = _clean_zone(actor=actor, geometry=geometry, code=code, exclude_id=zone.pk)
        zone.code = code
        zone.geometry = _plain_geometry(geometry)
        zone.display_geometry = geo.simplify_for_display(
            shape, max_vertices=settings.FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES
        )
        zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat = geo.bounds(shape)
    zone.name = name
    if "voltage_level" in changes:
        zone.voltage_level = _validate_choice(
            changes["voltage_level"], GridLocation.VoltageLevel, "voltage_level"
        )
    if "status" in changes and changes["status"] != zone.status:
        zone.status = _validate_choice(changes["status"], GridLocation.Status, "status")
        zone.status_source = GridLocation.StatusSource.MANUAL
        zone.status_reason = validation.clean_text(
            changes.get("status_reason", ""),
            field="status_reason",
            code=GridErrorCode.INVALID_STATUS,
            max_length=GridLocation._meta.get_field("status_reason").max_length,
            required=False,
        )
        zone.status_changed_at = timezone.now()
    zone.save()
    audit_record(
        actor=actor, action="grid_location.update", target=zone, before=before, after=_zone_snapshot(zone)
    )
    if "geometry" in changes:
        _replace_assets_after_shape_change(zone)
    zone.warnings = warnings
    return zone


@transaction.atomic
def grid_location_archive(*, actor: Actor, grid_location: GridLocation) -> GridLocation:
    """Archive (never delete) a zone; its assets fall outside every zone until placed again."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    zone = GridLocation.objects.select_for_update().get(pk=grid_location.pk, dso=actor.organisation)
    if zone.archived_at is not None:
        raise DomainError(GridErrorCode.ARCHIVED, "The zone is already archived.")
    zone.archived_at = timezone.now()
    zone.save(update_fields=["archived_at", "updated_at"])
    for asset in FlexAsset.objects.filter(grid_location=zone):
        asset.grid_location_id = _locate(asset.longitude, asset.latitude)
        asset.save(update_fields=["grid_location"])
    audit_record(
        actor=actor,
        action="grid_location.archive",
        target=zone,
        before={"archived": False},
        after={"archived": True},
    )
    return zone


@transaction.atomic
def grid_location_set_status(
    *, actor: Actor, grid_location: GridLocation, status: str, reason: str = "", source: str = "manual"
) -> GridLocation:
    """Set the traffic light (by the DSO, or by a power-flow run with `source="power_flow"`)."""
    if source == GridLocation.StatusSource.MANUAL:
        _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
        if grid_location.dso_id != actor.organisation.pk:
            raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the zone's DSO sets its status.")
    _validate_choice(status, GridLocation.Status, "status")
    before = {"status": grid_location.status}
    grid_location.status = status
    grid_location.status_source = source
    grid_location.status_reason = reason[:300]
    grid_location.status_changed_at = timezone.now()
    grid_location.save(
        update_fields=["status", "status_source", "status_reason", "status_changed_at", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="grid_location.status",
        target=grid_location,
        organisation=grid_location.dso,
        before=before,
        after={"status": status, "source": source},
        reason=reason,
    )
    return grid_location


def _feature_fields(feature) -> dict:
    """Name, code, geometry, voltage level and status of one GeoJSON Feature, with its structure checked."""
    if not isinstance(feature, dict):
        raise DomainError(GridErrorCode.INVALID_IMPORT, "Each feature must be a GeoJSON Feature object.")
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise DomainError(
            GridErrorCode.INVALID_IMPORT, "The feature's properties must be an object.", field="properties"
        )
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        raise DomainError(
            GridErrorCode.INVALID_GEOMETRY, "The feature needs a Polygon geometry object.", field="geometry"
        )
    name, code = _clean_zone_text(properties.get("name"), properties.get("code"))
    voltage_level = _validate_choice(
        str(properties.get("voltage_level", GridLocation.VoltageLevel.MV)),
        GridLocation.VoltageLevel,
        "voltage_level",
    )
    status = _validate_choice(
        str(properties.get("status", GridLocation.Status.NORMAL)), GridLocation.Status, "status"
    )
    return {
        "name": name,
        "code": code,
        "geometry": geometry,
        "voltage_level": voltage_level,
        "status": status,
    }


@transaction.atomic
def grid_locations_import_geojson(*, actor: Actor, data: Any, progress=None) -> list[GridLocation]:
    """Import a FeatureCollection; each feature needs properties name and code. All or nothing.

    Geometries are validated first, then checked for overlap in one pass through a spatial index over the
    existing zones and the file's own, so importing N zones costs about N log N (bench/zones.py)."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise DomainError(GridErrorCode.INVALID_IMPORT, "Upload a GeoJSON FeatureCollection.", field="file")
    features = data["features"]
    if not features:
        raise DomainError(GridErrorCode.INVALID_IMPORT, "The collection has no features.", field="file")
    if len(features) > settings.FLEXMARKET_IMPORT_MAX_ROWS:
        raise DomainError(
            GridErrorCode.INVALID_IMPORT,
            f"The collection has {len(features):,} features; at most {settings.FLEXMARKET_IMPORT_MAX_ROWS:,}.",
            field="file",
        )
    errors = ImportErrors(GridErrorCode.INVALID_IMPORT)
    parsed: list[tuple[int, dict, Any]] = []
    codes: dict[str, int] = {}
    for index, feature in enumerate(features, start=1):
        try:
            fields = _feature_fields(feature)
            shape = _zone_shape(fields["geometry"])
            if fields["code"] in codes:
                raise DomainError(
                    GridErrorCode.CODE_TAKEN,
                    f"Feature {codes[fields['code']]} already uses the code {fields['code']}.",
                    field="code",
                )
            codes[fields["code"]] = index
            parsed.append((index, fields, shape))
        except DomainError as error:
            errors.add_error(index, error)
        if progress is not None:
            progress(index, errors.count)
    taken = set(GridLocation.objects.filter(code__in=list(codes)).values_list("code", flat=True))
    shapes = [shape for _, _, shape in parsed]
    existing = zone_shapes_in_bounds(bounds=geo.union_bounds(shapes)) if shapes else []
    own = [
        geo.ZoneShape(zone_id=i, geometry=shape, dso_id=actor.organisation.pk, name=fields["name"])
        for i, (_, fields, shape) in enumerate(parsed)
    ]
    versus_existing = geo.overlapping(shapes, existing)
    versus_file = geo.overlapping(shapes, own)
    accepted = []
    for position, (index, fields, shape) in enumerate(parsed):
        try:
            if fields["code"] in taken:
                raise DomainError(
                    GridErrorCode.CODE_TAKEN,
                    f"Another zone already uses the code {fields['code']}.",
                    field="code",
                )
            earlier = [(other, share) for other, share in versus_file[position] if other.zone_id < position]
            warnings = _overlap_outcome(actor, earlier + versus_existing[position])
            accepted.append((fields, shape, warnings))
        except DomainError as error:
            errors.add_error(index, error)
    errors.raise_if_any("feature(s)")
    zones = [
        _zone_write(actor=actor, shape=shape, warnings=warnings, place_assets=False, **fields)
        for fields, shape, warnings in accepted
    ]
    _assign_unplaced_assets_in(geo.union_bounds(shapes))  # one query for the whole import
    return zones


def assets_as_geojson(assets) -> dict:
    """RFC 7946 FeatureCollection of asset points (name, type, prequalification state)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [a.longitude, a.latitude]},
                "properties": {
                    "id": a.pk,
                    "name": a.name,
                    "state": a.prequalification,
                    "type": a.get_asset_type_display(),
                },
            }
            for a in assets
        ],
    }


def grid_locations_as_geojson(zones) -> dict:
    """RFC 7946 FeatureCollection of zones (outline, code, status)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": zone.pk,
                "geometry": zone.display_geometry or zone.geometry,
                "properties": {
                    "id": zone.pk,
                    "name": zone.name,
                    "code": zone.code,
                    "dso": zone.dso.legal_name,
                    "dso_id": zone.dso_id,
                    "voltage_level": zone.voltage_level,
                    "status": zone.status,
                },
            }
            for zone in zones
        ],
    }


# --- FlexAssets -------------------------------------------------------------------------------------


def _locate(lon: float, lat: float) -> int | None:
    return geo.locate_point(lon, lat, zone_shapes_near(lon=lon, lat=lat))


def _assign_unplaced_assets(zone: GridLocation) -> None:
    _assign_unplaced_assets_in((zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat))


def _assign_unplaced_assets_in(bounds: tuple[float, float, float, float]) -> None:
    """Place assets outside every zone that lie in `bounds` (after new zones were drawn there)."""
    min_lon, min_lat, max_lon, max_lat = bounds
    for asset in FlexAsset.objects.filter(
        grid_location__isnull=True,
        longitude__gte=min_lon,
        longitude__lte=max_lon,
        latitude__gte=min_lat,
        latitude__lte=max_lat,
        archived_at__isnull=True,
    ):
        asset.grid_location_id = _locate(asset.longitude, asset.latitude)
        asset.save(update_fields=["grid_location"])


def _replace_assets_after_shape_change(zone: GridLocation) -> None:
    candidates = FlexAsset.objects.filter(archived_at__isnull=True).filter(
        grid_location=zone
    ) | FlexAsset.objects.filter(
        archived_at__isnull=True,
        grid_location__isnull=True,
        longitude__gte=zone.min_lon,
        longitude__lte=zone.max_lon,
        latitude__gte=zone.min_lat,
        latitude__lte=zone.max_lat,
    )
    for asset in candidates:
        new_zone = _locate(asset.longitude, asset.latitude)
        if new_zone != asset.grid_location_id:
            asset.grid_location_id = new_zone
            asset.prequalification = FlexAsset.Prequalification.PENDING
            asset.save(update_fields=["grid_location", "prequalification"])
            # The checklist was the old zone's verification; the new zone's DSO starts afresh (the ticks stay in
            # the audit trail).
            asset.prequalification_checks.all().delete()


def _decimal(
    value, field: str, *, required: bool = True, minimum: Decimal | None = Decimal("0")
) -> Decimal | None:
    """A number within the column's range and FLEXMARKET_ASSET_MAX_KW (kW, kWh, kW/min fields)."""
    if value in (None, ""):
        if required:
            raise DomainError(GridErrorCode.INVALID_ASSET, "This field is required.", field=field)
        return None
    maximum = min(validation.column_maximum(FlexAsset, field), Decimal(settings.FLEXMARKET_ASSET_MAX_KW))
    return validation.bounded_decimal(
        value, field=field, code=GridErrorCode.INVALID_ASSET, minimum=minimum, maximum=maximum
    )


def _coordinate(value, field: str, limit: int) -> float:
    if value in (None, ""):
        raise DomainError(GridErrorCode.INVALID_ASSET, "This field is required.", field=field)
    number = validation.bounded_decimal(
        value, field=field, code=GridErrorCode.INVALID_ASSET, minimum=Decimal(-limit), maximum=Decimal(limit)
    )
    return float(number)


def _availability_error(message: str) -> DomainError:
    return DomainError(GridErrorCode.INVALID_ASSET, message, field="availability")


def _window_from_text(part: str) -> dict:
    """One window "mon-fri 07:00-22:00" or "sat 09:00-13:00", parsed by splitting (linear time: no regex
    backtracking on input like "mon ------...- x")."""
    text = part.strip().lower()
    pieces = text.split()
    shown = text if len(text) <= 40 else text[:40] + "…"
    if len(pieces) != 2:
        raise _availability_error(f'"{shown}" is not a window like "mon-fri 07:00-22:00".')
    days_text, times_text = pieces
    first_day, dash, last_day = days_text.partition("-")
    start, time_dash, end = times_text.partition("-")
    if (
        first_day not in DAY_NAMES
        or (dash and last_day not in DAY_NAMES)
        or not time_dash
        or not start
        or not end
    ):
        raise _availability_error(f'"{shown}" is not a window like "mon-fri 07:00-22:00".')
    first = DAY_NAMES.index(first_day)
    last = DAY_NAMES.index(last_day) if dash else first
    if last < first:
        raise _availability_error(f'"{shown}": the day range runs backwards.')
    return {"days": list(range(first, last + 1)), "start": start, "end": end}


def availability_clean(value) -> list[dict]:
    """Availability windows from JSON ([{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}]) or text
    ("mon-fri 07:00-22:00; sat 09:00-13:00"); empty means always available. Local market time.

    Shared by assets and availability agreements: the structure is checked here, at the door, so no later
    task meets a window it cannot read."""
    if value in (None, "", []):
        return []
    max_chars = settings.FLEXMARKET_AVAILABILITY_MAX_CHARS
    max_windows = settings.FLEXMARKET_AVAILABILITY_MAX_WINDOWS
    if isinstance(value, str):
        if len(value) > max_chars:
            raise _availability_error(f"At most {max_chars} characters of windows (got {len(value):,}).")
        value = [_window_from_text(part) for part in re.split(r"[;\n]", value) if part.strip()]
    if not isinstance(value, list):
        raise _availability_error("Availability is a list of windows.")
    if len(value) > max_windows:
        raise _availability_error(f"At most {max_windows} windows (got {len(value):,}).")
    windows = []
    for window in value:
        if not isinstance(window, dict):
            raise _availability_error(
                'Each window is an object like {"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "20:00"}.'
            )
        days, start, end = window.get("days"), window.get("start"), window.get("end")
        if (
            not isinstance(days, list)
            or not days
            or len(days) > 7
            or any(isinstance(d, bool) or not isinstance(d, int) or d not in range(7) for d in days)
        ):
            raise _availability_error("Window days are weekday numbers 0 (Monday) to 6 (Sunday).")
        if (
            not isinstance(start, str)
            or not isinstance(end, str)
            or not HHMM.fullmatch(start)
            or not HHMM.fullmatch(end)
        ):
            raise _availability_error('Window times are HH:MM text, e.g. "17:00".')
        if start >= end:
            raise _availability_error(f"A window ends after it starts ({start}–{end}).")
        windows.append({"days": sorted(set(days)), "start": start, "end": end})
    return windows


def asset_clean(data: dict) -> dict:
    """Validate asset fields from a form, CSV row or API payload; returns typed values."""
    name = validation.clean_text(
        data.get("name"), field="name", code=GridErrorCode.INVALID_ASSET, max_length=NAME_MAX
    )
    asset_type = str(data.get("asset_type") or "").strip()
    if asset_type not in FlexAsset.AssetType.values:
        raise DomainError(
            GridErrorCode.INVALID_ASSET,
            f"Choose one of: {', '.join(FlexAsset.AssetType.values)}.",
            field="asset_type",
        )
    ean = str(data.get("connection_ean") or "").strip()
    if not EAN18.match(ean):
        raise DomainError(
            GridErrorCode.INVALID_ASSET, "The connection EAN has 18 digits.", field="connection_ean"
        )
    if not ean18_is_valid(ean):
        raise DomainError(
            GridErrorCode.INVALID_ASSET,
            f"{ean} fails the EAN check digit (expected {check_digit(ean[:17])} at the end): mistyped?",
            field="connection_ean",
        )
    latitude = _coordinate(data.get("latitude"), "latitude", 90)
    longitude = _coordinate(data.get("longitude"), "longitude", 180)
    max_up = _decimal(data.get("max_up_kw"), "max_up_kw")
    max_down = _decimal(data.get("max_down_kw"), "max_down_kw")
    if max_up == 0 and max_down == 0:
        raise DomainError(
            GridErrorCode.INVALID_ASSET, "An asset needs up or down flexibility.", field="max_up_kw"
        )
    energy = _decimal(data.get("energy_capacity_kwh"), "energy_capacity_kwh", required=False)
    if asset_type == FlexAsset.AssetType.BATTERY and not energy:
        raise DomainError(
            GridErrorCode.INVALID_ASSET, "A battery needs its energy capacity.", field="energy_capacity_kwh"
        )
    availability = availability_clean(data.get("availability"))
    return {
        "name": name,
        "asset_type": asset_type,
        "connection_ean": ean,
        "latitude": latitude,
        "longitude": longitude,
        "max_up_kw": max_up,
        "max_down_kw": max_down,
        "energy_capacity_kwh": energy,
        "ramp_rate_kw_per_min": _decimal(
            data.get("ramp_rate_kw_per_min"), "ramp_rate_kw_per_min", required=False
        ),
        "availability": availability,
    }


@transaction.atomic
def asset_register(*, actor: Actor, brp: Organisation | None = None, **fields) -> FlexAsset:
    """An ESP registers an asset; it lands in the zone containing it and waits for that DSO's prequalification."""
    _require_role(actor, Role.ESP, GridErrorCode.NOT_ESP)
    cleaned = asset_clean(fields)
    _require_free_connection(cleaned["connection_ean"])
    zone_id = _locate(cleaned["longitude"], cleaned["latitude"])
    asset = FlexAsset.objects.create(owner=actor.organisation, grid_location_id=zone_id, brp=brp, **cleaned)
    audit_record(
        actor=actor,
        action="asset.register",
        target=asset,
        after={"zone": zone_id, "max_up_kw": str(asset.max_up_kw), "max_down_kw": str(asset.max_down_kw)},
    )
    if asset.grid_location_id:
        transaction.on_commit(
            lambda: notify_organisation(
                category=Notification.Category.GRID,
                organisation=asset.grid_location.dso,
                title=f"New asset to prequalify in {asset.grid_location.name}",
                body=f"{asset.owner} registered {asset.name} ({asset.get_asset_type_display()}).",
                link="/grid/prequalification/",
            )
        )
    return asset


def _require_free_connection(ean: str) -> None:
    """A connection point identifies one (non-archived) asset at a time; a change of owner is a transfer."""
    if FlexAsset.objects.filter(connection_ean=ean, archived_at__isnull=True).exists():
        raise DomainError(
            GridErrorCode.EAN_TAKEN,
            f"Connection {ean} is already registered. If it changed hands, the market operator transfers it.",
            field="connection_ean",
        )


@transaction.atomic
def asset_transfer(*, actor: Actor, asset: FlexAsset, new_owner: Organisation, reason: str) -> FlexAsset:
    """The FMO moves a connection to another ESP: the old asset is archived with its history (readings,
    contracts), and the new owner gets a fresh asset on the same connection, pending the DSO's prequalification."""
    if not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(GridErrorCode.NOT_FMO, "Only the market operator transfers connections.")
    if not reason.strip():
        raise DomainError(
            GridErrorCode.REASON_REQUIRED, "Give the reason (e.g. the new supply contract).", field="reason"
        )
    asset = FlexAsset.objects.select_for_update().get(pk=asset.pk)
    if asset.archived_at is not None:
        raise DomainError(GridErrorCode.ARCHIVED, "The asset is archived.")
    if not (new_owner.is_approved and new_owner.has_role(Role.ESP)) or new_owner.pk == asset.owner_id:
        raise DomainError(GridErrorCode.NOT_ESP, "Transfer to another approved ESP.", field="new_owner")
    now = timezone.now()
    asset.archived_at = now
    asset.save(update_fields=["archived_at"])
    asset.portfolios.clear()
    fields = {
        field: getattr(asset, field)
        for field in (
            "name",
            "asset_type",
            "connection_ean",
            "latitude",
            "longitude",
            "grid_location_id",
            "brp_id",
            "max_up_kw",
            "max_down_kw",
            "energy_capacity_kwh",
            "ramp_rate_kw_per_min",
            "availability",
        )
    }
    successor = FlexAsset.objects.create(owner=new_owner, **fields)
    audit_record(
        actor=actor,
        action="asset.transfer",
        target=successor,
        before={"asset": asset.pk, "owner": asset.owner_id},
        after={"asset": successor.pk, "owner": new_owner.pk, "ean": asset.connection_ean},
        reason=reason.strip(),
    )
    for organisation in (asset.owner, new_owner):
        notify_organisation(
            category=Notification.Category.GRID,
            organisation=organisation,
            title=f"Connection {asset.connection_ean} transferred to {new_owner}",
            body=reason.strip(),
        )
    return successor


@transaction.atomic
def assets_import_csv(*, actor: Actor, file, progress=None) -> list[FlexAsset]:
    """Register many assets from CSV (header row: ASSET_CSV_COLUMNS). Any bad row → nothing is imported.

    Every bad row is counted (the first FLEXMARKET_IMPORT_ERRORS_LISTED are listed); `progress(rows, errors)`
    is called now and then for background jobs."""
    _require_role(actor, Role.ESP, GridErrorCode.NOT_ESP)
    errors = ImportErrors(GridErrorCode.INVALID_IMPORT)
    reader = CsvReader(file, code=GridErrorCode.INVALID_IMPORT, required=ASSET_CSV_COLUMNS[:7], errors=errors)
    assets = []
    for row_number, row in reader:
        try:
            with transaction.atomic():
                assets.append(asset_register(actor=actor, **{k: row.get(k) for k in ASSET_CSV_COLUMNS}))
        except DomainError as error:
            errors.add_error(row_number, error)
        if progress is not None:
            progress(reader.rows_read, errors.count)
    errors.raise_if_any()
    if not assets:
        raise DomainError(GridErrorCode.INVALID_IMPORT, "The file has no rows.", field="file")
    return assets


CHECK_NOTE_MAX = PrequalificationCheck._meta.get_field("note").max_length


def _require_zone_dso(actor: Actor, asset: FlexAsset) -> FlexAsset:
    """The asset, locked for update, when the actor is the DSO of its zone."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    asset = FlexAsset.objects.select_for_update(of=("self",)).select_related("grid_location").get(pk=asset.pk)
    if asset.grid_location is None or asset.grid_location.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the DSO of the asset's zone prequalifies it.")
    return asset


@transaction.atomic
def asset_checklist_update(
    *, actor: Actor, asset: FlexAsset, checked: list[str], notes: dict[str, str] | None = None
) -> list[PrequalificationCheck]:
    """The zone's DSO records which checklist items hold (`checked`) and a note per item; an item whose tick or
    note changes is stamped with who and when. Returns the whole checklist."""
    asset = _require_zone_dso(actor, asset)
    notes = {item: (note or "").strip() for item, note in (notes or {}).items()}
    known = set(PrequalificationCheck.Item.values)
    unknown = sorted((set(checked) | set(notes)) - known)
    if unknown:
        raise DomainError(
            GridErrorCode.INVALID_STATE, f"Unknown checklist item(s): {', '.join(unknown)}.", field="checked"
        )
    too_long = [item for item, note in notes.items() if len(note) > CHECK_NOTE_MAX]
    if too_long:
        raise DomainError(
            GridErrorCode.INVALID_STATE, f"A note has at most {CHECK_NOTE_MAX} characters.", field="notes"
        )
    now = timezone.now()
    before, after = {}, {}
    for check in asset_checklist(asset):
        tick = check.item in checked
        note = notes.get(check.item, check.note)
        if check.pk is not None and (tick, note) == (check.checked, check.note):
            continue
        if check.pk is None and not tick and not note:
            continue
        before[check.item] = check.checked
        after[check.item] = tick
        check.checked, check.note, check.checked_by, check.checked_at = tick, note, actor.user, now
        check.save()
    if after:
        audit_record(
            actor=actor,
            action="asset.checklist",
            target=asset,
            organisation=actor.organisation,
            before=before,
            after=after,
        )
    return asset_checklist(asset)


PREQUALIFICATION_DECISIONS = {
    "approve": FlexAsset.Prequalification.APPROVED,
    "reject": FlexAsset.Prequalification.REJECTED,
    "suspend": FlexAsset.Prequalification.SUSPENDED,
}


@transaction.atomic
def asset_prequalify(*, actor: Actor, asset: FlexAsset, decision: str, reason: str = "") -> FlexAsset:
    """The zone's DSO approves (every mandatory checklist item ticked), rejects (with reason) or suspends (with
    reason) an asset."""
    asset = _require_zone_dso(actor, asset)
    if decision not in PREQUALIFICATION_DECISIONS:
        raise DomainError(GridErrorCode.INVALID_STATE, "Decide approve, reject or suspend.", field="decision")
    if decision in ("reject", "suspend") and not reason.strip():
        raise DomainError(GridErrorCode.REASON_REQUIRED, "Give the ESP a reason.", field="reason")
    if decision == "suspend" and asset.prequalification != FlexAsset.Prequalification.APPROVED:
        raise DomainError(
            GridErrorCode.INVALID_STATE, "Only approved assets can be suspended.", field="decision"
        )
    if decision == "approve":
        missing = [check for check in asset_checklist(asset) if check.mandatory and not check.checked]
        if missing:
            raise DomainError(
                GridErrorCode.CHECKLIST_INCOMPLETE,
                "Tick every mandatory checklist item before approving; still open: "
                + "; ".join(check.get_item_display() for check in missing)
                + ".",
                field="decision",
                extra={"missing": [check.item for check in missing]},
            )
    before = {"prequalification": asset.prequalification}
    asset.prequalification = PREQUALIFICATION_DECISIONS[decision]
    asset.prequalification_reason = reason.strip()
    asset.prequalified_at = timezone.now()
    asset.prequalified_by = actor.user
    asset.save(
        update_fields=["prequalification", "prequalification_reason", "prequalified_at", "prequalified_by"]
    )
    audit_record(
        actor=actor,
        action=f"asset.{decision}",
        target=asset,
        organisation=actor.organisation,
        before=before,
        after={"prequalification": asset.prequalification},
        reason=reason,
    )
    notify_organisation(
        category=Notification.Category.GRID,
        organisation=asset.owner,
        title=f"{asset.name}: prequalification {asset.get_prequalification_display().lower()}",
        body=reason,
        link=f"/grid/assets/{asset.pk}/",
    )
    return asset


@transaction.atomic
def asset_archive(*, actor: Actor, asset: FlexAsset) -> FlexAsset:
    _require_role(actor, Role.ESP, GridErrorCode.NOT_ESP)
    if asset.owner_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.INVALID_ASSET, "Only the owner archives an asset.")
    asset.archived_at = timezone.now()
    asset.save(update_fields=["archived_at"])
    audit_record(actor=actor, action="asset.archive", target=asset)
    return asset


# --- portfolios -------------------------------------------------------------------------------------


@transaction.atomic
def portfolio_create(*, actor: Actor, name: str, assets: list[FlexAsset]) -> Portfolio:
    """Group approved assets of one ESP in one zone."""
    _require_role(actor, Role.ESP, GridErrorCode.NOT_ESP)
    if not name.strip():
        raise DomainError(GridErrorCode.PORTFOLIO_INVALID, "Give the portfolio a name.", field="name")
    if not assets:
        raise DomainError(GridErrorCode.PORTFOLIO_INVALID, "Choose at least one asset.", field="assets")
    if Portfolio.objects.filter(owner=actor.organisation, name=name.strip()).exists():
        raise DomainError(
            GridErrorCode.PORTFOLIO_INVALID, "You already have a portfolio with this name.", field="name"
        )
    zones = {asset.grid_location_id for asset in assets}
    if any(asset.owner_id != actor.organisation.pk for asset in assets):
        raise DomainError(
            GridErrorCode.PORTFOLIO_INVALID, "Only your own assets can be grouped.", field="assets"
        )
    if any(not asset.can_trade for asset in assets):
        raise DomainError(
            GridErrorCode.PORTFOLIO_INVALID,
            "Only approved assets inside a zone can be grouped.",
            field="assets",
        )
    if len(zones) != 1:
        raise DomainError(
            GridErrorCode.PORTFOLIO_INVALID, "All assets of a portfolio must be in one zone.", field="assets"
        )
    portfolio = Portfolio.objects.create(
        owner=actor.organisation, grid_location_id=zones.pop(), name=name.strip()
    )
    portfolio.assets.set(assets)
    audit_record(
        actor=actor, action="portfolio.create", target=portfolio, after={"assets": [a.pk for a in assets]}
    )
    return portfolio


def portfolio_capabilities(portfolio: Portfolio) -> dict[str, Decimal]:
    """Summed capabilities of the portfolio's assets."""
    assets = list(portfolio.assets.all())
    return {
        "max_up_kw": sum((a.max_up_kw for a in assets), Decimal("0")),
        "max_down_kw": sum((a.max_down_kw for a in assets), Decimal("0")),
        "energy_capacity_kwh": sum((a.energy_capacity_kwh or Decimal("0") for a in assets), Decimal("0")),
        "asset_count": Decimal(len(assets)),
    }


# --- network models and power flow -----------------------------------------------------------------


@transaction.atomic
def network_model_create(
    *, actor: Actor, name: str, network_json: str | None = None, example: str | None = None
) -> NetworkModel:
    """Upload a pandapower network (JSON) or start from a bundled example; each upload is a new version."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    name = validation.clean_text(
        name, field="name", code=GridErrorCode.NETWORK_INVALID, max_length=NETWORK_NAME_MAX
    )
    try:
        if example:
            network_json = network.example_network_json(example)
        if not network_json:
            raise network.NetworkError("Upload a pandapower JSON file or choose an example.")
        jsonio.loads(network_json)
        net = network.load_network(network_json)
    except (network.NetworkError, jsonio.JsonInputError) as error:
        raise DomainError(GridErrorCode.NETWORK_INVALID, str(error), field="file")
    summary = network.network_summary(net)
    last = NetworkModel.objects.filter(dso=actor.organisation, name=name.strip()).order_by("-version").first()
    model = NetworkModel.objects.create(
        dso=actor.organisation,
        name=name.strip(),
        version=(last.version + 1) if last else 1,
        source=example or "upload",
        network_json=network_json,
        bus_count=summary["buses"],
        line_count=summary["lines"],
        created_by=actor.user,
    )
    audit_record(
        actor=actor, action="network_model.create", target=model, after=summary | {"version": model.version}
    )
    network_model_map_zones(actor=actor, network_model=model, net=net)
    return model


@transaction.atomic
def network_model_load_request(
    *, actor: Actor, name: str, network_json: str | None = None, example: str | None = None
) -> NetworkModelLoad:
    """Queue the loading of a network model: cheap checks now, pandapower on a worker after commit.

    Parsing a real network and mapping its buses to zones takes seconds (tens for MV Oberrhein), too long for
    a web request; the answer is the run to watch. Input that is plainly wrong (no name, no file and no
    example, not JSON, nested too deep, not a pandapower document) is refused here, with nothing written.
    """
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    name = validation.clean_text(
        name, field="name", code=GridErrorCode.NETWORK_INVALID, max_length=NETWORK_NAME_MAX
    )
    try:
        if example:
            if example not in network.EXAMPLES:
                raise network.NetworkError(
                    f"Unknown example network {example!r}; choose one of {', '.join(network.EXAMPLES)}."
                )
            network_json = ""
        elif not network_json:
            raise network.NetworkError("Upload a pandapower JSON file or choose an example.")
        else:
            network.check_network_document(jsonio.loads(network_json))
    except (network.NetworkError, jsonio.JsonInputError) as error:
        raise DomainError(GridErrorCode.NETWORK_INVALID, str(error), field="file")
    load = NetworkModelLoad.objects.create(
        dso=actor.organisation,
        name=name.strip(),
        example=example or "",
        network_json=network_json,
        requested_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="network_model.load_request",
        target=load,
        after={"name": load.name, "source": example or "upload", "bytes": len(network_json)},
    )
    from grid.tasks import network_model_load_task

    runs.run_enqueue_on_commit(load, task=network_model_load_task, refuse_when_unavailable=True)
    return load


def network_model_load_execute(*, run_id: int) -> NetworkModelLoad | None:
    """Load a queued network under a lease (flexmarket/runs.py); a failure is recorded on the run, not raised.

    Idempotent: a run that already finished is left alone, so a second delivery of the task changes nothing.
    Raises RunBusy while another attempt holds the run (the task retries after the lease).
    """
    return runs.run_execute(
        NetworkModelLoad,
        pk=run_id,
        work=_network_model_load,
        expected=(network.NetworkError,),
        on_failed=_network_model_load_failed,
    )


def _network_model_load(load: NetworkModelLoad) -> dict:
    actor = Actor(user=load.requested_by, organisation=Organisation.objects.get(pk=load.dso_id))
    model = network_model_create(
        actor=actor, name=load.name, network_json=load.network_json or None, example=load.example or None
    )
    # The network now lives in the model; the run keeps only the outcome.
    return {"network_model": model, "network_json": ""}


def _network_model_load_failed(load: NetworkModelLoad) -> None:
    """A failed load is final: drop the uploaded file it kept, and record the failure in the audit trail."""
    NetworkModelLoad.objects.filter(pk=load.pk).update(network_json="")
    audit_record(
        actor=Actor(user=None, organisation=load.dso),
        action="network_model.load_failed",
        target=load,
        after={"state": load.state, "attempt": load.attempts, "error": load.error[:500]},
    )


def network_model_loads_sweep() -> runs.SweepReport:
    """Re-send or fail network loads that lost their worker or their message (beat, every minute)."""
    from grid.tasks import network_model_load_task

    return runs.run_sweep(
        NetworkModelLoad, task=network_model_load_task, on_failed=_network_model_load_failed
    )


@transaction.atomic
def network_model_map_zones(
    *, actor: Actor, network_model: NetworkModel, mapping: dict[int, int] | None = None, net=None
) -> dict[int, int]:
    """Map buses to the DSO's zones: the given mapping, or suggested by bus coordinates inside zone polygons."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    if network_model.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the network's DSO maps its zones.")
    own_zones = set(
        GridLocation.objects.filter(dso=actor.organisation, archived_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    if mapping is None:
        net = net if net is not None else network.load_network(network_model.network_json)
        mapping = network.suggest_zone_buses(net, zone_shapes(dso_id=actor.organisation.pk))
    foreign = {zone for zone in mapping.values() if zone not in own_zones}
    if foreign:
        raise DomainError(
            GridErrorCode.NOT_ZONE_DSO, "Buses can only be mapped to your own zones.", field="mapping"
        )
    ZoneBusMapping.objects.filter(network_model=network_model).delete()
    ZoneBusMapping.objects.bulk_create(
        ZoneBusMapping(network_model=network_model, bus_index=bus, grid_location_id=zone)
        for bus, zone in mapping.items()
    )
    audit_record(
        actor=actor, action="network_model.map_zones", target=network_model, after={"buses": len(mapping)}
    )
    return mapping


@transaction.atomic
def power_flow_run_request(
    *,
    actor: Actor,
    network_model: NetworkModel,
    scenario: str = "base",
    load_scaling: float = 1.0,
    generation_scaling: float = 1.0,
) -> PowerFlowRun:
    """Queue a power flow for a load scenario; a Celery task runs it after commit."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    if network_model.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the network's DSO runs power flows on it.")
    for field, value in (("load_scaling", load_scaling), ("generation_scaling", generation_scaling)):
        if not 0 <= value <= 10:
            raise DomainError(GridErrorCode.NETWORK_INVALID, "Scaling must be between 0 and 10.", field=field)
    run = PowerFlowRun.objects.create(
        network_model=network_model,
        scenario=scenario[:40] or "base",
        load_scaling=load_scaling,
        generation_scaling=generation_scaling,
        requested_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="power_flow.request",
        target=run,
        after={"load": load_scaling, "gen": generation_scaling},
    )
    from grid.tasks import power_flow_run_task

    runs.run_enqueue_on_commit(run, task=power_flow_run_task, refuse_when_unavailable=True)
    return run


def power_flow_run_execute(*, run_id: int) -> PowerFlowRun | None:
    """Run a queued power flow once under a lease (flexmarket/runs.py); any failure is recorded on the run.

    Raises RunBusy while another attempt holds the run (the task retries after the lease).
    """
    return runs.run_execute(
        PowerFlowRun,
        pk=run_id,
        work=_power_flow_compute,
        expected=(network.NetworkError,),
        on_failed=_power_flow_audit_failure,
    )


def _power_flow_compute(run: PowerFlowRun) -> dict:
    network_model = NetworkModel.objects.select_related("dso").get(pk=run.network_model_id)
    net = network.load_network(network_model.network_json)
    result = network.run_power_flow(
        net, load_scaling=run.load_scaling, generation_scaling=run.generation_scaling
    )
    statuses = network.zone_statuses(result, bus_zone_mapping(network_model=network_model))
    fields = {
        "results": result.as_json() | {"zone_status": {str(k): v for k, v in statuses.items()}},
        "max_line_loading_percent": result.max_line_loading_percent,
        "min_voltage_pu": result.min_voltage_pu,
        "max_voltage_pu": result.max_voltage_pu,
    }
    requester = Actor(user=run.requested_by, organisation=network_model.dso)
    changed = {}
    for zone in GridLocation.objects.filter(pk__in=statuses.keys(), archived_at__isnull=True):
        if zone.status != statuses[zone.pk]:
            changed[str(zone.pk)] = [zone.status, statuses[zone.pk]]
            grid_location_set_status(
                actor=requester,
                grid_location=zone,
                status=statuses[zone.pk],
                source=GridLocation.StatusSource.POWER_FLOW,
                reason=f"Power flow run #{run.pk} ({run.scenario}, load ×{run.load_scaling})",
            )
    audit_record(
        actor=Actor(user=None, organisation=network_model.dso),
        action="power_flow.result",
        target=run,
        after={
            "state": PowerFlowRun.State.SUCCEEDED,
            "attempt": run.attempts,
            "max_line_loading_percent": result.max_line_loading_percent,
            "min_voltage_pu": result.min_voltage_pu,
            "max_voltage_pu": result.max_voltage_pu,
            "zone_status_changes": changed,
        },
    )
    return fields


def _power_flow_audit_failure(run: PowerFlowRun) -> None:
    audit_record(
        actor=Actor(user=None, organisation=run.network_model.dso),
        action="power_flow.failed",
        target=run,
        after={"state": run.state, "attempt": run.attempts, "error": run.error[:500]},
    )


def power_flow_runs_sweep() -> runs.SweepReport:
    """Re-send or fail power-flow runs that lost their worker or their message (beat, every minute)."""
    from grid.tasks import power_flow_run_task

    return runs.run_sweep(PowerFlowRun, task=power_flow_run_task, on_failed=_power_flow_audit_failure)


# --- background imports (flexmarket.imports) --------------------------------------------------------


def assets_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    return {"count": len(assets_import_csv(actor=actor, file=file, progress=progress))}


def zones_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    zones = grid_locations_import_geojson(actor=actor, data=geojson_upload_read(file), progress=progress)
    return {"count": len(zones)}


# --- network topology, bus mappings and congestion forecasts ----------------------------------------

FORECAST_CSV_COLUMNS = ["bus", "zone", "ptu_start", "p_kw", "q_kvar"]


def _require_own_model(actor: Actor, network_model: NetworkModel) -> None:
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    if network_model.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the network's DSO does this.")


@transaction.atomic
def grid_locations_from_feeders(
    *, actor: Actor, network_model: NetworkModel, name_prefix: str, code_prefix: str
) -> list[GridLocation]:
    """One zone per feeder of the network (below its HV/MV substation), its buses mapped to it."""
    _require_own_model(actor, network_model)
    net = network_model_net(network_model)
    parts = timeseries.feeders(net)
    if not parts:
        raise DomainError(
            GridErrorCode.NETWORK_INVALID, "The network has no feeders with loads or generators."
        )
    shapes = timeseries.feeder_polygons(net, parts)
    zones = [
        grid_location_create(
            actor=actor,
            name=f"{name_prefix} feeder {number}",
            code=f"{code_prefix}.f{number}",
            geometry=shape,
            voltage_level=GridLocation.VoltageLevel.MV,
        )
        for number, shape in enumerate(shapes, start=1)
    ]
    mapping = {bus: zone.pk for zone, part in zip(zones, parts, strict=True) for bus in part}
    network_model_map_zones(actor=actor, network_model=network_model, mapping=mapping)
    return zones


@transaction.atomic
def zone_buses_set(
    *, actor: Actor, network_model: NetworkModel, grid_location: GridLocation, buses: list[int]
) -> list[int]:
    """Map exactly these buses to the zone (taking them from any other zone); other buses of the zone are freed."""
    _require_own_model(actor, network_model)
    if grid_location.dso_id != actor.organisation.pk or grid_location.archived_at is not None:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Buses can only be mapped to your own zones.")
    known = set(network_model_net(network_model).bus.index.astype(int).tolist())
    unknown = sorted(set(buses) - known)
    if unknown:
        raise DomainError(
            GridErrorCode.MAPPING_INVALID,
            f"The network has no bus {', '.join(map(str, unknown[:10]))}.",
            field="buses",
        )
    ZoneBusMapping.objects.filter(network_model=network_model, grid_location=grid_location).delete()
    ZoneBusMapping.objects.filter(network_model=network_model, bus_index__in=buses).delete()
    ZoneBusMapping.objects.bulk_create(
        ZoneBusMapping(network_model=network_model, grid_location=grid_location, bus_index=bus)
        for bus in sorted(set(buses))
    )
    audit_record(
        actor=actor,
        action="network_model.zone_buses",
        target=network_model,
        after={"zone": grid_location.pk, "buses": sorted(set(buses))},
    )
    return sorted(set(buses))


@transaction.atomic
def asset_bus_set(
    *, actor: Actor, network_model: NetworkModel, asset: FlexAsset, bus_index: int | None
) -> AssetBusMapping | None:
    """Connect an asset in one of the DSO's zones to a bus; None goes back to the nearest bus in its zone."""
    _require_own_model(actor, network_model)
    if asset.grid_location is None or asset.grid_location.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only assets in your zones can be mapped.")
    AssetBusMapping.objects.filter(network_model=network_model, asset=asset).delete()
    if bus_index is None:
        audit_record(actor=actor, action="asset.bus_reset", target=asset, after={"model": network_model.pk})
        return None
    if bus_index not in set(network_model_net(network_model).bus.index.astype(int).tolist()):
        raise DomainError(
            GridErrorCode.MAPPING_INVALID, f"The network has no bus {bus_index}.", field="bus_index"
        )
    mapping = AssetBusMapping.objects.create(
        network_model=network_model, asset=asset, bus_index=bus_index, set_by=actor.user
    )
    audit_record(
        actor=actor, action="asset.bus_set", target=asset, after={"model": network_model.pk, "bus": bus_index}
    )
    return mapping


def _forecast_ptu_starts(delivery_day) -> list:
    return ptu.ptu_starts(delivery_day, settings.FLEXMARKET_GRID_TIME_ZONE)


def _number(value, field: str) -> float:
    try:
        number = float(Decimal(str(value).strip()))
    except (ArithmeticError, ValueError):
        raise DomainError(GridErrorCode.FORECAST_INVALID, f"{field} is not a number.", field=field)
    if not math.isfinite(number) or abs(number) > 1e6:
        raise DomainError(GridErrorCode.FORECAST_INVALID, f"{field} must be within ±1,000,000.", field=field)
    return number


@transaction.atomic
def forecast_upload_csv(*, actor: Actor, network_model: NetworkModel, delivery_day, file) -> ForecastUpload:
    """The DSO's own forecast for a day from CSV (header: bus,zone,ptu_start,p_kw,q_kvar; one of bus or zone).

    A bus or zone given for a PTU replaces the profile there (a zone's value is spread over its buses in
    proportion to their loads). Any bad row: nothing is stored, every bad row is reported.
    """
    _require_own_model(actor, network_model)
    known_buses = set(network_model_net(network_model).bus.index.astype(int).tolist())
    zone_codes = dict(
        GridLocation.objects.filter(dso=actor.organisation, archived_at__isnull=True).values_list(
            "code", "pk"
        )
    )
    starts = {start: index for index, start in enumerate(_forecast_ptu_starts(delivery_day))}
    errors = ImportErrors(GridErrorCode.FORECAST_INVALID)
    reader = CsvReader(
        file, code=GridErrorCode.FORECAST_INVALID, required=FORECAST_CSV_COLUMNS, errors=errors
    )
    values: dict[str, dict[str, list[float]]] = {}
    rows = 0
    for row_number, row in reader:
        try:
            bus, zone = (row.get("bus") or "").strip(), (row.get("zone") or "").strip()
            if bool(bus) == bool(zone):
                raise DomainError(GridErrorCode.FORECAST_INVALID, "Give either a bus or a zone.", field="bus")
            if bus:
                if not bus.lstrip("-").isdigit() or int(bus) not in known_buses:
                    raise DomainError(
                        GridErrorCode.FORECAST_INVALID, f"No bus {bus} in the network.", field="bus"
                    )
                target = f"bus:{int(bus)}"
            else:
                if zone not in zone_codes:
                    raise DomainError(
                        GridErrorCode.FORECAST_INVALID, f"No zone of yours has code {zone}.", field="zone"
                    )
                target = f"zone:{zone_codes[zone]}"
            try:
                start = datetime.fromisoformat((row.get("ptu_start") or "").strip())
            except ValueError:
                raise DomainError(
                    GridErrorCode.FORECAST_INVALID, "ptu_start is not an ISO 8601 time.", field="ptu_start"
                )
            if start.tzinfo is None:
                raise DomainError(
                    GridErrorCode.FORECAST_INVALID, "ptu_start needs a UTC offset.", field="ptu_start"
                )
            index = starts.get(start.astimezone(ptu.UTC))
            if index is None:
                raise DomainError(
                    GridErrorCode.FORECAST_INVALID,
                    f"ptu_start is not the start of a PTU of {delivery_day}.",
                    field="ptu_start",
                )
            point = [_number(row.get("p_kw"), "p_kw"), _number(row.get("q_kvar") or "0", "q_kvar")]
            if str(index) in values.get(target, {}):
                raise DomainError(
                    GridErrorCode.FORECAST_INVALID, "This bus or zone and PTU came before.", field="ptu_start"
                )
            values.setdefault(target, {})[str(index)] = point
            rows += 1
        except DomainError as error:
            errors.add_error(row_number, error)
    errors.raise_if_any()
    if not rows:
        raise DomainError(GridErrorCode.FORECAST_INVALID, "The file has no rows.", field="file")
    upload = ForecastUpload.objects.create(
        network_model=network_model,
        delivery_day=delivery_day,
        values=values,
        row_count=rows,
        uploaded_by=actor.user,
    )
    audit_record(
        actor=actor, action="forecast.upload", target=upload, after={"rows": rows, "day": str(delivery_day)}
    )
    return upload


@transaction.atomic
def forecast_run_request(
    *,
    actor: Actor,
    network_model: NetworkModel,
    delivery_day,
    load_scaling: float = 1.0,
    generation_scaling: float = 1.0,
) -> ForecastRun:
    """Queue a congestion forecast for a delivery day; a Celery task runs it after commit."""
    _require_own_model(actor, network_model)
    for field, value in (("load_scaling", load_scaling), ("generation_scaling", generation_scaling)):
        if not 0 <= value <= 10:
            raise DomainError(
                GridErrorCode.FORECAST_INVALID, "Scaling must be between 0 and 10.", field=field
            )
    run = ForecastRun.objects.create(
        network_model=network_model,
        delivery_day=delivery_day,
        load_scaling=load_scaling,
        generation_scaling=generation_scaling,
        requested_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="forecast.request",
        target=run,
        after={"day": str(delivery_day), "load": load_scaling, "gen": generation_scaling},
    )
    from grid.tasks import forecast_run_task

    runs.run_enqueue_on_commit(run, task=forecast_run_task, refuse_when_unavailable=True)
    return run


def forecast_run_execute(*, run_id: int, prognoses=None) -> ForecastRun | None:
    """Run a queued forecast under a lease; `prognoses(asset_ids=, delivery_day=)` gives assets' kW per PTU
    (default: FLEXMARKET_FORECAST_PROGNOSES). Any failure is recorded on the run."""
    reader = prognoses or import_string(settings.FLEXMARKET_FORECAST_PROGNOSES)
    return runs.run_execute(
        ForecastRun,
        pk=run_id,
        work=lambda run: _forecast_compute(run, reader),
        expected=(network.NetworkError, timeseries.TimeSeriesError),
        on_failed=_forecast_audit_failure,
    )


def forecast_injections(*, network_model: NetworkModel, delivery_day, prognoses) -> tuple:
    """The forecast operating point per PTU: SimBench profiles (or the network's own values), the latest upload
    for the day, and the D-prognoses of approved assets at their buses. Returns (net, injections, inputs)."""
    net = network_model_net(network_model)
    starts = _forecast_ptu_starts(delivery_day)
    count = len(starts)
    inputs: dict[str, Any] = {}
    if network_model.source.startswith(network.SIMBENCH_PREFIX):
        profiles = network.simbench_profiles(network_model.source.removeprefix(network.SIMBENCH_PREFIX))
        zone = ZoneInfo(settings.FLEXMARKET_GRID_TIME_ZONE)
        rows = timeseries.profile_rows([start.astimezone(zone) for start in starts])
        injections = timeseries.Injections(
            load_p_mw=profiles["load_p_mw"][rows],
            load_q_mvar=profiles["load_q_mvar"][rows],
            sgen_p_mw=profiles["sgen_p_mw"][rows],
            sgen_q_mvar=np.zeros((count, len(net.sgen))),
            bus_p_mw=np.zeros((count, len(net.bus))),
            bus_q_mvar=np.zeros((count, len(net.bus))),
        )
        inputs["profiles"] = network_model.source
    else:
        injections = timeseries.static_injections(net, count)
        inputs["profiles"] = "the network's own values in every PTU"
    bus_position = {int(b): i for i, b in enumerate(net.bus.index)}
    upload = (
        ForecastUpload.objects.filter(network_model=network_model, delivery_day=delivery_day)
        .order_by("-created_at")
        .first()
    )
    if upload is not None:
        zone_buses: dict[int, list[int]] = {}
        for bus, zone_id in bus_zone_mapping(network_model=network_model).items():
            zone_buses.setdefault(zone_id, []).append(bus)
        nominal = net.load.groupby("bus")["p_mw"].sum()
        load_bus = net.load["bus"].to_numpy()
        sgen_bus = net.sgen["bus"].to_numpy()
        for target, points in upload.values.items():
            kind, key = target.split(":")
            buses = [int(key)] if kind == "bus" else sorted(zone_buses.get(int(key), []))
            weights = np.array([float(nominal.get(bus, 0.0)) for bus in buses])
            weights = (
                weights / weights.sum() if weights.sum() > 0 else np.full(len(buses), 1 / max(len(buses), 1))
            )
            for index_text, (p_kw, q_kvar) in points.items():
                index = int(index_text)
                for bus, weight in zip(buses, weights, strict=True):
                    injections.load_p_mw[index, load_bus == bus] = 0.0
                    injections.load_q_mvar[index, load_bus == bus] = 0.0
                    injections.sgen_p_mw[index, sgen_bus == bus] = 0.0
                    injections.bus_p_mw[index, bus_position[bus]] = p_kw / 1000 * weight
                    injections.bus_q_mvar[index, bus_position[bus]] = q_kvar / 1000 * weight
        inputs["upload"] = upload.pk
    buses = asset_buses(network_model=network_model)
    values = prognoses(asset_ids=list(buses), delivery_day=delivery_day) if buses else {}
    for asset_id, series in values.items():
        if asset_id in buses and len(series) == count:
            injections.bus_p_mw[:, bus_position[buses[asset_id]]] += np.asarray(series, dtype=float) / 1000
    inputs["prognoses"] = len([a for a, s in values.items() if a in buses and len(s) == count])
    return net, injections, inputs


def _scaled(injections: timeseries.Injections, run: ForecastRun) -> timeseries.Injections:
    """The operating point with the run's load and generation scaling applied."""
    return timeseries.Injections(
        load_p_mw=injections.load_p_mw * run.load_scaling,
        load_q_mvar=injections.load_q_mvar * run.load_scaling,
        sgen_p_mw=injections.sgen_p_mw * run.generation_scaling,
        sgen_q_mvar=injections.sgen_q_mvar * run.generation_scaling,
        bus_p_mw=injections.bus_p_mw,
        bus_q_mvar=injections.bus_q_mvar,
    )


def network_linearise_day(
    *, network_model: NetworkModel, delivery_day, ptu_starts: list, prognoses=None, operating_points=False
):
    """The network linearised at each given PTU (UTC starts) of a delivery day, for network-aware clearing.

    The operating point is the DSO's latest succeeded forecast run for the day (profiles, upload and prognoses
    as that run builds them, with its scaling), else the network's own values in every PTU (the base point).
    Returns (forecast run or None, [Sensitivities per PTU]); with operating_points, (forecast run or None,
    (PowerFlowModel, bus P MW, bus Q Mvar per PTU)) instead, for AC validation to linearise and re-run itself.
    Raises DomainError with the reason when the forecast's day does not cover a PTU or a power flow does not
    converge."""
    run = (
        ForecastRun.objects.filter(
            network_model=network_model, delivery_day=delivery_day, state=ForecastRun.State.SUCCEEDED
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if run is None:
        net = network_model_net(network_model)
        injections = timeseries.static_injections(net, len(ptu_starts))
        rows = list(range(len(ptu_starts)))
    else:
        reader = prognoses or import_string(settings.FLEXMARKET_FORECAST_PROGNOSES)
        net, injections, _ = forecast_injections(
            network_model=network_model, delivery_day=delivery_day, prognoses=reader
        )
        injections = _scaled(injections, run)
        index = {start: n for n, start in enumerate(_forecast_ptu_starts(delivery_day))}
        missing = [start for start in ptu_starts if start not in index]
        if missing:
            raise DomainError(
                GridErrorCode.FORECAST_INVALID,
                f"Forecast #{run.pk} covers {delivery_day} in {settings.FLEXMARKET_GRID_TIME_ZONE}, not the PTU "
                f"starting {moment_label(missing[0], ZoneInfo(settings.FLEXMARKET_GRID_TIME_ZONE))}.",
            )
        rows = [index[start] for start in ptu_starts]
    from grid import sensitivity  # pandapower's power-flow internals: loaded only when a clearing needs them

    try:
        if operating_points:
            return run, sensitivity.operating_points(net, injections, rows)
        points = sensitivity.linearise_points(net, injections, rows)
    except ValueError as error:
        raise DomainError(GridErrorCode.NETWORK_INVALID, f"{network_model}: {error}.") from error
    return run, points


def _forecast_compute(run: ForecastRun, prognoses) -> dict:
    network_model = NetworkModel.objects.select_related("dso").get(pk=run.network_model_id)
    net, injections, inputs = forecast_injections(
        network_model=network_model, delivery_day=run.delivery_day, prognoses=prognoses
    )
    injections = _scaled(injections, run)
    started = time.perf_counter()
    result = timeseries.run_time_series(net, injections)
    seconds = time.perf_counter() - started
    mapping = bus_zone_mapping(network_model=network_model)
    zone_ids = sorted(set(mapping.values()))
    number = {zone_id: n for n, zone_id in enumerate(zone_ids)}
    line_zones, trafo_zones = timeseries.branch_zones(
        net, {bus: number[zone] for bus, zone in mapping.items()}, len(zone_ids)
    )
    index = np.array([number.get(mapping.get(int(bus), -1), -1) for bus in net.bus.index])
    states = timeseries.zone_states(
        result,
        line_zones=line_zones,
        trafo_zones=trafo_zones,
        bus_zone_index=index,
        zone_count=len(zone_ids),
    )
    zone_states = {str(zone_id): "".join(str(s) for s in states[:, n]) for zone_id, n in number.items()}
    congested = int((states == timeseries.CONGESTED).any(axis=1).sum()) if zone_ids else 0
    congested_ptus = [int(t) for t in np.flatnonzero((states == timeseries.CONGESTED).any(axis=1))]
    zone_buses: dict[int, list[int]] = {}
    for bus, zone_id in mapping.items():
        zone_buses.setdefault(zone_id, []).append(int(bus))
    started = time.perf_counter()
    found_needs = (
        needs.needs_for_forecast(net, injections, ptus=congested_ptus, zone_buses=zone_buses)
        if congested_ptus and zone_buses
        else {"zones": {}, "unsolvable": [], "linear_ok": []}
    )
    found_needs["seconds"] = round(time.perf_counter() - started, 3)
    fields = {
        "ptu_count": injections.ptu_count,
        "inputs": inputs,
        "results": {
            "line_index": [int(i) for i in net.line.index],
            "trafo_index": [int(i) for i in net.trafo.index],
            "bus_index": [int(i) for i in net.bus.index],
            "line_loading_percent": np.round(result.line_loading_percent.T, 2).tolist(),
            "trafo_loading_percent": np.round(result.trafo_loading_percent.T, 2).tolist(),
            "bus_voltage_pu": np.round(result.bus_voltage_pu.T, 4).tolist(),
        },
        "zone_states": zone_states,
        "max_line_loading_percent": round(float(np.nanmax(result.line_loading_percent, initial=0)), 2),
        "min_voltage_pu": round(float(np.nanmin(result.bus_voltage_pu)), 4),
        "max_voltage_pu": round(float(np.nanmax(result.bus_voltage_pu)), 4),
        "congested_ptus": congested,
        "seconds": round(seconds, 4),
        "needs": found_needs,
    }
    audit_record(
        actor=Actor(user=None, organisation=network_model.dso),
        action="forecast.result",
        target=run,
        after={
            "attempt": run.attempts,
            "congested_ptus": congested,
            "max_line": fields["max_line_loading_percent"],
        },
    )
    return fields


def _forecast_audit_failure(run: ForecastRun) -> None:
    audit_record(
        actor=Actor(user=None, organisation=run.network_model.dso),
        action="forecast.failed",
        target=run,
        after={"state": run.state, "attempt": run.attempts, "error": run.error[:500]},
    )


def forecast_runs_sweep() -> runs.SweepReport:
    """Re-send or fail forecast runs that lost their worker or their message."""
    from grid.tasks import forecast_run_task

    return runs.run_sweep(ForecastRun, task=forecast_run_task, on_failed=_forecast_audit_failure)
