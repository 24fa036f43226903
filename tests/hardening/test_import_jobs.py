"""Upload limits and background imports (issue 15, item 4): size and row limits, large files as jobs with
progress, exact error counts with the first N listed (main said "1000 problem(s)" for 1.1M bad rows)."""

import io
import time

import pytest
from django.core.cache import caches

from flexmarket import imports
from flexmarket.models import ImportJob
from grid.models import FlexAsset, GridLocation
from settlement.models import MeterDay, Prognosis
from tests.grid.factories import square
from trading.models import FlexOffer, FlexRequest

HEADER = "name,asset_type,connection_ean,latitude,longitude,max_up_kw,max_down_kw,energy_capacity_kwh\n"


def ean(n: int) -> str:
    body = f"87100000001{n:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def assets_csv(rows: int, *, bad: int = 0) -> io.BytesIO:
    lines = [f"Battery {i},battery,{ean(i)},52.09,5.12,100,100,200" for i in range(rows)]
    lines += [f"Broken {i},battery,{ean(rows + i)},52.09,5.12,-1,100,200" for i in range(bad)]
    file = io.BytesIO((HEADER + "\n".join(lines) + "\n").encode())
    file.name = "assets.csv"
    return file


@pytest.fixture
def background(settings):
    """Every upload becomes a job."""
    settings.FLEXMARKET_IMPORT_INLINE_MAX_BYTES = 0


@pytest.mark.django_db
def test_a_large_asset_file_becomes_a_job_that_imports_it(
    background, client_for, esp_user, django_capture_on_commit_callbacks
):
    client = client_for(esp_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/assets/import/", {"file": assets_csv(30)}, format="multipart")
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert response["Location"] == f"/api/v1/import-jobs/{job.pk}/"
    data = client.get(response["Location"]).json()
    assert data["state"] == "succeeded" and data["rows_done"] == 30 and data["result"] == {"count": 30}
    assert data["message"] == "Imported 30 assets."
    assert FlexAsset.objects.count() == 30


@pytest.mark.django_db
def test_a_failed_job_counts_every_bad_row_and_lists_the_first_n(
    background, settings, client_for, esp_user, django_capture_on_commit_callbacks
):
    settings.FLEXMARKET_IMPORT_ERRORS_LISTED = 25
    client = client_for(esp_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/assets/import/", {"file": assets_csv(10, bad=140)}, format="multipart"
        )
    data = client.get(response["Location"]).json()
    assert data["state"] == "failed"
    assert data["error_count"] == 140 and len(data["errors"]) == 25 and data["rows_done"] == 150
    assert data["errors"][0] == {"row": 12, "field": "max_up_kw", "message": data["errors"][0]["message"]}
    assert data["message"] == "140 problem(s) in row(s); nothing was imported. The first 25 are listed."
    assert not FlexAsset.objects.exists()


@pytest.mark.django_db
def test_inline_imports_also_count_every_bad_row(settings, client_for, esp_user):
    settings.FLEXMARKET_IMPORT_ERRORS_LISTED = 10
    response = client_for(esp_user).post(
        "/api/v1/assets/import/", {"file": assets_csv(1, bad=1_100)}, format="multipart"
    )
    error = response.json()["error"]
    assert response.status_code == 400 and error["error_count"] == 1_100 and len(error["errors"]) == 10
    assert error["message"].startswith("1100 problem(s)")


@pytest.mark.django_db
def test_meter_uploads_report_exact_counts_beyond_a_thousand(settings, client, esp_user, asset):
    settings.FLEXMARKET_IMPORT_ERRORS_LISTED = 50
    rows = "".join(
        f"{asset.connection_ean},2026-06-10T17:00:00+02:00,not-a-number-{i}\n" for i in range(1_500)
    )
    file = io.BytesIO(("asset_ean,ptu_start,kw\n" + rows).encode())
    file.name = "meter.csv"
    client.force_login(esp_user)
    response = client.post("/settlement/meter-data/", {"file": file})
    assert response.status_code == 400 and len(response.context["row_errors"]) == 50
    assert "1500 problem(s)" in response.content.decode()
    assert not MeterDay.objects.exists()


@pytest.mark.django_db
def test_progress_of_a_running_job_is_read_live(client_for, esp_user, actor_esp):
    job = ImportJob.objects.create(kind="assets", owner=actor_esp.organisation, state=ImportJob.State.RUNNING)
    imports.Progress(job.pk)(1_234, 5)
    data = client_for(esp_user).get(f"/api/v1/import-jobs/{job.pk}/").json()
    assert (data["rows_done"], data["error_count"]) == (1_234, 5)
    caches["imports"].clear()


@pytest.mark.django_db
def test_an_unexpected_error_fails_the_job_visibly(background, monkeypatch, actor_esp, esp_user, client_for):
    def explode(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("grid.services.assets_import_job", explode)
    job = imports.import_job_create(actor=actor_esp, kind="assets", upload=assets_csv(2))
    job = imports.import_job_run(job_id=job.pk)
    assert job.state == ImportJob.State.FAILED and "RuntimeError" in job.message and job.finished_at
    assert imports.import_job_run(job_id=job.pk).state == ImportJob.State.FAILED  # a redelivery is a no-op


@pytest.mark.django_db
def test_jobs_of_another_organisation_are_not_found(client_for, esp2_user, actor_esp, client):
    job = ImportJob.objects.create(kind="assets", owner=actor_esp.organisation)
    assert client_for(esp2_user).get(f"/api/v1/import-jobs/{job.pk}/").status_code == 404
    assert client_for(esp2_user).get("/api/v1/import-jobs/").json()["count"] == 0
    client.force_login(esp2_user)
    assert client.get(f"/imports/{job.pk}/").status_code == 404


@pytest.mark.django_db
def test_only_the_right_role_can_start_a_job(background, client_for, dso_user):
    response = client_for(dso_user).post(
        "/api/v1/assets/import/", {"file": assets_csv(2)}, format="multipart"
    )
    assert response.status_code == 400 and not ImportJob.objects.exists()


@pytest.mark.django_db
def test_an_upload_above_the_byte_limit_is_refused_before_it_is_stored(
    background, settings, client_for, esp_user
):
    settings.FLEXMARKET_UPLOAD_MAX_BYTES = 1_000
    response = client_for(esp_user).post(
        "/api/v1/assets/import/", {"file": assets_csv(50)}, format="multipart"
    )
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_a_file_above_the_row_limit_is_refused_before_any_row_is_processed(settings, client_for, esp_user):
    settings.FLEXMARKET_IMPORT_MAX_ROWS = 5
    response = client_for(esp_user).post(
        "/api/v1/assets/import/", {"file": assets_csv(6)}, format="multipart"
    )
    assert response.status_code == 400
    assert "more than 5 rows" in response.json()["error"]["fields"]["file"][0]
    assert not FlexAsset.objects.exists()


def _upload(text: str, name: str) -> io.BytesIO:
    file = io.BytesIO(text.encode())
    file.name = name
    return file


@pytest.mark.django_db
@pytest.mark.parametrize(
    "user, page, kind, body",
    [
        (
            "esp_user",
            "/grid/assets/import/",
            "assets",
            lambda c: HEADER + "B,battery,871000000000099994,52.09,5.12,1,1,2\n",
        ),
        (
            "dso_user",
            "/grid/zones/import/",
            "zones",
            lambda c: (
                '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "Z", "code": "z"}, "geometry": '
                + str(square(5.6, 52.3)).replace("'", '"')
                + "}]}"
            ),
        ),
        (
            "dso_user",
            "/trading/import/request/",
            "requests",
            lambda c: (
                f"grid_location_code,product_code,ptu_start,quantities_kw,price\n{c['zone'].code},{c['product'].code},{c['ptu17'].isoformat()},10,50\n"
            ),
        ),
        (
            "esp_user",
            "/trading/import/offer/",
            "offers",
            lambda c: (
                f"asset_ean,product_code,ptu_start,quantities_kw,price\n{c['asset'].connection_ean},{c['product'].code},{c['ptu17'].isoformat()},10,50\n"
            ),
        ),
        (
            "esp_user",
            "/settlement/meter-data/",
            "meter_readings",
            lambda c: f"asset_ean,ptu_start,kw\n{c['asset'].connection_ean},2026-06-10T17:00:00+02:00,5\n",
        ),
        (
            "esp_user",
            "/settlement/prognoses/",
            "prognoses",
            lambda c: (
                f"asset_ean,delivery_day,values_kw\n{c['asset'].connection_ean},{c['session'].delivery_day},{' '.join(['1'] * 96)}\n"
            ),
        ),
    ],
)
def test_every_import_page_runs_large_files_as_jobs(
    user,
    page,
    kind,
    body,
    background,
    request,
    client,
    zone,
    asset,
    product,
    session,
    ptu17,
    django_capture_on_commit_callbacks,
):
    ctx = {"zone": zone, "asset": asset, "product": product, "session": session, "ptu17": ptu17}
    created = {
        "assets": FlexAsset,
        "zones": GridLocation,
        "requests": FlexRequest,
        "offers": FlexOffer,
        "meter_readings": MeterDay,
        "prognoses": Prognosis,
    }[kind]
    before = created.objects.count()
    client.force_login(request.getfixturevalue(user))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page, {"file": _upload(body(ctx), "upload.csv")})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.pk}/"
    assert (job.kind, job.state) == (kind, ImportJob.State.SUCCEEDED), job.message
    detail = client.get(response["Location"]).content.decode()
    assert 'data-testid="import-state"' in detail and "Imported 1 " in detail
    assert created.objects.count() == before + 1


@pytest.mark.worker
def test_a_job_runs_on_a_real_worker(background, celery_worker, client_for, esp_user):
    client = client_for(esp_user)
    response = client.post("/api/v1/assets/import/", {"file": assets_csv(40)}, format="multipart")
    assert response.status_code == 202
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        data = client.get(response["Location"]).json()
        if data["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert data["state"] == "succeeded" and data["rows_done"] == 40, data
    assert FlexAsset.objects.count() == 40


@pytest.mark.django_db
def test_the_fmo_sees_jobs_and_task_failures_read_only_in_the_admin(client, fmo_user, actor_esp):
    from flexmarket.models import TaskFailure

    job = ImportJob.objects.create(kind="assets", owner=actor_esp.organisation, filename="big.csv")
    failure = TaskFailure.objects.create(
        task="trading.sessions_open_ahead", target="x#1", error="TypeError: boom"
    )
    client.force_login(fmo_user)
    assert "big.csv" in client.get("/admin/flexmarket/importjob/").content.decode()
    assert "TypeError: boom" in client.get("/admin/flexmarket/taskfailure/").content.decode()
    assert (
        client.post(f"/admin/flexmarket/taskfailure/{failure.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert ImportJob.objects.filter(pk=job.pk).exists() and TaskFailure.objects.filter(pk=failure.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/assets/import/", "/grid/assets/import/"])
def test_an_upload_far_above_the_limit_is_refused_before_its_body_is_read(
    settings, client_for, esp_user, url
):
    settings.FLEXMARKET_UPLOAD_MAX_BYTES = 10_000
    response = client_for(esp_user).post(url, {"file": assets_csv(5_000)}, format="multipart")
    assert response.status_code == 413 and "at most 10,000" in response.content.decode()
    assert not FlexAsset.objects.exists() and not ImportJob.objects.exists()
