"""Congestion forecasts per PTU: runs, uploads with row errors, bus mappings, API scoping and pages."""

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from flexmarket import ptu
from flexmarket.errors import DomainError, ValidationErrors
from grid import network, selectors, services
from grid.models import AssetBusMapping, ForecastRun, ForecastUpload, ZoneBusMapping
from tests.grid.factories import FlexAssetFactory

DAY = date(2026, 11, 19)
NO_PROGNOSES = lambda **_: {}  # noqa: E731


@pytest.fixture
def feeders(actor_dso):
    """The demo's SimBench grid for the DSO, with one zone per feeder."""
    model = services.network_model_create(
        actor=actor_dso, name="SimBench", example=network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE
    )
    zones = services.grid_locations_from_feeders(
        actor=actor_dso, network_model=model, name_prefix="Zuid", code_prefix="ean.test"
    )
    return model, zones


def forecast(actor, model, day=DAY, prognoses=NO_PROGNOSES, **scaling) -> ForecastRun:
    run = services.forecast_run_request(actor=actor, network_model=model, delivery_day=day, **scaling)
    return services.forecast_run_execute(run_id=run.pk, prognoses=prognoses)


def csv_file(lines) -> io.BytesIO:
    return io.BytesIO(("bus,zone,ptu_start,p_kw,q_kvar\n" + "\n".join(lines) + "\n").encode())


def evening_rows(zone, kw, day=DAY):
    local = ZoneInfo("Europe/Amsterdam")
    starts = [s for s in ptu.ptu_starts(day, "Europe/Amsterdam") if 17 <= s.astimezone(local).hour < 21]
    return [f",{zone.code},{s.isoformat()},{kw},0" for s in starts]


@pytest.mark.django_db
def test_feeder_zones_map_every_feeder_bus_and_leave_the_substation_out(feeders):
    model, zones = feeders
    assert len(zones) == 9
    mapping = selectors.bus_zone_mapping(network_model=model)
    assert set(mapping.values()) == {zone.pk for zone in zones}
    assert not {0, 1, 2, 3} & set(mapping)  # HV buses and MV busbars of the substation
    assert ZoneBusMapping.objects.filter(network_model=model).count() == 117 - 4


@pytest.mark.django_db
def test_forecast_from_profiles_stores_arrays_and_a_zone_traffic_light(feeders, actor_dso):
    model, zones = feeders
    run = forecast(actor_dso, model)
    assert run.state == "succeeded", run.error
    assert run.ptu_count == 96 and run.inputs["profiles"].startswith("simbench:")
    assert (
        len(run.results["line_loading_percent"]) == 121 and len(run.results["line_loading_percent"][0]) == 96
    )
    assert set(run.zone_states) == {str(zone.pk) for zone in zones}
    assert all(len(states) == 96 and set(states) <= {"0", "1", "2"} for states in run.zone_states.values())
    assert 0 < run.max_line_loading_percent < 80 and run.congested_ptus == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("day", "count"), [(date(2026, 3, 29), 92), (date(2026, 10, 25), 100)])
def test_forecast_on_dst_days_has_92_or_100_ptus(feeders, actor_dso, day, count):
    model, _ = feeders
    run = forecast(actor_dso, model, day=day)
    assert run.state == "succeeded" and run.ptu_count == count
    assert all(len(states) == count for states in run.zone_states.values())
    assert len(run.results["bus_voltage_pu"][0]) == count


@pytest.mark.django_db
def test_zone_upload_congests_that_zone_in_the_evening_only(feeders, actor_dso):
    model, zones = feeders
    services.forecast_upload_csv(
        actor=actor_dso, network_model=model, delivery_day=DAY, file=csv_file(evening_rows(zones[0], 9500))
    )
    run = forecast(actor_dso, model)
    states = run.zone_states[str(zones[0].pk)]
    assert [n for n, s in enumerate(states) if s == "2"] == list(range(68, 84))  # 17:00-21:00 CET
    assert run.inputs["upload"] and run.max_line_loading_percent > 100


@pytest.mark.django_db
def test_prognoses_of_approved_assets_add_load_at_their_bus(feeders, actor_dso, esp_org):
    model, zones = feeders
    net = selectors.network_model_net(model)
    bus = selectors.bus_zone_mapping(network_model=model)
    feeder_bus = next(b for b, z in bus.items() if z == zones[0].pk)
    lon, lat = network.bus_coordinates(net)[feeder_bus]
    asset = FlexAssetFactory(
        owner=esp_org, grid_location=zones[0], prequalification="approved", longitude=lon, latitude=lat
    )
    assert selectors.asset_buses(network_model=model)[asset.pk] == feeder_bus
    base = forecast(actor_dso, model)
    heavy = forecast(actor_dso, model, prognoses=lambda asset_ids, delivery_day: {asset.pk: [4000.0] * 96})
    assert heavy.inputs["prognoses"] == 1
    assert heavy.max_line_loading_percent > base.max_line_loading_percent + 20


@pytest.mark.django_db
def test_upload_with_bad_rows_reports_each_and_stores_nothing(feeders, actor_dso):
    model, zones = feeders
    good = evening_rows(zones[0], 100)[0]
    lines = [
        good,
        f"5,{zones[0].code},{good.split(',')[2]},1,0",  # both bus and zone
        f"9999,,{good.split(',')[2]},1,0",  # no such bus
        ",ean.nobody,2026-11-19T10:00:00+00:00,1,0",  # not one of the DSO's zones
        "5,,2026-11-19T10:07:00+00:00,1,0",  # not a PTU start
        "5,,2026-11-20T10:00:00+00:00,1,0",  # another day
        "5,,2026-11-19T10:00:00,1,0",  # no offset
        "5,,2026-11-19T10:00:00+00:00,lots,0",  # not a number
        good,  # the same zone and PTU twice
    ]
    with pytest.raises(ValidationErrors) as raised:
        services.forecast_upload_csv(
            actor=actor_dso, network_model=model, delivery_day=DAY, file=csv_file(lines)
        )
    assert [e["row"] for e in raised.value.errors] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert {e["field"] for e in raised.value.errors} >= {"bus", "zone", "ptu_start", "p_kw"}
    assert ForecastUpload.objects.count() == 0


@pytest.mark.django_db
def test_mappings_are_edited_by_the_dso_and_checked(feeders, actor_dso, esp_org):
    model, zones = feeders
    services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zones[1], buses=[2, 5])
    mapping = selectors.bus_zone_mapping(network_model=model)
    assert mapping[2] == zones[1].pk and mapping[5] == zones[1].pk
    assert sum(1 for z in mapping.values() if z == zones[1].pk) == 2
    with pytest.raises(DomainError) as raised:
        services.zone_buses_set(actor=actor_dso, network_model=model, grid_location=zones[1], buses=[4242])
    assert raised.value.field == "buses"
    asset = FlexAssetFactory(owner=esp_org, grid_location=zones[0])
    services.asset_bus_set(actor=actor_dso, network_model=model, asset=asset, bus_index=7)
    assert selectors.asset_buses(network_model=model, approved_only=False)[asset.pk] == 7
    services.asset_bus_set(actor=actor_dso, network_model=model, asset=asset, bus_index=None)
    assert not AssetBusMapping.objects.exists()


@pytest.mark.django_db
def test_another_dso_cannot_forecast_or_map_this_network(feeders, dso2_user, dso2_org):
    from accounts.context import Actor

    model, zones = feeders
    other = Actor(user=dso2_user, organisation=dso2_org)
    with pytest.raises(DomainError):
        services.forecast_run_request(actor=other, network_model=model, delivery_day=DAY)
    with pytest.raises(DomainError):
        services.zone_buses_set(actor=other, network_model=model, grid_location=zones[0], buses=[5])


@pytest.mark.django_db
def test_bad_scaling_is_refused(feeders, actor_dso):
    model, _ = feeders
    with pytest.raises(DomainError) as raised:
        services.forecast_run_request(actor=actor_dso, network_model=model, delivery_day=DAY, load_scaling=11)
    assert raised.value.field == "load_scaling" and not ForecastRun.objects.exists()


# --- API ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_forecast_is_the_owning_dsos_only(feeders, actor_dso, client_for, dso_user, dso2_user, esp_user):
    model, _ = feeders
    run = forecast(actor_dso, model)
    owner = client_for(dso_user)
    body = owner.get(f"/api/v1/forecast-runs/{run.pk}/").json()
    assert body["ptu_count"] == 96 and len(body["zone_states"]) == 9
    assert client_for(dso2_user).get(f"/api/v1/forecast-runs/{run.pk}/").status_code == 404
    assert client_for(dso2_user).get("/api/v1/forecast-runs/").json()["results"] == []
    assert client_for(esp_user).get(f"/api/v1/forecast-runs/{run.pk}/").status_code == 404
    assert client_for(esp_user).get("/api/v1/forecast-runs/").json()["results"] == []
    assert (
        client_for(dso2_user)
        .post(
            "/api/v1/forecast-runs/", {"network_model": model.pk, "delivery_day": "2026-11-19"}, format="json"
        )
        .status_code
        == 404
    )


@pytest.mark.django_db
def test_api_forecast_request_and_upload(feeders, client_for, dso_user):
    model, zones = feeders
    client = client_for(dso_user)
    created = client.post(
        "/api/v1/forecast-runs/", {"network_model": model.pk, "delivery_day": "2026-11-19"}, format="json"
    )
    assert created.status_code == 202 and created.json()["state"] in ("pending", "succeeded")
    bad = client.post(
        "/api/v1/forecast-runs/", {"network_model": model.pk, "delivery_day": "soon"}, format="json"
    )
    assert bad.status_code == 400 and "delivery_day" in bad.json()["error"]["fields"]
    upload = csv_file(evening_rows(zones[0], 500))
    upload.name = "forecast.csv"
    answer = client.post(
        "/api/v1/forecast-uploads/",
        {"network_model": model.pk, "delivery_day": "2026-11-19", "file": upload},
        format="multipart",
    )
    assert answer.status_code == 201 and answer.json()["row_count"] == 16
    broken = csv_file(["9999,,2026-11-19T10:00:00+00:00,1,0"])
    broken.name = "forecast.csv"
    refused = client.post(
        "/api/v1/forecast-uploads/",
        {"network_model": model.pk, "delivery_day": "2026-11-19", "file": broken},
        format="multipart",
    )
    assert refused.status_code == 400 and ForecastUpload.objects.count() == 1


# --- pages -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_show_the_network_forecast_and_mappings(feeders, actor_dso, client, dso_user, dso2_user):
    model, zones = feeders
    run = forecast(actor_dso, model)
    client.force_login(dso_user)
    for url in [
        f"/grid/networks/{model.pk}/forecasts/",
        f"/grid/forecasts/{run.pk}/",
        f"/grid/networks/{model.pk}/mapping/",
    ]:
        assert client.get(url).status_code == 200, url
    page = client.get("/grid/zones/").content.decode()
    assert 'id="network-geojson"' in page and '"kind": "line"' in page
    client.force_login(dso2_user)
    assert client.get(f"/grid/forecasts/{run.pk}/").status_code == 404
    assert client.get(f"/grid/networks/{model.pk}/mapping/").status_code == 404


@pytest.mark.django_db
def test_forecast_page_requests_a_run_and_refuses_bad_input(feeders, client, dso_user):
    model, _ = feeders
    client.force_login(dso_user)
    url = f"/grid/networks/{model.pk}/forecasts/"
    bad = client.post(
        url, {"action": "run", "delivery_day": "2026-11-19", "load_scaling": "-1", "generation_scaling": "1"}
    )
    assert bad.status_code == 400 and not ForecastRun.objects.exists()
    done = client.post(
        url, {"action": "run", "delivery_day": "2026-11-19", "load_scaling": "1", "generation_scaling": "1"}
    )
    assert done.status_code == 302 and ForecastRun.objects.count() == 1
    upload = csv_file(["9999,,2026-11-19T10:00:00+00:00,1,0"])
    upload.name = "f.csv"
    refused = client.post(url, {"action": "upload", "delivery_day": "2026-11-19", "file": upload})
    assert refused.status_code == 400 and b"No bus 9999" in refused.content


@pytest.mark.django_db
def test_mapping_page_saves_and_reports_bad_buses(feeders, client, dso_user):
    model, zones = feeders
    client.force_login(dso_user)
    url = f"/grid/networks/{model.pk}/mapping/"
    assert client.post(url, {"zone": zones[0].pk, "buses": "5, 6"}).status_code == 302
    assert sorted(
        b for b, z in selectors.bus_zone_mapping(network_model=model).items() if z == zones[0].pk
    ) == [5, 6]
    refused = client.post(url, {"zone": zones[0].pk, "buses": "5, x"})
    assert refused.status_code == 400
    refused = client.post(url, {"zone": zones[0].pk, "buses": "4242"})
    assert refused.status_code == 400 and b"no bus 4242" in refused.content


def test_evening_rows_cover_four_hours():
    assert len(evening_rows(type("Z", (), {"code": "z"})(), 1)) == 16
    assert datetime(2026, 11, 19).date() == DAY


@pytest.mark.django_db
def test_a_forecast_that_lost_its_worker_is_taken_over_by_the_sweep(feeders, actor_dso):
    from datetime import timedelta

    from django.utils import timezone

    model, _ = feeders
    run = services.forecast_run_request(actor=actor_dso, network_model=model, delivery_day=DAY)
    ForecastRun.objects.filter(pk=run.pk).update(
        state="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.forecast_runs_sweep().requeued == [run.pk]
    run.refresh_from_db()
    assert (run.state, run.attempts, run.ptu_count) == ("succeeded", 2, 96)


@pytest.mark.django_db
def test_beat_sweeps_forecast_runs_every_minute():
    from django_celery_beat.models import PeriodicTask

    from flexmarket.celery import app

    sweep = PeriodicTask.objects.get(task="grid.forecast_runs_sweep")
    assert sweep.enabled and (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    assert "grid.forecast_run" in app.tasks and app.tasks["grid.forecast_run"].acks_late
