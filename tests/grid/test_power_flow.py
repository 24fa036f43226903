import pytest

from flexmarket.errors import DomainError
from grid import network, services
from grid.models import GridLocation, PowerFlowRun
from tests.grid.factories import square

# MV Oberrhein's buses lie around 7.6–8.0 E, 48.3–48.6 N (Offenburg); one zone over its substation area.
OBERRHEIN_ZONE = {
    "type": "Polygon",
    "coordinates": [[[7.70, 48.35], [7.85, 48.35], [7.85, 48.45], [7.70, 48.45], [7.70, 48.35]]],
}


@pytest.fixture
def oberrhein(actor_dso):
    zone = services.grid_location_create(
        actor=actor_dso, name="Offenburg Süd", code="ean.oberrhein.1", geometry=OBERRHEIN_ZONE
    )
    model = services.network_model_create(actor=actor_dso, name="Oberrhein", example="mv_oberrhein")
    return zone, model


@pytest.mark.django_db
def test_example_network_is_loaded_and_buses_mapped_by_geometry(oberrhein):
    zone, model = oberrhein
    assert model.bus_count == 179 and model.version == 1
    assert model.bus_mappings.filter(grid_location=zone).count() > 10


@pytest.mark.django_db
def test_power_flow_stores_results_and_flags_overloaded_zones(
    oberrhein, actor_dso, django_capture_on_commit_callbacks
):
    zone, model = oberrhein
    with django_capture_on_commit_callbacks(execute=True):
        run = services.power_flow_run_request(
            actor=actor_dso, network_model=model, scenario="peak", load_scaling=2.0, generation_scaling=0.0
        )
    run.refresh_from_db()
    assert run.state == PowerFlowRun.State.SUCCEEDED, run.error
    assert run.max_line_loading_percent > 100
    assert len(run.results["bus_voltage_pu"]) == 179
    zone.refresh_from_db()
    assert zone.status == GridLocation.Status.CONGESTED
    assert zone.status_source == GridLocation.StatusSource.POWER_FLOW


@pytest.mark.django_db
def test_base_case_leaves_zone_normal(oberrhein, actor_dso, django_capture_on_commit_callbacks):
    zone, model = oberrhein
    with django_capture_on_commit_callbacks(execute=True):
        run = services.power_flow_run_request(actor=actor_dso, network_model=model)
    run.refresh_from_db()
    assert run.state == PowerFlowRun.State.SUCCEEDED
    assert run.min_voltage_pu >= 0.95 and run.max_voltage_pu <= 1.05
    zone.refresh_from_db()
    assert zone.status == GridLocation.Status.NORMAL


@pytest.mark.django_db
def test_network_that_does_not_converge_records_the_failure(
    oberrhein, actor_dso, django_capture_on_commit_callbacks
):
    _, model = oberrhein
    with django_capture_on_commit_callbacks(execute=True):
        run = services.power_flow_run_request(actor=actor_dso, network_model=model, load_scaling=9.5)
    run.refresh_from_db()
    assert run.state == PowerFlowRun.State.FAILED
    assert "did not converge" in run.error


@pytest.mark.django_db
def test_upload_that_is_not_a_network_is_refused(actor_dso):
    with pytest.raises(DomainError) as error:
        services.network_model_create(actor=actor_dso, name="Broken", network_json='{"hello": "world"}')
    assert error.value.field == "file"
    with pytest.raises(DomainError):
        services.network_model_create(actor=actor_dso, name="Broken", network_json="not json")


@pytest.mark.django_db
def test_only_the_networks_dso_runs_power_flows(oberrhein, actor_dso2):
    _, model = oberrhein
    with pytest.raises(DomainError):
        services.power_flow_run_request(actor=actor_dso2, network_model=model)


def test_zone_statuses_rule():
    result = network.PowerFlowResult(
        converged=True,
        line_loading_percent={0: 120.0, 1: 85.0, 2: 10.0},
        line_buses={0: (0, 1), 1: (2, 3), 2: (4, 5)},
        voltage_violations=[5],
    )
    assert network.zone_statuses(result, {0: 10, 2: 20, 4: 30, 5: 40}) == {
        10: "congested",
        20: "watch",
        30: "normal",
        40: "congested",
    }


@pytest.mark.worker
def test_power_flow_runs_on_a_real_worker(celery_worker, actor_dso):
    import time

    services.grid_location_create(
        actor=actor_dso, name="Z", code="ean.worker", geometry=square(7.78, 48.41, half=0.05)
    )
    model = services.network_model_create(actor=actor_dso, name="Oberrhein", example="mv_oberrhein")
    run = services.power_flow_run_request(actor=actor_dso, network_model=model)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state in (PowerFlowRun.State.SUCCEEDED, PowerFlowRun.State.FAILED):
            break
        time.sleep(0.5)
    assert run.state == PowerFlowRun.State.SUCCEEDED, run.error


@pytest.mark.worker
def test_broken_network_fails_cleanly_on_a_real_worker(celery_worker, actor_dso):
    import time

    model = services.network_model_create(actor=actor_dso, name="Oberrhein", example="cigre_mv")
    run = services.power_flow_run_request(actor=actor_dso, network_model=model, load_scaling=9.9)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state in (PowerFlowRun.State.SUCCEEDED, PowerFlowRun.State.FAILED):
            break
        time.sleep(0.5)
    assert run.state == PowerFlowRun.State.FAILED
    assert run.error
