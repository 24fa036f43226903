"""Zone import benchmark (issue 15, item 6): seconds to import N zones of one DSO into a market that already
holds N zones of another DSO, through `grid.services.grid_locations_import_geojson`.

Overlap checks go through an STRtree over the zones in the import's bounding box, so the cost grows about
N log N (main took over 200 s for 250 zones and 11 CPU-minutes for 500). Each zone is a 64-vertex polygon; the
other DSO's zones half-overlap the imported ones, so every zone has real candidates to test.

    python bench/zones.py [--sizes 250,500,1000]   (a throwaway SQLite database, or BENCH_DATABASE_URL)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup_django() -> None:
    url = os.environ.get("BENCH_DATABASE_URL")
    os.environ["DATABASE_URL"] = url or f"sqlite:///{tempfile.mkdtemp(prefix='fm-bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def polygon(lon: float, lat: float, radius: float, vertices: int = 64) -> dict:
    ring = [
        [
            lon + radius * math.cos(2 * math.pi * k / vertices),
            lat + radius * math.sin(2 * math.pi * k / vertices),
        ]
        for k in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def collection(n: int, *, offset: float, tag: str) -> dict:
    side = math.ceil(math.sqrt(n))
    features = []
    for i in range(n):
        lon, lat = 4.0 + (i % side) * 0.02 + offset, 51.0 + (i // side) * 0.02
        properties = {"name": f"{tag} {i}", "code": f"{tag}-{i}"}
        features.append({"type": "Feature", "properties": properties, "geometry": polygon(lon, lat, 0.009)})
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000")
    args = parser.parse_args()
    setup_django()
    from accounts.context import Actor
    from accounts.models import Organisation, OrganisationRole, Role
    from grid.models import GridLocation
    from grid.services import grid_locations_import_geojson

    def dso(name: str) -> Actor:
        org = Organisation.objects.create(
            legal_name=name, code=name[:13], status=Organisation.Status.APPROVED
        )
        OrganisationRole.objects.create(organisation=org, role=Role.DSO)
        return Actor(user=None, organisation=org)

    print(f"{'zones':>6} {'existing':>9} {'seconds':>8} {'CPU s':>7}")
    for n in (int(size) for size in args.sizes.split(",")):
        GridLocation.objects.all().delete()
        neighbour, importer = dso(f"Neighbour {n}"), dso(f"Importer {n}")
        grid_locations_import_geojson(actor=neighbour, data=collection(n, offset=0.0, tag=f"n{n}"))
        wall, cpu = time.perf_counter(), time.process_time()
        zones = grid_locations_import_geojson(actor=importer, data=collection(n, offset=0.01, tag=f"i{n}"))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(zones) == n and all(zone.warnings for zone in zones)
        print(f"{n:>6} {n:>9} {wall:>8.2f} {cpu:>7.2f}")


if __name__ == "__main__":
    main()
