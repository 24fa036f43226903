"""Concurrent meter uploads on PostgreSQL, with real threads (each with its own database connection)."""

import threading
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from settlement.models import MeterUpload
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.settlement.fixtures import readings_csv
from tests.settlement.readings import readings_count

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


@pytest.mark.django_db(transaction=True)
def test_four_identical_concurrent_uploads_all_get_the_idempotent_answer(
    client_for, esp_user, esp_org, dso_org
):
    asset = FlexAssetFactory(
        owner=esp_org,
        grid_location=GridLocationFactory(dso=dso_org),
        created_at=datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Amsterdam")),
    )
    data = readings_csv(asset, date(2026, 6, 1), 2, lambda d, i: Decimal(100 + i))
    rows = [line.split(",") for line in data.decode().splitlines()[1:]]
    readings = [{"asset_ean": ean, "ptu_start": start, "kw": kw} for ean, start, kw in rows]
    barrier = threading.Barrier(4)
    answers = []

    def post():
        try:
            client = client_for(esp_user)
            barrier.wait()
            response = client.post("/api/v1/meter-readings/", {"readings": readings}, format="json")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [status for status, _ in answers] == [201] * 4, answers
    assert sorted(body["changed_count"] for _, body in answers) == [0, 0, 0, 192]
    assert all(body["row_count"] == 192 for _, body in answers)
    assert readings_count() == 192 and MeterUpload.objects.filter(state="accepted").count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_temperature_uploads_of_the_same_values_all_succeed(client_for, dso_user, dso_org):
    from settlement.models import ZoneTemperature

    zone = GridLocationFactory(dso=dso_org)
    body = {
        "temperatures": [
            {"grid_location_code": zone.code, "start": f"2026-01-15T{hour:02d}:00Z", "celsius": str(hour / 2)}
            for hour in range(24)
        ]
    }
    barrier = threading.Barrier(4)
    answers = []

    def post():
        try:
            client = client_for(dso_user)
            barrier.wait()
            answers.append(client.post("/api/v1/temperatures/", body, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert answers == [201] * 4
    assert ZoneTemperature.objects.count() == 24
