"""Loading a network model is a background run: 202 with a status to poll, never tens of seconds in a request."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

from accounts.models import AuditEvent
from flexmarket import runs
from flexmarket.celery import app
from grid import network, services
from grid.models import NetworkModel, NetworkModelLoad, ZoneBusMapping
from tests.grid.factories import square

URL = "/api/v1/network-models/"
# pandapower's envelope around tables it cannot read: passes the quick check, fails on the worker.
NO_BUSES = json.dumps({"_module": "pandapower.auxiliary", "_class": "pandapowerNet", "_object": {}})


@pytest.fixture
def zone(actor_dso):
    """A zone over bus 0 of the CIGRE MV network (its schematic coordinates: 7, 16), so loading it maps a bus."""
    return services.grid_location_create(
        actor=actor_dso, name="CIGRE", code="ean.cigre", geometry=square(7.0, 16.0, half=0.2)
    )


def post(client, payload, capture, *, send=True):
    with capture(execute=send):
        return client.post(URL, payload, format="json")


@pytest.mark.django_db
def test_post_answers_202_with_a_status_url_and_the_worker_creates_the_model(
    client_for, dso_user, zone, django_capture_on_commit_callbacks
):
    client = client_for(dso_user)
    response = post(client, {"name": "CIGRE", "example": "cigre_mv"}, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "pending" and body["source"] == "cigre_mv"
    assert body["status_url"] == f"/api/v1/network-model-loads/{body['id']}/"
    assert response["Location"] == body["status_url"]

    status = client.get(body["status_url"]).json()
    assert status["state"] == "succeeded" and status["error"] == ""
    model = NetworkModel.objects.get()
    assert status["network_model"] == model.pk
    assert status["network_model_url"] == f"/api/v1/network-models/{model.pk}/"
    detail = client.get(status["network_model_url"]).json()
    assert (detail["name"], detail["version"], detail["bus_count"]) == ("CIGRE", 1, 15)
    assert ZoneBusMapping.objects.filter(network_model=model, grid_location=zone).exists()
    assert NetworkModelLoad.objects.get().network_json == ""  # the model holds the network now


@pytest.mark.django_db
def test_an_uploaded_network_is_loaded_as_the_next_version(
    client_for, dso_user, actor_dso, django_capture_on_commit_callbacks
):
    services.network_model_create(actor=actor_dso, name="Grid", example="cigre_mv")
    upload = network.example_network_json("cigre_mv")
    response = post(
        client_for(dso_user), {"name": "Grid", "network_json": upload}, django_capture_on_commit_callbacks
    )
    assert response.status_code == 202 and response.json()["source"] == "upload"
    assert NetworkModel.objects.filter(name="Grid").order_by("version").last().version == 2


@pytest.mark.django_db
def test_the_client_polls_pending_then_succeeded(client_for, dso_user, django_capture_on_commit_callbacks):
    client = client_for(dso_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(URL, {"name": "CIGRE", "example": "cigre_mv"}, format="json")
    status_url = response.json()["status_url"]
    polled = client.get(status_url).json()
    assert polled["state"] == "pending"
    assert polled["network_model"] is None and polled["network_model_url"] is None
    assert not NetworkModel.objects.exists()
    for callback in callbacks:  # the task message is sent after commit; the eager queue runs it here
        callback()
    assert client.get(status_url).json()["state"] == "succeeded"


@pytest.mark.django_db
def test_a_running_load_shows_running(client_for, dso_user, django_capture_on_commit_callbacks):
    client = client_for(dso_user)
    response = post(
        client, {"name": "CIGRE", "example": "cigre_mv"}, django_capture_on_commit_callbacks, send=False
    )
    load_id = response.json()["id"]
    assert runs.run_claim(NetworkModelLoad, pk=load_id) == 1
    assert client.get(f"/api/v1/network-model-loads/{load_id}/").json()["state"] == "running"


@pytest.mark.django_db
def test_a_network_without_buses_fails_the_load_with_its_message(
    client_for, dso_user, django_capture_on_commit_callbacks
):
    client = client_for(dso_user)
    response = post(client, {"name": "Broken", "network_json": NO_BUSES}, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    status = client.get(response.json()["status_url"]).json()
    assert status["state"] == "failed"
    assert status["error"] == "The network has no buses."
    assert status["network_model"] is None and status["network_model_url"] is None
    assert not NetworkModel.objects.exists()
    assert AuditEvent.objects.filter(action="network_model.load_failed").count() == 1
    assert NetworkModelLoad.objects.get().network_json == ""  # the upload is not kept once the load failed


@pytest.mark.django_db
def test_an_unexpected_exception_is_recorded_on_the_load_with_nothing_half_written(
    client_for, dso_user, zone, django_capture_on_commit_callbacks, monkeypatch
):
    def explode(*args, **kwargs):
        raise RuntimeError("mapping blew up")

    monkeypatch.setattr(services.network, "suggest_zone_buses", explode)
    client = client_for(dso_user)
    response = post(client, {"name": "CIGRE", "example": "cigre_mv"}, django_capture_on_commit_callbacks)
    status = client.get(response.json()["status_url"]).json()
    assert status["state"] == "failed" and status["error"] == "RuntimeError: mapping blew up"
    assert not NetworkModel.objects.exists()
    assert not ZoneBusMapping.objects.exists()


@pytest.mark.django_db
def test_running_a_finished_load_again_changes_nothing(actor_dso, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        load = services.network_model_load_request(actor=actor_dso, name="CIGRE", example="cigre_mv")
    again = services.network_model_load_execute(run_id=load.pk)
    assert again.state == "succeeded" and again.attempts == 1
    assert NetworkModel.objects.count() == 1


@pytest.mark.django_db
def test_another_organisations_load_answers_404_and_other_roles_may_not_load(
    client_for, dso_user, dso2_user, esp_user, fmo_user, api_client, django_capture_on_commit_callbacks
):
    response = post(
        client_for(dso_user), {"name": "CIGRE", "example": "cigre_mv"}, django_capture_on_commit_callbacks
    )
    status_url = response.json()["status_url"]
    assert client_for(dso2_user).get(status_url).status_code == 404
    assert client_for(dso2_user).get("/api/v1/network-model-loads/").json()["count"] == 0
    assert client_for(dso2_user).get("/api/v1/network-model-loads/999999/").status_code == 404
    assert (
        client_for(esp_user).get(status_url).status_code == 404
    )  # no existence oracle for other roles either
    assert (
        client_for(esp_user).post(URL, {"name": "X", "example": "cigre_mv"}, format="json").status_code == 403
    )
    assert api_client.get(status_url).status_code in (401, 403)
    own = client_for(dso_user)
    assert own.get("/api/v1/network-model-loads/").json()["count"] == 1
    assert own.get("/api/v1/network-model-loads/?state=succeeded").json()["count"] == 1
    assert own.get("/api/v1/network-model-loads/?state=failed").json()["count"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"example": "cigre_mv"}, "name"),
        ({"name": "   ", "example": "cigre_mv"}, "name"),
        ({"name": "N"}, "file"),
        ({"name": "N", "example": "atlantis"}, "example"),
        ({"name": "N", "network_json": "not json"}, "file"),
        ({"name": "N", "network_json": "{}"}, "file"),
        ({"name": "N", "network_json": "[1, 2]"}, "file"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_a_400_naming_the_field_with_nothing_queued(
    client_for, dso_user, payload, field, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_for(dso_user).post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not NetworkModelLoad.objects.exists() and not callbacks


@pytest.mark.django_db(transaction=True)
def test_the_broker_down_answers_503_and_fails_the_load(client_for, dso_user, broker_down):
    response = client_for(dso_user).post(URL, {"name": "CIGRE", "example": "cigre_mv"}, format="json")
    assert response.status_code == 503 and response.json()["error"]["code"] == "broker_unavailable"
    load = NetworkModelLoad.objects.get()  # never left pending with no message anywhere
    assert load.state == "failed" and "broker is unreachable" in load.error


def test_load_tasks_are_acknowledged_late():
    task = app.tasks["grid.network_model_load"]
    assert task.acks_late and task.reject_on_worker_lost


@pytest.mark.django_db
def test_beat_sweeps_network_loads_every_minute():
    sweep = PeriodicTask.objects.get(task="grid.network_model_loads_sweep")
    assert sweep.enabled and (sweep.interval.every, sweep.interval.period) == (1, "minutes")
    assert "grid.network_model_loads_sweep" in app.tasks


# --- the page -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_queues_the_load_and_opens_the_model_when_it_is_done(
    client, dso_user, django_capture_on_commit_callbacks
):
    client.force_login(dso_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/grid/networks/", {"name": "CIGRE", "example": "cigre_mv"})
    load = NetworkModelLoad.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/grid/networks/loads/{load.pk}/"
    waiting = client.get(response["Location"])
    assert waiting.status_code == 200 and 'http-equiv="refresh"' in waiting.content.decode()
    for callback in callbacks:
        callback()
    done = client.get(response["Location"])
    model = NetworkModel.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/grid/networks/{model.pk}/"


@pytest.mark.django_db
def test_the_page_shows_a_failed_load_and_stops_refreshing(
    client, dso_user, dso2_user, django_capture_on_commit_callbacks
):
    client.force_login(dso_user)
    upload = ("broken.json", NO_BUSES.encode())
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/grid/networks/", {"name": "Broken", "file": SimpleUploadedFile(*upload)})
    page = client.get(response["Location"])
    text = page.content.decode()
    assert page.status_code == 200 and "Failed" in text and 'http-equiv="refresh"' not in text
    assert "The network has no buses." in text
    client.force_login(dso2_user)
    assert client.get(response["Location"]).status_code == 404
