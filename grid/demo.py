"""Demo grid: two DSOs with a SimBench MV grid each (geographic coordinates in Mecklenburg, DE, 15-minute yearly
profiles shipped in the simbench wheel), one congestion zone per feeder, ~50 assets of three ESPs at buses of
those zones (some pending prequalification), and a congestion forecast for tomorrow.

Zuidnet's forecast shows a congested evening peak: as the DSO's own forecast upload (the CSV path real users take)
adds EV charging on feeder 1 between 16:00 and 22:00 local time on top of SimBench's profiles."""

from __future__ import annotations

import io
import random
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from accounts.context import Actor
from flexmarket import ptu
from grid import network, selectors, services, timeseries
from grid.ean import ean18_complete
from grid.models import FlexAsset, GridLocation, PrequalificationCheck

NETWORKS = {
    # DSO: (SimBench grid, network name, zone name prefix, zone code prefix)
    "dso_north": ("1-MV-urban--0-sw", "SimBench MV urban", "Noord MV", "ean.noord"),
    "dso_south": (network.DEMO_SIMBENCH_CODE, "SimBench MV semi-urban", "Zuid MV", "ean.zuid"),
}
# EV charging on Zuid MV feeder 1 in the DSO's upload (kW for the whole feeder, local hours [start, end)).
EVENING_UPLOAD = [(16, 17, 7000), (17, 21, 9500), (21, 22, 7000)]
ASSET_TYPES = [
    ("battery", "Community battery", (150, 500), True),
    ("ev_charging", "EV hub", (50, 300), False),
    ("heat_pump", "Heat pump cluster", (20, 120), False),
    ("pv", "Solar park", (100, 800), False),
    ("industrial_load", "Cold store", (200, 900), False),
    ("chp", "CHP unit", (300, 1200), False),
]


def _evening_csv(zone: GridLocation, day) -> str:
    local = ZoneInfo(settings.FLEXMARKET_GRID_TIME_ZONE)
    lines = ["bus,zone,ptu_start,p_kw,q_kvar"]
    for start in ptu.ptu_starts(day, settings.FLEXMARKET_GRID_TIME_ZONE):
        hour = start.astimezone(local).hour
        for first, last, kw in EVENING_UPLOAD:
            if first <= hour < last:
                lines.append(f",{zone.code},{start.isoformat()},{kw},{kw * 0.2:.0f}")
    return "\n".join(lines) + "\n"


def seed(cast) -> None:
    """Both DSOs' SimBench grids with feeder zones, ~50 assets and portfolios, forecasts for tomorrow; once only."""
    if GridLocation.objects.filter(dso=cast.organisations["dso_north"]).exists():
        return
    rng = random.Random(42)
    zones: list[GridLocation] = []
    models = {}
    for key, (code, name, prefix, code_prefix) in NETWORKS.items():
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        model = services.network_model_create(
            actor=actor, name=name, example=f"{network.SIMBENCH_PREFIX}{code}"
        )
        zones += services.grid_locations_from_feeders(
            actor=actor, network_model=model, name_prefix=prefix, code_prefix=code_prefix
        )
        models[key] = model
    coordinates = {
        key: timeseries.bus_coordinates(selectors.network_model_net(m)) for key, m in models.items()
    }
    zone_buses: dict[int, list[int]] = {}
    for model in models.values():
        for bus, zone_id in selectors.bus_zone_mapping(network_model=model).items():
            zone_buses.setdefault(zone_id, []).append(bus)

    esp_keys = ["esp_flexy", "esp_volt", "esp_heat"]
    for number in range(50):
        key = esp_keys[number % 3]
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        zone = zones[number % len(zones)]
        asset_type, label, (low, high), storage = ASSET_TYPES[number % len(ASSET_TYPES)]
        size = Decimal(rng.randrange(low, high, 10))
        dso_key = "dso_north" if zone.dso_id == cast.organisations["dso_north"].pk else "dso_south"
        lon, lat = coordinates[dso_key][rng.choice(sorted(zone_buses[zone.pk]))]
        asset = services.asset_register(
            actor=actor,
            brp=cast.organisations["brp"],
            name=f"{label} {zone.name} {number + 1}",
            asset_type=asset_type,
            connection_ean=ean18_complete(f"8716859{number:010d}"),
            latitude=lat + rng.uniform(-0.0003, 0.0003),
            longitude=lon + rng.uniform(-0.0003, 0.0003),
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
            dso = Actor(user=cast.users[dso_key], organisation=cast.organisations[dso_key])
            services.asset_checklist_update(actor=dso, asset=asset, checked=list(PrequalificationCheck.Item))
            services.asset_prequalify(actor=dso, asset=asset, decision="approve")
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

    tomorrow = ptu.local_day_of(timezone.now(), settings.FLEXMARKET_GRID_TIME_ZONE) + timedelta(days=1)
    for key, model in models.items():
        actor = Actor(user=cast.users[key], organisation=cast.organisations[key])
        if key == "dso_south":
            feeder = GridLocation.objects.get(code=f"{NETWORKS[key][3]}.f1")
            services.forecast_upload_csv(
                actor=actor,
                network_model=model,
                delivery_day=tomorrow,
                file=io.BytesIO(_evening_csv(feeder, tomorrow).encode()),
            )
        run = services.forecast_run_request(actor=actor, network_model=model, delivery_day=tomorrow)
        services.forecast_run_execute(run_id=run.pk)
