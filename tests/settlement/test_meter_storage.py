"""Meter storage (issue 10, item 4): packed day rows, exact Decimals, corrections kept as history, idempotent
uploads, the per-reading list API, large API batches as import jobs, and a property against a dict reference."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmarket import ptu
from flexmarket.errors import ValidationErrors
from flexmarket.models import ImportJob
from settlement import meterdays, selectors, services
from settlement.models import MeterDay, MeterUpload
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.settlement.readings import readings_all

DAY = date(2026, 10, 24)  # the local day before the autumn DST change: UTC days still have 96 PTUs
START = datetime(2026, 10, 24, tzinfo=UTC)


@pytest.fixture
def asset(esp_org, dso_org):
    return FlexAssetFactory(
        owner=esp_org,
        grid_location=GridLocationFactory(dso=dso_org),
        max_up_kw=Decimal("300"),
        max_down_kw=Decimal("300"),
    )


def csv_of(rows) -> io.BytesIO:
    lines = ["asset_ean,ptu_start,kw"] + [f"{ean},{moment.isoformat()},{kw}" for ean, moment, kw in rows]
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def upload(actor, rows):
    return services.meter_upload_csv(actor=actor, file=csv_of(rows), filename="m.csv")


def moment(index: int) -> datetime:
    return START + index * ptu.PTU


# --- the packed layout -------------------------------------------------------------------------------------


@given(st.decimals(min_value=-3000, max_value=3000, places=3, allow_nan=False, allow_infinity=False))
def test_watts_round_trip_a_three_decimal_kw_exactly(kw):
    back = meterdays.kw_of(meterdays.watts_of(kw))
    assert back == kw and back.as_tuple().exponent == -3


def test_a_kw_with_more_than_three_decimals_is_not_packed():
    with pytest.raises(ValueError, match="three decimals"):
        meterdays.watts_of(Decimal("1.0005"))


def test_a_utc_day_always_has_96_ptus_across_dst():
    assert meterdays.position(datetime(2026, 10, 25, 23, 45, tzinfo=UTC)) == (date(2026, 10, 25), 95)
    local_day = ptu.ptu_starts(date(2026, 10, 25), "Europe/Amsterdam")  # 100 local PTUs
    assert len(local_day) == 100
    assert {meterdays.position(m)[0] for m in local_day} == {date(2026, 10, 24), date(2026, 10, 25)}


@pytest.mark.django_db
def test_an_upload_stores_exact_decimals_and_reads_them_back(actor_esp, asset):
    values = ["0.001", "-0.001", "2999.999", "-12.340", "0", "123.4"]
    upload(actor_esp, [(asset.connection_ean, moment(i), kw) for i, kw in enumerate(values)])
    stored = readings_all()
    assert [stored[(asset.pk, "esp", moment(i))] for i in range(len(values))] == [Decimal(v) for v in values]
    assert all(kw.as_tuple().exponent == -3 for kw in stored.values())
    series = selectors.readings_series(asset_ids=[asset.pk], start=START, end=moment(96))[asset.pk]
    assert series == {moment(i): float(Decimal(v)) for i, v in enumerate(values)}
    row = MeterDay.objects.get()
    assert (row.day, row.readings, len(bytes(row.watts))) == (DAY, 6, meterdays.BYTES)


@pytest.mark.django_db
def test_a_local_dst_day_is_stored_as_two_utc_days(actor_esp, asset):
    starts = ptu.ptu_starts(date(2026, 10, 25), "Europe/Amsterdam")
    upload(actor_esp, [(asset.connection_ean, m, "5") for m in starts])
    rows = {row.day: row.readings for row in MeterDay.objects.all()}
    assert rows == {date(2026, 10, 24): 8, date(2026, 10, 25): 92} and sum(rows.values()) == 100


# --- corrections and idempotency ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_correction_keeps_the_previous_version_as_history(actor_esp, asset):
    ean = asset.connection_ean
    first = upload(actor_esp, [(ean, moment(i), "10") for i in range(96)])
    second = upload(actor_esp, [(ean, moment(5), "10.5")])
    assert second.changed_count == 1
    old, new = MeterDay.objects.filter(asset=asset, day=DAY).order_by("version")
    assert (old.version, old.upload_id, old.superseded_at is not None) == (1, first.pk, True)
    assert (new.version, new.upload_id, new.superseded_at) == (2, second.pk, None)
    assert meterdays.kw_of(meterdays.unpack(old.watts)[5]) == Decimal("10.000")
    assert readings_all()[(asset.pk, "esp", moment(5))] == Decimal("10.500")
    assert readings_all(current=False)[(asset.pk, "esp", moment(5))] == Decimal("10.000")
    assert len(readings_all()) == 96


@pytest.mark.django_db
def test_the_same_upload_twice_changes_nothing(actor_esp, asset):
    rows = [(asset.connection_ean, moment(i), f"{i}.5") for i in range(0, 192, 3)]
    assert upload(actor_esp, rows).changed_count == 64
    before = list(MeterDay.objects.values_list("pk", "version", "watts", "superseded_at"))
    assert upload(actor_esp, rows).changed_count == 0
    assert list(MeterDay.objects.values_list("pk", "version", "watts", "superseded_at")) == before


@pytest.mark.django_db
def test_one_file_is_one_version_whatever_the_order_of_its_rows(actor_esp, asset, monkeypatch):
    monkeypatch.setattr("settlement.services.meter.BATCH", 7)  # rows of one day land in many batches
    rows = [(asset.connection_ean, moment(i), "1") for i in range(0, 96, 2)]
    rows += [(asset.connection_ean, moment(i), "2") for i in range(1, 96, 2)]
    assert upload(actor_esp, rows).changed_count == 96
    assert list(MeterDay.objects.values_list("version", "readings")) == [(1, 96)]


@pytest.mark.django_db
def test_a_bad_row_writes_nothing(actor_esp, actor_esp2, asset):
    ean = asset.connection_ean
    upload(actor_esp, [(ean, moment(0), "1")])
    before = list(MeterDay.objects.values_list("pk", "version", "watts"))
    bad = [(ean, moment(1), "2"), (ean, moment(1), "3"), (ean, "2026-10-24T00:07:00+00:00", "1")]
    with pytest.raises(ValidationErrors) as error:
        services.meter_upload_csv(
            actor=actor_esp,
            file=io.BytesIO(
                (
                    "asset_ean,ptu_start,kw\n"
                    + "".join(f"{e},{m if isinstance(m, str) else m.isoformat()},{k}\n" for e, m, k in bad)
                ).encode()
            ),
        )
    assert [(e["row"], e["field"]) for e in error.value.errors] == [(3, "ptu_start"), (4, "ptu_start")]
    with pytest.raises(ValidationErrors):
        upload(actor_esp2, [(ean, moment(2), "1")])  # another ESP's asset
    assert list(MeterDay.objects.values_list("pk", "version", "watts")) == before


# --- property: storing then reading returns the current values ---------------------------------------------

readings_strategy = st.dictionaries(
    st.tuples(st.integers(0, 1), st.integers(0, 3 * 96 - 1)),  # (asset, PTU over three UTC days)
    st.decimals(min_value=-500, max_value=500, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=60,
)


@pytest.mark.django_db
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(uploads=st.lists(readings_strategy, min_size=1, max_size=4))
def test_storing_then_reading_returns_exactly_the_current_values(actor_esp, esp_org, dso_org, uploads):
    MeterDay.objects.all().delete()
    MeterUpload.objects.all().delete()
    zone = GridLocationFactory(dso=dso_org)
    assets = [FlexAssetFactory(owner=esp_org, grid_location=zone, max_up_kw=Decimal("100")) for _ in range(2)]
    reference: dict = {}
    for batch in uploads:  # each upload: new readings, gaps left open, corrections of earlier ones
        result = upload(
            actor_esp, [(assets[a].connection_ean, moment(i), str(kw)) for (a, i), kw in batch.items()]
        )
        changed = {key for key, kw in batch.items() if reference.get(key) != kw}
        assert result.changed_count == len(changed)
        reference.update(batch)
    expected = {(assets[a].pk, "esp", moment(i)): kw for (a, i), kw in reference.items()}
    assert readings_all() == expected
    series = selectors.readings_series(asset_ids=[a.pk for a in assets], start=START, end=moment(3 * 96))
    assert {(a, "esp", m): v for a, values in series.items() for m, v in values.items()} == {
        key: float(kw) for key, kw in expected.items()
    }
    fingerprint = selectors.readings_fingerprint(
        asset_ids=[a.pk for a in assets], start=START, end=moment(288)
    )
    assert [(a, m) for a, m, _ in fingerprint] == sorted((a, m) for a, _, m in expected)


# --- the API -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_api_pages_readings_across_day_rows(client_for, esp_user, stranger_user, actor_esp, asset):
    upload(
        actor_esp, [(asset.connection_ean, moment(i), f"{i}.125") for i in range(90, 200)]
    )  # three UTC days
    client = client_for(esp_user)
    seen = []
    for page in (1, 2, 3):
        body = client.get("/api/v1/meter-readings/", {"page": page, "page_size": 50}).json()
        assert body["count"] == 110
        seen += body["results"]
    assert [r["ptu_start"] for r in seen] == [
        moment(i).isoformat().replace("+00:00", "Z") for i in range(90, 200)
    ]
    assert [r["kw"] for r in seen] == [f"{i}.125" for i in range(90, 200)]
    assert seen[0] == {
        "asset_ean": asset.connection_ean,
        "ptu_start": "2026-10-24T22:30:00Z",
        "kw": "90.125",
        "source": "esp",
        "version": 1,
        "created_at": seen[0]["created_at"],
    }
    assert client_for(stranger_user).get("/api/v1/meter-readings/").json()["count"] == 0


@pytest.mark.django_db
def test_the_list_api_reads_a_page_in_a_fixed_number_of_queries(
    client_for, esp_user, actor_esp, asset, django_assert_max_num_queries
):
    upload(actor_esp, [(asset.connection_ean, moment(i), "1") for i in range(96 * 5)])
    client = client_for(esp_user)
    with django_assert_max_num_queries(8):
        body = client.get("/api/v1/meter-readings/", {"page": 3, "page_size": 100}).json()
    assert len(body["results"]) == 100 and body["results"][0]["ptu_start"] == "2026-10-26T02:00:00Z"


@pytest.mark.django_db
def test_a_small_api_batch_is_written_at_once(client_for, esp_user, asset):
    readings = [
        {"asset_ean": asset.connection_ean, "ptu_start": moment(i).isoformat(), "kw": "3"} for i in range(4)
    ]
    response = client_for(esp_user).post("/api/v1/meter-readings/", {"readings": readings}, format="json")
    assert response.status_code == 201 and response.json()["changed_count"] == 4
    assert len(readings_all()) == 4


@pytest.mark.django_db
def test_a_large_api_batch_becomes_a_job_that_reports_progress(
    settings, client_for, esp_user, asset, django_capture_on_commit_callbacks
):
    settings.FLEXMARKET_METER_API_INLINE_MAX_READINGS = 10
    readings = [
        {"asset_ean": asset.connection_ean, "ptu_start": moment(i).isoformat(), "kw": f"{i}.5"}
        for i in range(30)
    ]
    client = client_for(esp_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/meter-readings/", {"readings": readings}, format="json")
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert response.json()["id"] == job.pk and job.kind == "meter_readings"
    data = client.get(response["Location"]).json()
    assert data["state"] == "succeeded" and data["rows_done"] == 30 and data["error_count"] == 0
    assert data["result"]["changed"] == 30
    assert readings_all()[(asset.pk, "esp", moment(29))] == Decimal("29.500")


@pytest.mark.django_db
def test_a_large_api_batch_with_bad_rows_fails_as_a_job_and_writes_nothing(
    settings, client_for, esp_user, asset, django_capture_on_commit_callbacks
):
    settings.FLEXMARKET_METER_API_INLINE_MAX_READINGS = 10
    readings = [
        {"asset_ean": asset.connection_ean, "ptu_start": moment(i).isoformat(), "kw": "1"} for i in range(20)
    ]
    readings[4]["ptu_start"] = "yesterday"
    readings[7] = dict(readings[6])  # a duplicate
    readings[9]["asset_ean"] = "999999999999999999"
    client = client_for(esp_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/meter-readings/", {"readings": readings}, format="json")
    assert response.status_code == 202
    data = client.get(response["Location"]).json()
    assert data["state"] == "failed" and data["error_count"] == 3 and data["rows_done"] == 20
    assert [(e["row"], e["field"]) for e in data["errors"]] == [
        (6, "ptu_start"),
        (9, "ptu_start"),
        (11, "asset_ean"),
    ]
    assert not MeterDay.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ptu_start": "2026-10-24T00:00:00"}, "ptu_start"),  # no UTC offset
        ({"ptu_start": "2026-10-24T00:07:00Z"}, "ptu_start"),  # off a PTU boundary
        ({"asset_ean": "999999999999999999"}, "asset_ean"),  # unknown or another ESP's
        ({"ptu_start": "2026-10-24T00:15:00Z"}, "ptu_start"),  # duplicates the second reading
    ],
)
def test_a_small_api_batch_with_a_bad_row_answers_400_and_writes_nothing(
    client_for, esp_user, asset, change, field
):
    readings = [
        {"asset_ean": asset.connection_ean, "ptu_start": moment(i).isoformat(), "kw": "1"} for i in range(3)
    ]
    readings[2].update(change)
    response = client_for(esp_user).post("/api/v1/meter-readings/", {"readings": readings}, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not MeterDay.objects.exists()


@pytest.mark.django_db
def test_another_esp_cannot_write_readings_of_my_asset(client_for, esp2_user, asset):
    readings = [{"asset_ean": asset.connection_ean, "ptu_start": moment(0).isoformat(), "kw": "1"}]
    response = client_for(esp2_user).post("/api/v1/meter-readings/", {"readings": readings}, format="json")
    assert response.status_code == 400 and not MeterDay.objects.exists()
