import pytest

from accounts import demo as accounts_demo
from grid import demo
from grid.models import FlexAsset, GridLocation, NetworkModel, Portfolio, ZoneBusMapping


@pytest.mark.django_db
def test_demo_seeds_zones_network_and_assets_once():
    cast = accounts_demo.seed()
    demo.seed(cast)
    counts = [m.objects.count() for m in (GridLocation, NetworkModel, ZoneBusMapping, FlexAsset, Portfolio)]
    assert GridLocation.objects.filter(dso=cast.organisations["dso_north"]).exists()
    assert GridLocation.objects.filter(dso=cast.organisations["dso_south"]).exists()
    assert counts[1] >= 1 and counts[2] >= 1 and counts[3] == 50 and counts[4] == 3
    pending = FlexAsset.objects.filter(prequalification=FlexAsset.Prequalification.PENDING)
    assert pending.exists() and FlexAsset.objects.filter(grid_location__isnull=True).count() == 0
    demo.seed(accounts_demo.seed())
    assert [
        m.objects.count() for m in (GridLocation, NetworkModel, ZoneBusMapping, FlexAsset, Portfolio)
    ] == counts


@pytest.mark.django_db
def test_demo_forecast_for_tomorrow_shows_a_congested_evening_peak(time_machine):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from grid.models import ForecastRun

    time_machine.move_to(datetime(2026, 11, 18, 8, 0, tzinfo=ZoneInfo("Europe/Amsterdam")))
    cast = accounts_demo.seed()
    demo.seed(cast)
    feeders = GridLocation.objects.filter(dso=cast.organisations["dso_south"])
    assert feeders.count() == 9 and all(z.geometry["type"] in ("Polygon", "MultiPolygon") for z in feeders)
    run = ForecastRun.objects.get(network_model__dso=cast.organisations["dso_south"])
    assert run.state == "succeeded" and run.ptu_count == 96 and str(run.delivery_day) == "2026-11-19"
    feeder_1 = feeders.get(code="ean.zuid.f1")
    states = run.zone_states[str(feeder_1.pk)]
    congested = [index for index, state in enumerate(states) if state == "2"]
    # 17:00-21:00 local is PTU 68-83; the night stays normal.
    assert congested, (states, run.max_line_loading_percent, run.inputs, run.zone_states, run.min_voltage_pu)
    assert set(congested) <= set(range(64, 88)) and set(range(68, 84)) <= set(congested)
    assert set(states[:24]) == {"0"}
    assert run.max_line_loading_percent > 100 and run.inputs["upload"]
    # The needs are ready to post: feeder 1 needs upward flexibility in the evening, nothing at night.
    needed = run.needs["zones"][str(feeder_1.pk)]
    assert needed and {int(t) for t in needed} <= set(congested) and all(kw > 0 for kw in needed.values())
    other = ForecastRun.objects.get(network_model__dso=cast.organisations["dso_north"])
    assert other.state == "succeeded" and other.congested_ptus == 0 and other.needs["zones"] == {}
