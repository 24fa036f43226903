"""Build the offline base map (static/geo/base-map.geojson) from SimBench grids shipped in the simbench wheel.

Maps draw it when MAP_TILE_URL is empty or tiles fail to load: an approximate outline of Germany (concave hull of
SimBench's extra-high-voltage buses), the demo region (hull of the 110 kV grid around both demo MV grids), its
110 kV and 220/380 kV line corridors and its substations. Run again only to change what the base shows."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

REGION_GRID = "1-HV-mixed--0-sw"  # the 110 kV grid around the demo MV grids (Mecklenburg, DE)
COUNTRY_GRID = "1-EHV-mixed--0-sw"  # SimBench's Germany-wide transmission grid
DIGITS = 4  # ~10 m: plenty for a base drawn under the DSO's own network


def _points(net) -> dict[int, tuple[float, float]]:
    points = {}
    for index, geo in net.bus["geo"].dropna().items():
        lon, lat = json.loads(geo)["coordinates"][:2]
        points[int(index)] = (round(lon, DIGITS), round(lat, DIGITS))
    return points


def _lines(net, points, kind: str) -> list[dict]:
    seen, features = set(), []
    for from_bus, to_bus in net.line[["from_bus", "to_bus"]].itertuples(index=False):
        ends = tuple(sorted((points.get(int(from_bus)), points.get(int(to_bus))), key=str))
        if None in ends or ends[0] == ends[1] or ends in seen:
            continue  # parallel circuits share one corridor
        seen.add(ends)
        features.append(_feature({"type": "LineString", "coordinates": list(ends)}, kind=kind))
    return features


def _hull(points, *, ratio: float, buffer: float, name: str, kind: str) -> dict:
    from shapely import MultiPoint, concave_hull
    from shapely.geometry import mapping

    shape = concave_hull(MultiPoint(list(points)), ratio=ratio).buffer(buffer).simplify(buffer / 2)
    geometry = json.loads(json.dumps(mapping(shape)))
    geometry["coordinates"] = [
        [[round(x, DIGITS), round(y, DIGITS)] for x, y in ring] for ring in geometry["coordinates"]
    ]
    return _feature(geometry, kind=kind, name=name)


def _feature(geometry: dict, **properties) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def base_map() -> dict:
    import simbench

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        region = simbench.get_simbench_net(REGION_GRID)
        country = simbench.get_simbench_net(COUNTRY_GRID)
    region_points, country_points = _points(region), _points(country)
    # SimBench models each MV grid under the 110 kV grid as a load at its HV/MV substation.
    substations = {
        region_points[int(bus)]: "HV/MV substation" for bus in region.load["bus"] if int(bus) in region_points
    }
    substations |= {
        region_points[int(bus)]: "EHV/HV substation"
        for bus in region.trafo["hv_bus"]
        if int(bus) in region_points
    }
    return {
        "type": "FeatureCollection",
        "features": [
            _hull(country_points.values(), ratio=0.12, buffer=0.15, name="Germany (approx.)", kind="country"),
            _hull(
                region_points.values(),
                ratio=0.3,
                buffer=0.04,
                name="Mecklenburg 110 kV region",
                kind="region",
            ),
            *_lines(country, country_points, "ehv_line"),
            *_lines(region, region_points, "hv_line"),
            *(
                _feature({"type": "Point", "coordinates": list(point)}, kind="substation", name=name)
                for point, name in substations.items()
            ),
        ],
    }


class Command(BaseCommand):
    help = "Write static/geo/base-map.geojson, the offline base map, from SimBench grids (needs shapely)."

    def handle(self, *args, **options):
        path = Path(settings.BASE_DIR) / "static" / "geo" / "base-map.geojson"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(base_map(), separators=(",", ":")) + "\n")
        self.stdout.write(f"Wrote {path} ({path.stat().st_size // 1024} KiB).")
