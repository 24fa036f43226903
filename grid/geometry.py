"""Polygon validation and point-in-zone lookup for grid locations (pure: shapely, no Django).

GeoJSON follows RFC 7946: WGS84, positions are [longitude, latitude], polygons are closed rings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shapely import STRtree
from shapely.geometry import Point, mapping, shape
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
    dso_id: int | None = None
    name: str = ""
    dso_name: str = ""


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_ring(ring, where: str) -> list[list[float]]:
    if not isinstance(ring, list):
        raise GeometryError(f"{where} must be a list of [longitude, latitude] positions.")
    for index, position in enumerate(ring):
        if (
            not isinstance(position, list)
            or not 2 <= len(position) <= 3
            or not all(_is_number(v) for v in position)
        ):
            raise GeometryError(
                f"{where}, position {index + 1} must be [longitude, latitude] numbers, not {str(position)[:40]}."
            )
    if len(ring) < 4:
        raise GeometryError("A ring needs at least four positions (three corners and the first again).")
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise GeometryError(f"The ring is not closed: it starts at {ring[0]} but ends at {ring[-1]}.")
    return ring


def _rings(kind: str, coordinates) -> list[list[list[float]]]:
    """Every ring of a Polygon or MultiPolygon, with the nesting checked level by level."""
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise GeometryError("The polygon has no coordinates.")
    rings = []
    for number, polygon in enumerate(polygons, start=1):
        label = "The polygon" if kind == "Polygon" else f"Polygon {number}"
        if not isinstance(polygon, list) or not polygon:
            raise GeometryError(f"{label} must be a list of rings.")
        for ring_number, ring in enumerate(polygon, start=1):
            rings.append(_check_ring(ring, f"{label}, ring {ring_number}"))
    return rings


def validate_polygon(geojson: dict, *, max_vertices: int | None = None) -> BaseGeometry:
    """Return the shapely geometry of a valid WGS84 Polygon/MultiPolygon, or raise GeometryError."""
    if not isinstance(geojson, dict):
        raise GeometryError("The geometry must be a GeoJSON object.")
    if geojson.get("type") == "Feature":
        geojson = geojson.get("geometry") or {}
        if not isinstance(geojson, dict):
            raise GeometryError("The feature's geometry must be a GeoJSON object.")
    kind = geojson.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"A zone must be a Polygon or MultiPolygon, not {str(kind)[:40] or 'nothing'}.")
    coordinates = geojson.get("coordinates")
    if not coordinates:
        raise GeometryError("The polygon has no coordinates.")
    rings = _rings(kind, coordinates)
    positions = [position for ring in rings for position in ring]
    if max_vertices is not None and len(positions) > max_vertices:
        raise GeometryError(
            f"The polygon has {len(positions):,} vertices; at most {max_vertices:,} are allowed "
            "(simplify it in your GIS first)."
        )
    for lon, lat, *_ in positions:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeometryError(
                f"Position [{lon}, {lat}] is outside WGS84 bounds (longitude ±180, latitude ±90)."
            )
    if _looks_swapped(positions):
        raise GeometryError(
            "The coordinates look like [latitude, longitude]; GeoJSON (RFC 7946) wants [longitude, latitude]."
        )
    geometry = shape({"type": kind, "coordinates": coordinates})
    if not geometry.is_valid:
        raise GeometryError(f"The polygon is not valid: {explain_validity(geometry)}.")
    if geometry.area == 0:
        raise GeometryError("The polygon has no area.")
    if geometry.area > MAX_ZONE_AREA_DEG2:
        raise GeometryError("The polygon is far too large for a congestion zone.")
    return geometry


def vertex_count(geometry: BaseGeometry) -> int:
    polygons = getattr(geometry, "geoms", [geometry])
    return sum(len(p.exterior.coords) + sum(len(r.coords) for r in p.interiors) for p in polygons)


def simplify_for_display(geometry: BaseGeometry, *, max_vertices: int) -> dict | None:
    """GeoJSON of the zone with at most about `max_vertices` vertices for maps, or None when the outline is
    small enough as it is (the stored outline stays exact). Douglas-Peucker, tolerance doubled until small."""
    if vertex_count(geometry) <= max_vertices:
        return None
    simplified, tolerance = geometry, 1e-5
    while vertex_count(simplified) > max_vertices and tolerance < 1:
        simplified = geometry.simplify(tolerance, preserve_topology=True)
        tolerance *= 2
    return json.loads(json.dumps(mapping(simplified)))


def overlapping(
    shapes: Sequence[BaseGeometry], candidates: Sequence[ZoneShape]
) -> list[list[tuple[ZoneShape, float]]]:
    """For each shape, the candidates it overlaps by more than OVERLAP_TOLERANCE (share of the smaller).

    A spatial index (STRtree) over the candidates limits exact tests to bounding-box hits, so checking N
    shapes against M zones costs about (N + M) log M instead of N x M."""
    if not candidates:
        return [[] for _ in shapes]
    tree = STRtree([candidate.geometry for candidate in candidates])
    result = []
    for geometry in shapes:
        hits = []
        for index in sorted(int(i) for i in tree.query(geometry)):
            share = overlap_share(geometry, candidates[index].geometry)
            if share > OVERLAP_TOLERANCE:
                hits.append((candidates[index], share))
        result.append(hits)
    return result


def _looks_swapped(positions: list[Sequence[float]]) -> bool:
    def inside(lon: float, lat: float) -> bool:
        return PLAUSIBLE_LON[0] <= lon <= PLAUSIBLE_LON[1] and PLAUSIBLE_LAT[0] <= lat <= PLAUSIBLE_LAT[1]

    as_given = all(inside(p[0], p[1]) for p in positions)
    swapped = all(inside(p[1], p[0]) for p in positions)
    return swapped and not as_given


def bounds(geometry: BaseGeometry) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat)."""
    return tuple(float(v) for v in geometry.bounds)


def union_bounds(geometries: Sequence[BaseGeometry]) -> tuple[float, float, float, float]:
    boxes = [g.bounds for g in geometries]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


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
