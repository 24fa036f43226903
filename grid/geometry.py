"""Polygon validation and point-in-zone lookup for grid locations (pure: shapely, no Django).

GeoJSON follows RFC 7946: WGS84, positions are [longitude, latitude], polygons are closed rings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

# Europe-centred plausibility box for "wrong coordinate order": a zone whose every position would be
# in this box with the axes swapped, but is not in it as given, was almost certainly sent as [lat, lon].
PLAUSIBLE_LON = (-32.0, 45.0)
PLAUSIBLE_LAT = (27.0, 72.0)
MAX_ZONE_AREA_DEG2 = 25.0  # about 250 km x 250 km at 50° N: larger is not a congestion zone
OVERLAP_TOLERANCE = 0.01  # share of the smaller zone's area


class GeometryError(ValueError):
    """The geometry is not a usable zone polygon; the message says why and where."""


@dataclass(frozen=True)
class ZoneShape:
    zone_id: int
    geometry: BaseGeometry


def _positions(coordinates) -> Iterable[Sequence[float]]:
    if coordinates and isinstance(coordinates[0], int | float):
        yield coordinates
        return
    for item in coordinates:
        yield from _positions(item)


def validate_polygon(geojson: dict) -> BaseGeometry:
    """Return the shapely geometry of a valid WGS84 Polygon/MultiPolygon, or raise GeometryError."""
    if not isinstance(geojson, dict):
        raise GeometryError("The geometry must be a GeoJSON object.")
    if geojson.get("type") == "Feature":
        geojson = geojson.get("geometry") or {}
    kind = geojson.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"A zone must be a Polygon or MultiPolygon, not {kind or 'nothing'}.")
    coordinates = geojson.get("coordinates")
    if not coordinates:
        raise GeometryError("The polygon has no coordinates.")
    rings = coordinates if kind == "Polygon" else [ring for polygon in coordinates for ring in polygon]
    for ring in rings:
        if len(ring) < 4:
            raise GeometryError("A ring needs at least four positions (three corners and the first again).")
        if list(ring[0]) != list(ring[-1]):
            raise GeometryError(
                f"The ring is not closed: it starts at {list(ring[0])} but ends at {list(ring[-1])}."
            )
    positions = list(_positions(coordinates))
    for lon, lat, *_ in positions:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeometryError(
                f"Position [{lon}, {lat}] is outside WGS84 bounds (longitude ±180, latitude ±90)."
            )
    if _looks_swapped(positions):
        raise GeometryError(
            "The coordinates look like [latitude, longitude]; GeoJSON (RFC 7946) wants [longitude, latitude]."
        )
    geometry = shape(geojson)
    if not geometry.is_valid:
        raise GeometryError(f"The polygon is not valid: {explain_validity(geometry)}.")
    if geometry.area == 0:
        raise GeometryError("The polygon has no area.")
    if geometry.area > MAX_ZONE_AREA_DEG2:
        raise GeometryError("The polygon is far too large for a congestion zone.")
    return geometry


def _looks_swapped(positions: list[Sequence[float]]) -> bool:
    def inside(lon: float, lat: float) -> bool:
        return PLAUSIBLE_LON[0] <= lon <= PLAUSIBLE_LON[1] and PLAUSIBLE_LAT[0] <= lat <= PLAUSIBLE_LAT[1]

    as_given = all(inside(p[0], p[1]) for p in positions)
    swapped = all(inside(p[1], p[0]) for p in positions)
    return swapped and not as_given


def bounds(geometry: BaseGeometry) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat)."""
    return tuple(float(v) for v in geometry.bounds)


def overlap_share(a: BaseGeometry, b: BaseGeometry) -> float:
    """Overlap area as a share of the smaller polygon (0: touching or apart)."""
    smaller = min(a.area, b.area)
    if smaller == 0 or not a.intersects(b):
        return 0.0
    return a.intersection(b).area / smaller


def locate_point(lon: float, lat: float, zones: Sequence[ZoneShape]) -> int | None:
    """The zone containing a point. On a shared border (covered by several) the lowest zone id wins."""
    point = Point(lon, lat)
    hits = [zone.zone_id for zone in zones if zone.geometry.covers(point)]
    return min(hits) if hits else None
