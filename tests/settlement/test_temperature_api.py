"""The zone temperature API and page: the zone's DSO and the FMO upload, others see nothing, bad input is a 400."""

import io

import pytest

from settlement.models import ZoneTemperature
from tests.grid.factories import GridLocationFactory

URL = "/api/v1/temperatures/"


def body(code, *rows):
    return {"temperatures": [{"grid_location_code": code, "start": s, "celsius": c} for s, c in rows]}


@pytest.mark.django_db
def test_the_zone_dso_posts_temperatures_and_lists_them(client_for, dso_user, world):
    client = client_for(dso_user)
    code = world["zone"].code
    answer = client.post(
        URL, body(code, ("2026-01-15T07:00Z", "3.5"), ("2026-01-15T08:00Z", "4")), format="json"
    )
    assert answer.status_code == 201
    assert answer.json() == {
        "count": 2,
        "created": 2,
        "updated": 0,
        "zones": [code],
        "first": "2026-01-15T07:00:00Z",
        "last": "2026-01-15T08:00:00Z",
    }
    listed = client.get(URL, {"grid_location": world["zone"].pk}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["grid_location_code"], r["start"], r["celsius"]) for r in rows] == [
        (code, "2026-01-15T07:00:00Z", "3.50"),
        (code, "2026-01-15T08:00:00Z", "4.00"),
    ]


@pytest.mark.django_db
def test_bad_rows_answer_400_with_row_errors_and_write_nothing(client_for, dso_user, world):
    client = client_for(dso_user)
    answer = client.post(
        URL,
        body(world["zone"].code, ("2026-01-15T07:00Z", "3"), ("2026-01-15T07:10Z", "cold")),
        format="json",
    )
    assert answer.status_code == 400
    errors = answer.json()["error"]["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(3, "start")]  # a row stops at its first problem
    assert client.post(URL, {"temperatures": []}, format="json").status_code == 400
    missing_field = client.post(URL, {"temperatures": [{"grid_location_code": "x"}]}, format="json")
    assert missing_field.status_code == 400
    assert not ZoneTemperature.objects.exists()


@pytest.mark.django_db
def test_other_organisations_neither_write_nor_see_a_zones_temperatures(
    client_for, dso_user, dso2_user, esp_user, world
):
    code = world["zone"].code
    client_for(dso_user).post(URL, body(code, ("2026-01-15T07:00Z", "3")), format="json")
    theirs = client_for(dso2_user).post(URL, body(code, ("2026-01-15T08:00Z", "3")), format="json")
    missing = client_for(dso2_user).post(URL, body("ean.nothing", ("2026-01-15T08:00Z", "3")), format="json")
    assert theirs.status_code == missing.status_code == 400
    assert theirs.json()["error"]["errors"] == missing.json()["error"]["errors"]
    for user in (dso2_user, esp_user):
        listed = client_for(user).get(URL).json()
        assert (listed["results"] if isinstance(listed, dict) else listed) == []
    esp_post = client_for(esp_user).post(URL, body(code, ("2026-01-15T08:00Z", "3")), format="json")
    assert esp_post.status_code == 400 and esp_post.json()["error"]["code"] == "role_required"
    assert ZoneTemperature.objects.count() == 1


@pytest.mark.django_db
def test_the_fmo_posts_for_any_zone_and_anonymous_may_not(client_for, fmo_user, api_client, world, dso2_org):
    other = GridLocationFactory(dso=dso2_org)
    answer = client_for(fmo_user).post(URL, body(other.code, ("2026-01-15T07:00Z", "-3")), format="json")
    assert answer.status_code == 201
    assert api_client.post(URL, body(other.code, ("2026-01-15T08:00Z", "1")), format="json").status_code in (
        401,
        403,
    )
    assert api_client.get(URL).status_code in (401, 403)


@pytest.mark.django_db
def test_the_temperature_page_uploads_and_shows_row_errors(client, dso_user, world):
    client.force_login(dso_user)
    code = world["zone"].code
    page = client.get("/settlement/temperatures/")
    assert page.status_code == 200 and code in page.content.decode()
    good = io.BytesIO(f"grid_location_code,start,celsius\n{code},2026-01-15T07:00Z,3\n".encode())
    good.name = "t.csv"
    done = client.post("/settlement/temperatures/", {"file": good}, follow=True)
    assert "1 temperatures checked: 1 new, 0 changed." in done.content.decode()
    bad = io.BytesIO(f"grid_location_code,start,celsius\n{code},2026-01-15T07:00Z,hot\n".encode())
    bad.name = "t.csv"
    refused = client.post("/settlement/temperatures/", {"file": bad})
    assert refused.status_code == 400 and 'data-testid="row-errors"' in refused.content.decode()
    assert ZoneTemperature.objects.get().celsius == 3


@pytest.mark.django_db
def test_the_temperature_page_is_for_dsos_and_the_fmo(client, esp_user, fmo_user, dso_user):
    client.force_login(esp_user)
    assert client.get("/settlement/temperatures/").status_code == 403
    assert "nav-temperatures" not in client.get("/settlement/accuracy/").content.decode()
    for user in (fmo_user, dso_user):
        client.force_login(user)
        assert client.get("/settlement/temperatures/").status_code == 200
        assert "nav-temperatures" in client.get("/settlement/accuracy/").content.decode()


@pytest.mark.django_db
def test_a_large_temperature_file_becomes_an_import_job(
    settings, client, dso_user, world, django_capture_on_commit_callbacks
):
    from flexmarket.models import ImportJob

    settings.FLEXMARKET_IMPORT_INLINE_MAX_BYTES = 0
    client.force_login(dso_user)
    file = io.BytesIO(
        f"grid_location_code,start,celsius\n{world['zone'].code},2026-01-15T07:00Z,3\n".encode()
    )
    file.name = "t.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settlement/temperatures/", {"file": file})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.pk}/"
    job.refresh_from_db()
    assert (
        job.kind == "temperatures" and job.state == "succeeded" and job.message == "Imported 1 temperatures."
    )
    assert ZoneTemperature.objects.count() == 1


@pytest.mark.django_db
def test_the_fmo_sees_zone_temperatures_in_the_admin(client, fmo_user, world, actor_dso):
    from settlement.services.weather import temperatures_import_csv

    temperatures_import_csv(
        actor=actor_dso,
        file=io.BytesIO(
            f"grid_location_code,start,celsius\n{world['zone'].code},2026-01-15T07:00Z,3\n".encode()
        ),
    )
    client.force_login(fmo_user, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/admin/settlement/zonetemperature/")
    assert page.status_code == 200 and world["zone"].name in page.content.decode()
