"""Demo grid: six congestion zones over MV Oberrhein's area (Offenburg, DE) for two DSOs, their network
models with zone-bus mapping and a power flow, and ~50 assets of three ESPs, some pending prequalification."""

from __future__ import annotations

import random
from decimal import Decimal

from accounts.context import Actor
from grid import selectors, services
from grid.ean import ean18_complete
from grid.models import FlexAsset, GridLocation

# MV Oberrhein's buses span 7.744–7.939 E, 48.328–48.475 N; a 3 x 2 grid of zones covers them.
WEST, EAST, SOUTH, NORTH = 7.74, 7.95, 48.32, 48.48
ZONE_NAMES = {
    "dso_north": ["Offenburg Nord", "Ortenberg", "Durbach"],
    "dso_south": ["Ohlsbach", "Gengenbach West", "Berghaupten"],
}
ASSET_TYPES = [
    ("battery", "Community battery", (150, 500), True),
    ("ev_charging", "EV hub", (50, 300), False),
    ("heat_pump", "Heat pump cluster", (20, 120), False),
    ("pv", "Solar park", (100, 800), False),
    ("industrial_load", "Cold store", (200, 900), False),
    ("chp", "CHP unit", (300, 1200), False),
]


def _cell(column: int, row: int) -> dict:
    width, height = (EAST - WEST) / 3, (NORTH - SOUTH) / 2
    west, south = WEST + column * width, SOUTH + row * height
    ring = [
        [west, south],
        [west + width, south],
        [west + width, south + height],
        [west, south + height],
        [west, south],
    ]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def seed(cast) -> None:
    """Zones for both DSOs around Offenburg, MV Oberrhein with a run, ~50 assets and portfolios; once only."""
    if GridLocation.objects.filter(dso=cast.organisations["dso_north"]).exists():
        return
    rng = random.Random(42)
    zones: list[GridLocation] = []
    for row, key in ((1, "dso_north"), (0, "dso_south")):
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        for column, name in enumerate(ZONE_NAMES[key]):
            status = "watch" if (row, column) == (1, 0) else "normal"
            zones.append(
                services.grid_location_create(
                    actor=actor,
                    name=name,
                    code=f"ean.8716859{row}{column}0000{column}{row}",
                    geometry=_cell(column, row),
                    voltage_level="MV",
                    status=status,
                )
            )
        model = services.network_model_create(actor=actor, name="MV Oberrhein", example="mv_oberrhein")
        run = services.power_flow_run_request(
            actor=actor, network_model=model, scenario="evening peak", load_scaling=1.3
        )
        services.power_flow_run_execute(run_id=run.pk)

    esp_keys = ["esp_flexy", "esp_volt", "esp_heat"]
    for number in range(50):
        key = esp_keys[number % 3]
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        zone = zones[number % len(zones)]
        asset_type, label, (low, high), storage = ASSET_TYPES[number % len(ASSET_TYPES)]
        size = Decimal(rng.randrange(low, high, 10))
        asset = services.asset_register(
            actor=actor,
            brp=cast.organisations["brp"],
            name=f"{label} {zone.name} {number + 1}",
            asset_type=asset_type,
            connection_ean=ean18_complete(f"8716859{number:010d}"),
            latitude=rng.uniform(zone.min_lat + 0.002, zone.max_lat - 0.002),
            longitude=rng.uniform(zone.min_lon + 0.002, zone.max_lon - 0.002),
            max_up_kw=size,
            max_down_kw=size
            if asset_type in ("battery", "ev_charging", "heat_pump")
            else Decimal("0")
            if asset_type != "industrial_load"
            else size / 2,
            energy_capacity_kwh=size * 2 if storage else None,
            ramp_rate_kw_per_min=size / 5,
            availability="mon-fri 07:00-22:00; sat-sun 09:00-18:00" if number % 4 == 0 else "",
        )
        if number % 10 < 7:  # 70% approved by the zone's DSO, the rest wait in the queue
            dso_key = "dso_north" if zone.dso_id == cast.organisations["dso_north"].pk else "dso_south"
            services.asset_prequalify(
                actor=Actor(user=cast.users[dso_key], organisation=cast.organisations[dso_key]),
                asset=asset,
                decision="approve",
            )
    for key in esp_keys:
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        approved = [
            a
            for a in selectors.assets_get_owned(actor=actor)
            if a.prequalification == FlexAsset.Prequalification.APPROVED
        ]
        by_zone: dict[int, list[FlexAsset]] = {}
        for asset in approved:
            by_zone.setdefault(asset.grid_location_id, []).append(asset)
        zone_id, members = max(by_zone.items(), key=lambda item: len(item[1]))
        services.portfolio_create(actor=actor, name=f"{members[0].grid_location.name} pool", assets=members)
