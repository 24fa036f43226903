"""Business actions for grid locations, network models and power flows, FlexAssets and portfolios."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Organisation, Role
from accounts.services import audit_record, notify_organisation
from flexmarket.errors import DomainError, ValidationErrors
from grid import geometry as geo
from grid import network
from grid.errors import GridErrorCode
from grid.models import FlexAsset, GridLocation, NetworkModel, Portfolio, PowerFlowRun, ZoneBusMapping
from grid.selectors import bus_zone_mapping, zone_shapes, zone_shapes_near

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
WINDOW_TEXT = re.compile(r"^([a-z]{3})(?:-([a-z]{3}))?\s+(\S+)-(\S+)$")


def _require_role(actor: Actor, role: str, code: GridErrorCode) -> None:
    if actor.organisation is None or not actor.organisation.is_approved or not actor.has_role(role):
        raise DomainError(code, f"Only an approved {role} can do this.")


# --- grid locations --------------------------------------------------------------------------------


def _clean_zone(
    *, actor: Actor, geometry: dict, code: str, exclude_id: int | None = None
) -> tuple[Any, list[str]]:
    """Validate geometry and code; refuse overlap with the DSO's own zones, warn about other DSOs' zones."""
    try:
        shape = geo.validate_polygon(geometry)
    except geo.GeometryError as error:
        raise DomainError(GridErrorCode.INVALID_GEOMETRY, str(error), field="geometry")
    if GridLocation.objects.filter(code=code).exclude(pk=exclude_id).exists():
        raise DomainError(
            GridErrorCode.CODE_TAKEN, f"Another zone already uses the code {code}.", field="code"
        )
    warnings = []
    for other in zone_shapes(exclude_id=exclude_id):
        share = geo.overlap_share(shape, other.geometry)
        if share <= geo.OVERLAP_TOLERANCE:
            continue
        other_zone = GridLocation.objects.select_related("dso").get(pk=other.zone_id)
        if other_zone.dso_id == actor.organisation.pk:
            raise DomainError(
                GridErrorCode.OVERLAP,
                f"The zone overlaps your zone {other_zone.name} by {share:.0%} of the smaller zone "
                f"(at most {geo.OVERLAP_TOLERANCE:.0%} is allowed).",
                field="geometry",
            )
        warnings.append(f"Overlaps {other_zone.name} of {other_zone.dso} by {share:.0%}.")
    return shape, warnings


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
    name, code = name.strip(), code.strip()
    if not name:
        raise DomainError(GridErrorCode.INVALID_GEOMETRY, "Give the zone a name.", field="name")
    if not code:
        raise DomainError(
            GridErrorCode.CODE_TAKEN, "Give the zone a code, e.g. its congestion point EAN.", field="code"
        )
    _validate_choice(voltage_level, GridLocation.VoltageLevel, "voltage_level")
    _validate_choice(status, GridLocation.Status, "status")
    shape, warnings = _clean_zone(actor=actor, geometry=geometry, code=code)
    min_lon, min_lat, max_lon, max_lat = geo.bounds(shape)
    zone = GridLocation.objects.create(
        dso=actor.organisation,
        name=name,
        code=code,
        voltage_level=voltage_level,
        status=status,
        status_reason=status_reason.strip(),
        status_changed_at=timezone.now(),
        geometry=geometry.get("geometry", geometry) if geometry.get("type") == "Feature" else geometry,
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
    )
    audit_record(actor=actor, action="grid_location.create", target=zone, after=_zone_snapshot(zone))
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
    if "code" in changes or "geometry" in changes:
        code = changes.get("code", zone.code).strip()
        geometry = changes.get("geometry", zone.geometry)
        shape, warnings = _clean_zone(actor=actor, geometry=geometry, code=code, exclude_id=zone.pk)
        zone.code = code
        zone.geometry = geometry
        zone.min_lon, zone.min_lat, zone.max_lon, zone.max_lat = geo.bounds(shape)
    if "name" in changes:
        if not changes["name"].strip():
            raise DomainError(GridErrorCode.INVALID_GEOMETRY, "Give the zone a name.", field="name")
        zone.name = changes["name"].strip()
    if "voltage_level" in changes:
        zone.voltage_level = _validate_choice(
            changes["voltage_level"], GridLocation.VoltageLevel, "voltage_level"
        )
    if "status" in changes and changes["status"] != zone.status:
        zone.status = _validate_choice(changes["status"], GridLocation.Status, "status")
        zone.status_source = GridLocation.StatusSource.MANUAL
        zone.status_reason = changes.get("status_reason", "")
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


@transaction.atomic
def grid_locations_import_geojson(*, actor: Actor, data: Any) -> list[GridLocation]:
    """Import a FeatureCollection; each feature needs properties name and code. All or nothing."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise DomainError(GridErrorCode.INVALID_IMPORT, "Upload a GeoJSON FeatureCollection.", field="file")
    errors, zones = [], []
    for index, feature in enumerate(data["features"], start=1):
        properties = (feature or {}).get("properties") or {}
        try:
            with transaction.atomic():
                zones.append(
                    grid_location_create(
                        actor=actor,
                        name=str(properties.get("name", "")),
                        code=str(properties.get("code", "")),
                        geometry=(feature or {}).get("geometry") or {},
                        voltage_level=properties.get("voltage_level", GridLocation.VoltageLevel.MV),
                        status=properties.get("status", GridLocation.Status.NORMAL),
                    )
                )
        except DomainError as error:
            errors.append({"row": index, "field": error.field, "message": error.message})
    if errors:
        raise ValidationErrors(
            GridErrorCode.INVALID_IMPORT,
            f"{len(errors)} feature(s) are invalid; nothing was imported.",
            errors,
        )
    if not zones:
        raise DomainError(GridErrorCode.INVALID_IMPORT, "The collection has no features.", field="file")
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
                "geometry": zone.geometry,
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
    for asset in FlexAsset.objects.filter(
        grid_location__isnull=True,
        longitude__gte=zone.min_lon,
        longitude__lte=zone.max_lon,
        latitude__gte=zone.min_lat,
        latitude__lte=zone.max_lat,
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


def _decimal(
    value, field: str, *, required: bool = True, minimum: Decimal | None = Decimal("0")
) -> Decimal | None:
    if value in (None, ""):
        if required:
            raise DomainError(GridErrorCode.INVALID_ASSET, "This field is required.", field=field)
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise DomainError(GridErrorCode.INVALID_ASSET, f"'{value}' is not a number.", field=field)
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise DomainError(GridErrorCode.INVALID_ASSET, f"Must be a number ≥ {minimum}.", field=field)
    return number


def _availability_error(message: str) -> DomainError:
    return DomainError(GridErrorCode.INVALID_ASSET, message, field="availability")


def _window_from_text(part: str) -> dict:
    match = WINDOW_TEXT.match(part.strip().lower())
    if not match or match.group(1) not in DAY_NAMES or (match.group(2) or "mon") not in DAY_NAMES:
        raise _availability_error(f'"{part.strip()}" is not a window like "mon-fri 07:00-22:00".')
    first = DAY_NAMES.index(match.group(1))
    last = DAY_NAMES.index(match.group(2)) if match.group(2) else first
    if last < first:
        raise _availability_error(f'"{part.strip()}": the day range runs backwards.')
    return {"days": list(range(first, last + 1)), "start": match.group(3), "end": match.group(4)}


def availability_clean(value) -> list[dict]:
    """Availability windows from JSON ([{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}]) or text
    ("mon-fri 07:00-22:00; sat 09:00-13:00"); empty means always available. Local market time."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [_window_from_text(part) for part in re.split(r"[;\n]", value) if part.strip()]
    if not isinstance(value, list):
        raise _availability_error("Availability is a list of windows.")
    windows = []
    for window in value:
        if not isinstance(window, dict):
            raise _availability_error("Each availability window is an object with days, start and end.")
        days, start, end = window.get("days"), str(window.get("start", "")), str(window.get("end", ""))
        if not isinstance(days, list) or not days or any(d not in range(7) for d in days):
            raise _availability_error("Window days are weekday numbers 0 (Monday) to 6 (Sunday).")
        if not HHMM.match(start) or not HHMM.match(end):
            raise _availability_error(f"Window times are HH:MM (got {start!r} to {end!r}).")
        if start >= end:
            raise _availability_error(f"A window ends after it starts ({start}–{end}).")
        windows.append({"days": sorted(set(days)), "start": start, "end": end})
    return windows


def asset_clean(data: dict) -> dict:
    """Validate asset fields from a form, CSV row or API payload; returns typed values."""
    name = str(data.get("name") or "").strip()
    if not name:
        raise DomainError(GridErrorCode.INVALID_ASSET, "Give the asset a name.", field="name")
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
    latitude = _decimal(data.get("latitude"), "latitude", minimum=None)
    longitude = _decimal(data.get("longitude"), "longitude", minimum=None)
    if not -90 <= latitude <= 90:
        raise DomainError(
            GridErrorCode.INVALID_ASSET, "Latitude must be between -90 and 90.", field="latitude"
        )
    if not -180 <= longitude <= 180:
        raise DomainError(
            GridErrorCode.INVALID_ASSET, "Longitude must be between -180 and 180.", field="longitude"
        )
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
        "latitude": float(latitude),
        "longitude": float(longitude),
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
                organisation=asset.grid_location.dso,
                title=f"New asset to prequalify in {asset.grid_location.name}",
                body=f"{asset.owner} registered {asset.name} ({asset.get_asset_type_display()}).",
                link="/grid/prequalification/",
            )
        )
    return asset


@transaction.atomic
def assets_import_csv(*, actor: Actor, file) -> list[FlexAsset]:
    """Register many assets from CSV (header row: ASSET_CSV_COLUMNS). Any bad row → nothing is imported."""
    _require_role(actor, Role.ESP, GridErrorCode.NOT_ESP)
    text = (
        io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        if not isinstance(file, io.StringIO)
        else file
    )
    reader = csv.DictReader(text)
    missing = [c for c in ASSET_CSV_COLUMNS[:7] if c not in (reader.fieldnames or [])]
    if missing:
        raise DomainError(
            GridErrorCode.INVALID_IMPORT, f"Missing columns: {', '.join(missing)}.", field="file"
        )
    assets, errors = [], []
    for row_number, row in enumerate(reader, start=2):
        try:
            with transaction.atomic():
                assets.append(asset_register(actor=actor, **{k: row.get(k) for k in ASSET_CSV_COLUMNS}))
        except DomainError as error:
            errors.append({"row": row_number, "field": error.field, "message": error.message})
    if errors:
        raise ValidationErrors(
            GridErrorCode.INVALID_IMPORT, f"{len(errors)} row(s) are invalid; nothing was imported.", errors
        )
    if not assets:
        raise DomainError(GridErrorCode.INVALID_IMPORT, "The file has no rows.", field="file")
    return assets


PREQUALIFICATION_DECISIONS = {
    "approve": FlexAsset.Prequalification.APPROVED,
    "reject": FlexAsset.Prequalification.REJECTED,
    "suspend": FlexAsset.Prequalification.SUSPENDED,
}


@transaction.atomic
def asset_prequalify(*, actor: Actor, asset: FlexAsset, decision: str, reason: str = "") -> FlexAsset:
    """The zone's DSO approves, rejects (with reason) or suspends (with reason) an asset."""
    _require_role(actor, Role.DSO, GridErrorCode.NOT_DSO)
    asset = FlexAsset.objects.select_for_update(of=("self",)).select_related("grid_location").get(pk=asset.pk)
    if asset.grid_location is None or asset.grid_location.dso_id != actor.organisation.pk:
        raise DomainError(GridErrorCode.NOT_ZONE_DSO, "Only the DSO of the asset's zone prequalifies it.")
    if decision not in PREQUALIFICATION_DECISIONS:
        raise DomainError(GridErrorCode.INVALID_STATE, "Decide approve, reject or suspend.", field="decision")
    if decision in ("reject", "suspend") and not reason.strip():
        raise DomainError(GridErrorCode.REASON_REQUIRED, "Give the ESP a reason.", field="reason")
    if decision == "suspend" and asset.prequalification != FlexAsset.Prequalification.APPROVED:
        raise DomainError(
            GridErrorCode.INVALID_STATE, "Only approved assets can be suspended.", field="decision"
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
    if not name.strip():
        raise DomainError(GridErrorCode.NETWORK_INVALID, "Give the network a name.", field="name")
    try:
        if example:
            network_json = network.example_network_json(example)
        if not network_json:
            raise network.NetworkError("Upload a pandapower JSON file or choose an example.")
        net = network.load_network(network_json)
    except network.NetworkError as error:
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

    transaction.on_commit(lambda: power_flow_run_task.delay(run.pk))
    return run


def power_flow_run_execute(*, run_id: int) -> PowerFlowRun:
    """Run a queued power flow once (claimed by a conditional update); failures are recorded on the run."""
    claimed = PowerFlowRun.objects.filter(pk=run_id, state=PowerFlowRun.State.PENDING).update(
        state=PowerFlowRun.State.RUNNING, started_at=timezone.now()
    )
    run = PowerFlowRun.objects.select_related("network_model", "network_model__dso").get(pk=run_id)
    if not claimed:
        return run
    try:
        net = network.load_network(run.network_model.network_json)
        result = network.run_power_flow(
            net, load_scaling=run.load_scaling, generation_scaling=run.generation_scaling
        )
    except network.NetworkError as error:
        run.state = PowerFlowRun.State.FAILED
        run.error = str(error)
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "error", "finished_at"])
        return run
    with transaction.atomic():
        bus_zone = bus_zone_mapping(network_model=run.network_model)
        statuses = network.zone_statuses(result, bus_zone)
        run.results = result.as_json() | {"zone_status": {str(k): v for k, v in statuses.items()}}
        run.max_line_loading_percent = result.max_line_loading_percent
        run.min_voltage_pu = result.min_voltage_pu
        run.max_voltage_pu = result.max_voltage_pu
        run.state = PowerFlowRun.State.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()
        system = Actor(user=run.requested_by, organisation=run.network_model.dso)
        for zone in GridLocation.objects.filter(pk__in=statuses.keys(), archived_at__isnull=True):
            if zone.status != statuses[zone.pk]:
                grid_location_set_status(
                    actor=system,
                    grid_location=zone,
                    status=statuses[zone.pk],
                    source=GridLocation.StatusSource.POWER_FLOW,
                    reason=f"Power flow run #{run.pk} ({run.scenario}, load ×{run.load_scaling})",
                )
    return run
