import io
from datetime import date, timedelta

import pytest

from settlement import services
from settlement.models import MeterReading
from tests.settlement.fixtures import DELIVERY_DAY


@pytest.mark.django_db
def test_bulk_readings_by_api_and_field_errors(client_for, esp_user, settled_setup):
    ean = settled_setup["asset"].connection_ean
    client = client_for(esp_user)
    ok = client.post(
        "/api/v1/meter-readings/",
        {"readings": [{"asset_ean": ean, "ptu_start": "2026-06-10T00:00:00Z", "kw": "12.5"}]},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["changed_count"] == 1
    bad = client.post(
        "/api/v1/meter-readings/",
        {"readings": [{"asset_ean": ean, "ptu_start": "2026-06-10T00:05:00Z", "kw": "1"}]},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["field"] == "ptu_start"
    assert client.post("/api/v1/meter-readings/", {"readings": []}, format="json").status_code == 400


@pytest.mark.django_db
def test_other_organisations_cannot_see_readings_results_or_statements(
    client_for, actor_esp, actor_fmo, esp2_user, esp_user, settled_setup, api_client
):
    data = (
        "asset_ean,ptu_start,kw\n"
        + "\n".join(
            f"{settled_setup['asset'].connection_ean},{(date(2026, 6, 1)).isoformat()}T00:{m:02d}:00+00:00,5"
            for m in (0, 15, 30, 45)
        )
        + "\n"
    )
    services.meter_upload_csv(actor=actor_esp, file=io.BytesIO(data.encode()))
    verification = services.verification_run(contract=settled_setup["contract"])
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    stranger = client_for(esp2_user)
    assert stranger.get("/api/v1/meter-readings/").json()["count"] == 0
    assert stranger.get(f"/api/v1/verifications/{verification.pk}/").status_code == 404
    assert stranger.get("/api/v1/settlements/").json()["count"] == 0
    assert client_for(esp_user).get("/api/v1/meter-readings/").json()["count"] == 4
    for url in ["/api/v1/meter-readings/", "/api/v1/settlements/", "/api/v1/verifications/"]:
        assert api_client.get(url).status_code == 401


@pytest.mark.django_db
def test_invoice_pdf_and_csv_by_api(client_for, esp_user, actor_esp, actor_fmo, settled_setup):
    from tests.settlement.test_services import load_history_and_day

    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    services.verification_run(contract=settled_setup["contract"])
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    for step in (services.period_compute, services.period_approve, services.period_lock):
        step(actor=actor_fmo, period=period)
    client = client_for(esp_user)
    statement = client.get("/api/v1/settlements/").json()["results"][0]
    assert statement["invoice"].startswith("FM-INV-")
    assert client.get(f"/api/v1/settlements/{statement['id']}/invoice/").content.startswith(b"%PDF")
    assert b"activation" in client.get(f"/api/v1/settlements/{statement['id']}/invoice/?type=csv").content


@pytest.mark.django_db
def test_prognosis_api(client_for, esp_user, settled_setup):
    response = client_for(esp_user).post(
        "/api/v1/prognoses/",
        {
            "asset": settled_setup["asset"].pk,
            "delivery_day": str(DELIVERY_DAY + timedelta(days=3)),
            "values_kw": [10] * 96,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/settlement/meter-data/", "/settlement/statements/", "/settlement/console/"]
)
def test_pages_need_login(client, url):
    assert client.get(url)["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_role_pages(client, esp_user, fmo_user, dso_user):
    client.force_login(esp_user)
    assert client.get("/settlement/console/").status_code == 403
    for url in [
        "/settlement/meter-data/",
        "/settlement/verifications/",
        "/settlement/statements/",
        "/settlement/accuracy/",
        "/",
    ]:
        assert client.get(url).status_code == 200, url
    client.force_login(fmo_user)
    assert client.get("/settlement/console/").status_code == 200
    client.force_login(dso_user)
    assert client.get("/settlement/meter-data/").status_code == 200


@pytest.mark.django_db
def test_meter_upload_page_shows_row_errors(client, esp_user, settled_setup):
    upload = io.BytesIO(
        f"asset_ean,ptu_start,kw\n{settled_setup['asset'].connection_ean},2026-06-10T00:00:00,5\n".encode()
    )
    upload.name = "m.csv"
    client.force_login(esp_user)
    response = client.post("/settlement/meter-data/", {"file": upload})
    assert response.status_code == 400 and "UTC offset" in response.content.decode()
    assert not MeterReading.objects.exists()


@pytest.mark.worker
def test_verification_task_runs_on_a_real_worker(celery_worker, settled_setup):
    from settlement.services import verification_runs_request
    from tests.worker import wait_for_run

    (run,) = verification_runs_request(contract_ids=[settled_setup["contract"].pk])  # sent to the worker
    run = wait_for_run(run, timeout=90)
    assert (run.state, run.outcome) == ("succeeded", "awaiting_data")


@pytest.mark.django_db
def test_prognosis_form_and_csv(client, esp_user, settled_setup):
    from settlement.models import Prognosis

    day = DELIVERY_DAY + timedelta(days=4)
    client.force_login(esp_user)
    response = client.post(
        "/settlement/prognoses/",
        {
            "asset": settled_setup["asset"].pk,
            "delivery_day": day.isoformat(),
            "values_kw": " ".join(["50"] * 96),
        },
    )
    assert response.status_code == 302 and Prognosis.objects.count() == 1
    csv_text = f"asset_ean,delivery_day,values_kw\n{settled_setup['asset'].connection_ean},{day + timedelta(days=1)},{' '.join(['5'] * 96)}\n{settled_setup['asset'].connection_ean},{DELIVERY_DAY},{' '.join(['5'] * 96)}\n"
    upload = io.BytesIO(csv_text.encode())
    upload.name = "p.csv"
    response = client.post("/settlement/prognoses/", {"file": upload})
    assert response.status_code == 400 and response.context["row_errors"][0]["row"] == 3
    assert Prognosis.objects.count() == 1
