"""Zone temperatures: all-or-nothing uploads by the zone's DSO or the FMO, the temperature baseline in
verification and accuracy scoring, and the daily scoring schedule."""

import io
import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import AuditEvent
from flexmarket import ptu
from flexmarket.errors import DomainError, ValidationErrors
from settlement import selectors, services
from settlement.models import BaselineAccuracy, DeliveryVerification, VerificationRun, ZoneTemperature
from settlement.services.weather import temperatures_import_csv
from settlement.tasks import accuracy_compute_due_task
from tests.grid.factories import FlexAssetFactory
from tests.settlement.fixtures import DELIVERY_DAY, TZ, make_contract, readings_csv, upload

UTC = ptu.UTC


def csv_file(lines) -> io.BytesIO:
    return io.BytesIO(("grid_location_code,start,celsius\n" + "\n".join(lines) + "\n").encode())


def outdoor(moment: datetime) -> float:
    """A made-up hourly temperature: a weather swing from day to day and a daily cycle."""
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    days = (hour - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds() / 86400
    return round(8 + 8 * math.sin(days * 1.3) + 4 * math.sin(2 * math.pi * (hour.hour - 9) / 24), 2)


def heating_kw(moment: datetime) -> float:
    return round(100 + 5 * max(0.0, 14 - outdoor(moment)), 3)


def hourly_temperatures(zone, first: date, days: int, *, skip: date | None = None) -> io.BytesIO:
    start, _ = ptu.day_bounds_utc(first, TZ)
    _, end = ptu.day_bounds_utc(first + timedelta(days=days - 1), TZ)
    lines, moment = [], start
    while moment < end:
        if skip is None or ptu.local_day_of(moment, TZ) != skip:
            lines.append(f"{zone.code},{moment.isoformat()},{outdoor(moment)}")
        moment += timedelta(hours=1)
    return csv_file(lines)


def load_kw(day, index):
    return heating_kw(ptu.ptu_starts(day, TZ)[index])


# --- uploads ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_zone_dso_uploads_hourly_temperatures_stored_in_utc(world, actor_dso):
    zone = world["zone"]
    result = temperatures_import_csv(
        actor=actor_dso,
        file=csv_file(
            [
                f"{zone.code},2026-01-15T08:00+01:00,3.5",
                f"{zone.code},2026-01-15T09:00+01:00,-1.25",
                f"{zone.code},2026-01-15T10:00+01:00,0.456",
            ]
        ),
    )
    assert result["count"] == 3 and result["created"] == 3 and result["zones"] == [zone.code]
    stored = list(ZoneTemperature.objects.values_list("start", "celsius"))
    assert stored == [
        (datetime(2026, 1, 15, 7, tzinfo=UTC), Decimal("3.50")),
        (datetime(2026, 1, 15, 8, tzinfo=UTC), Decimal("-1.25")),
        (datetime(2026, 1, 15, 9, tzinfo=UTC), Decimal("0.46")),  # kept to 0.01 °C
    ]
    assert AuditEvent.objects.filter(action="temperatures.upload").count() == 1


@pytest.mark.django_db
def test_a_second_upload_replaces_changed_values_only(world, actor_dso):
    code = world["zone"].code
    temperatures_import_csv(
        actor=actor_dso, file=csv_file([f"{code},2026-01-15T07:00Z,3", f"{code},2026-01-15T08:00Z,4"])
    )
    again = temperatures_import_csv(
        actor=actor_dso, file=csv_file([f"{code},2026-01-15T07:00Z,3.00", f"{code},2026-01-15T08:00Z,5"])
    )
    assert (again["created"], again["updated"]) == (0, 1)
    assert ZoneTemperature.objects.get(start=datetime(2026, 1, 15, 8, tzinfo=UTC)).celsius == Decimal("5.00")


@pytest.mark.django_db
def test_every_bad_row_is_reported_and_nothing_is_written(world, actor_dso):
    code = world["zone"].code
    rows = [
        f"{code},2026-01-15T07:00Z,3",  # good, but the file fails as a whole
        f"{code},2026-01-15T07:05Z,3",
        f"{code},2026-01-15T08:00,3",
        f"{code},2026-01-15T09:00Z,warm",
        f"{code},2026-01-15T10:00Z,95",
        f"{code},2026-01-15T07:00Z,4",
        "no-such-zone,2026-01-15T07:00Z,3",
    ]
    with pytest.raises(ValidationErrors) as caught:
        temperatures_import_csv(actor=actor_dso, file=csv_file(rows))
    problems = [(e["row"], e["field"]) for e in caught.value.errors]
    assert problems == [
        (3, "start"),
        (4, "start"),
        (5, "celsius"),
        (6, "celsius"),
        (7, "start"),
        (8, "grid_location_code"),
    ]
    assert "nothing was imported" in caught.value.message
    assert not ZoneTemperature.objects.exists() and not AuditEvent.objects.filter(
        action="temperatures.upload"
    )


@pytest.mark.django_db
def test_a_file_with_the_wrong_columns_or_no_rows_is_refused(world, actor_dso):
    with pytest.raises(DomainError, match="Missing columns: celsius"):
        temperatures_import_csv(actor=actor_dso, file=io.BytesIO(b"grid_location_code,start\nx,y\n"))
    with pytest.raises(DomainError, match="no rows"):
        temperatures_import_csv(actor=actor_dso, file=csv_file([]))


@pytest.mark.django_db
def test_another_dsos_zone_is_unknown_exactly_like_a_missing_one(world, actor_dso2):
    foreign = temperatures_import_csv
    with pytest.raises(ValidationErrors) as theirs:
        foreign(actor=actor_dso2, file=csv_file([f"{world['zone'].code},2026-01-15T07:00Z,3"]))
    with pytest.raises(ValidationErrors) as missing:
        foreign(actor=actor_dso2, file=csv_file(["ean.000000000000000000,2026-01-15T07:00Z,3"]))
    assert theirs.value.errors == missing.value.errors
    assert not ZoneTemperature.objects.exists()


@pytest.mark.django_db
def test_only_a_dso_or_the_fmo_uploads(world, actor_esp, actor_fmo):
    line = [f"{world['zone'].code},2026-01-15T07:00Z,3"]
    with pytest.raises(DomainError, match="Only a DSO"):
        temperatures_import_csv(actor=actor_esp, file=csv_file(line))
    assert temperatures_import_csv(actor=actor_fmo, file=csv_file(line))["created"] == 1


@pytest.mark.django_db
def test_an_hourly_value_covers_the_four_ptus_of_its_hour_only(world, actor_dso):
    zone = world["zone"]
    temperatures_import_csv(actor=actor_dso, file=csv_file([f"{zone.code},2026-01-15T07:00Z,3"]))
    first = datetime(2026, 1, 15, 6, 45, tzinfo=UTC)
    starts = [first + k * ptu.PTU for k in range(6)]
    series = selectors.temperatures_series(grid_location_id=zone.pk, starts=starts)
    assert series == {starts[k]: 3.0 for k in range(1, 5)}


# --- verification and accuracy with the temperature baseline --------------------------------------


@pytest.fixture
def heating_world(world, actor_dso, actor_esp):
    """30 days of heating load (100 kW + 5 kW per degree below 14 °C) and the zone's hourly temperatures."""
    product = world["product"]
    product.baseline_method, product.baseline_params = "temperature", {}
    product.full_clean()  # a method products may choose
    product.save()
    first = DELIVERY_DAY - timedelta(days=30)
    upload(actor_esp, readings_csv(world["asset"], first, 30, load_kw))
    upload(
        actor_esp,
        readings_csv(
            world["asset"], DELIVERY_DAY, 1, lambda d, i: load_kw(d, i) - (100 if 68 <= i < 72 else 0)
        ),
    )
    contract = make_contract(
        product=product, day=DELIVERY_DAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    return world | {"contract": contract, "first": first}


@pytest.mark.django_db
def test_a_temperature_product_verifies_against_the_days_temperatures(heating_world, actor_dso):
    temperatures_import_csv(
        actor=actor_dso, file=hourly_temperatures(heating_world["zone"], heating_world["first"], 31)
    )
    verification = services.verification_run(contract=heating_world["contract"])
    assert verification.state == DeliveryVerification.State.VERIFIED
    assert verification.method == "temperature"
    assert verification.delivered_kw[68:72] == pytest.approx([100.0] * 4, abs=0.002)
    assert verification.delivered_kwh == Decimal("100.000")


@pytest.mark.django_db
def test_missing_temperatures_of_the_day_wait_then_an_upload_requeues_verification(heating_world, actor_dso):
    zone, first = heating_world["zone"], heating_world["first"]
    temperatures_import_csv(actor=actor_dso, file=hourly_temperatures(zone, first, 31, skip=DELIVERY_DAY))
    waiting = services.verification_run(contract=heating_world["contract"])
    assert waiting.state == DeliveryVerification.State.AWAITING_DATA
    assert "awaiting the day's temperatures" in waiting.note
    VerificationRun.objects.all().delete()
    temperatures_import_csv(actor=actor_dso, file=hourly_temperatures(zone, DELIVERY_DAY, 1))
    assert VerificationRun.objects.filter(contract=heating_world["contract"]).exists()
    assert (
        services.verification_run(contract=heating_world["contract"]).state
        == DeliveryVerification.State.VERIFIED
    )


@pytest.mark.django_db
def test_accuracy_ranks_the_temperature_model_only_where_the_zone_has_temperatures(heating_world, actor_dso):
    asset = heating_world["asset"]
    without = {row.method for row in services.accuracy_compute(asset=asset, until=DELIVERY_DAY)}
    assert "temperature" not in without and "regression" in without
    temperatures_import_csv(
        actor=actor_dso, file=hourly_temperatures(heating_world["zone"], heating_world["first"], 31)
    )
    scores = {row.method: row for row in services.accuracy_compute(asset=asset, until=DELIVERY_DAY)}
    assert scores["temperature"].samples > 0
    assert scores["temperature"].nmae == pytest.approx(0, abs=1e-4)
    assert all(scores["temperature"].nmae < row.nmae for m, row in scores.items() if m != "temperature")
    ZoneTemperature.objects.all().delete()
    services.accuracy_compute(asset=asset, until=DELIVERY_DAY)
    assert not BaselineAccuracy.objects.filter(
        asset=asset, method="temperature"
    ).exists()  # stale row removed


@pytest.mark.django_db
def test_scheduled_scoring_scores_assets_with_recent_readings_once_a_day(heating_world, time_machine):
    FlexAssetFactory(
        owner=heating_world["esp"], grid_location=heating_world["zone"]
    )  # no readings: not scored
    time_machine.move_to(datetime(2026, 6, 11, 3, 0, tzinfo=UTC), tick=False)
    assert services.accuracy_compute_due() == [heating_world["asset"].pk]
    computed = set(BaselineAccuracy.objects.values_list("asset_id", "method"))
    assert (heating_world["asset"].pk, "high_x_of_y") in computed
    assert services.accuracy_compute_due() == []  # idempotent within the day
    assert accuracy_compute_due_task.apply().get() == 0
    time_machine.move_to(datetime(2026, 6, 12, 3, 0, tzinfo=UTC), tick=False)
    assert services.accuracy_compute_due() == [heating_world["asset"].pk]
    assert BaselineAccuracy.objects.filter(asset=heating_world["asset"], method="high_x_of_y").count() == 1


@pytest.mark.django_db
def test_scoring_is_scheduled_daily_in_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="settlement.accuracy_compute_due")
    assert task.enabled and task.crontab is not None
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
        "2",
        "30",
        "Europe/Amsterdam",
    )


@pytest.mark.django_db
def test_accuracy_is_not_recomputed_for_readings_older_than_the_window(world, actor_esp, time_machine):
    upload(actor_esp, readings_csv(world["asset"], date(2026, 1, 5), 3, lambda d, i: 50))
    time_machine.move_to(datetime(2026, 6, 11, 3, 0, tzinfo=UTC), tick=False)
    assert services.accuracy_compute_due() == []


def test_the_sample_series_is_regenerated_byte_for_byte(tmp_path):
    from settlement.data import sample_temperatures

    written = tmp_path / "sample.csv"
    sample_temperatures.write(written)
    assert written.read_bytes() == sample_temperatures.PATH.read_bytes()
    values = [float(line.split(",")[1]) for line in written.read_text().splitlines()[1:]]
    assert len(values) == 32 * 24 and -15 < min(values) < max(values) < 15  # a January, hour by hour
