import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from flexmarket import ptu
from flexmarket.errors import DomainError, ValidationErrors
from settlement import meterdays, services
from settlement.models import DeliveryVerification, Invoice, MeterDay, MeterUpload, SettlementStatement
from tests.settlement.fixtures import DELIVERY_DAY, TZ, meter_csv
from tests.settlement.readings import readings_count


def upload(actor, data: bytes):
    return services.meter_upload_csv(actor=actor, file=io.BytesIO(data), filename="m.csv")


def load_history_and_day(actor, asset, delivered_kw: float):
    """30 days of flat 200 kW, then the delivery day at 200 kW except 17:00–18:00 local at 200 − delivered."""
    upload(actor, meter_csv(asset, DELIVERY_DAY - timedelta(days=30), lambda d, i: 200, days=30))
    return upload(
        actor, meter_csv(asset, DELIVERY_DAY, lambda d, i: 200 - delivered_kw if 68 <= i < 72 else 200)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ("999999999999999999,2026-06-10T00:00:00+00:00,5", "asset_ean", "unknown"),
        ("{ean},2026-06-10T00:07:00+00:00,5", "ptu_start", "boundary"),
        ("{ean},2026-06-10T00:00:00,5", "ptu_start", "UTC offset"),
        ("{ean},not-a-time,5", "ptu_start", "ISO 8601"),
        ("{ean},2026-06-10T00:00:00+00:00,abc", "kw", "not a number"),
        ("{ean},2026-06-10T00:00:00+00:00,99999", "kw", "plausible"),
    ],
)
def test_bad_meter_rows_are_refused_and_nothing_is_written(actor_esp, settled_setup, row, field, message):
    ean = settled_setup["asset"].connection_ean
    with pytest.raises(ValidationErrors) as error:
        upload(
            actor_esp,
            f"asset_ean,ptu_start,kw\n{ean},2026-06-10T00:15:00+00:00,5\n{row.format(ean=ean)}\n".encode(),
        )
    assert error.value.errors[0]["row"] == 3 and error.value.errors[0]["field"] == field
    assert message in error.value.errors[0]["message"]
    assert not MeterDay.objects.exists()
    assert MeterUpload.objects.get().state == "rejected"


@pytest.mark.django_db
def test_duplicates_and_other_esps_assets_are_refused(actor_esp, actor_esp2, settled_setup):
    ean = settled_setup["asset"].connection_ean
    duplicate = (
        f"asset_ean,ptu_start,kw\n{ean},2026-06-10T00:00:00+00:00,5\n{ean},2026-06-10T00:00:00Z,6\n".encode()
    )
    with pytest.raises(ValidationErrors) as error:
        upload(actor_esp, duplicate)
    assert "Duplicate" in error.value.errors[0]["message"]
    with pytest.raises(ValidationErrors):
        upload(actor_esp2, f"asset_ean,ptu_start,kw\n{ean},2026-06-10T00:00:00+00:00,5\n".encode())
    assert not MeterDay.objects.exists()


@pytest.mark.django_db
def test_dst_day_upload_has_100_ptus_and_gaps_are_reported(actor_esp, settled_setup):
    asset = settled_setup["asset"]
    result = upload(actor_esp, meter_csv(asset, date(2026, 10, 25), lambda d, i: 10))
    assert result.row_count == 100 and readings_count() == 100
    data = meter_csv(asset, date(2026, 10, 26), lambda d, i: 10).decode().splitlines()
    gappy = "\n".join(data[:10] + data[12:]) + "\n"
    assert upload(actor_esp, gappy.encode()).warnings == [{"asset": asset.connection_ean, "missing_ptus": 2}]


@pytest.mark.django_db
def test_same_file_twice_changes_nothing_and_corrections_keep_history(actor_esp, settled_setup):
    asset = settled_setup["asset"]
    data = meter_csv(asset, DELIVERY_DAY, lambda d, i: 100)
    assert upload(actor_esp, data).changed_count == 96
    assert upload(actor_esp, data).changed_count == 0
    assert readings_count() == 96
    corrected = meter_csv(asset, DELIVERY_DAY, lambda d, i: 101 if i == 0 else 100)
    assert upload(actor_esp, corrected).changed_count == 1
    first = ptu.ptu_starts(DELIVERY_DAY, TZ)[0]
    day, index = meterdays.position(first)
    versions = MeterDay.objects.filter(asset=asset, day=day).order_by("version")
    assert [
        (meterdays.kw_of(meterdays.unpack(r.watts)[index]), r.version, r.superseded_at is not None)
        for r in versions
    ] == [(Decimal("100.000"), 1, True), (Decimal("101.000"), 2, False)]


@pytest.mark.django_db
def test_prognosis_before_and_after_gate_closure(actor_esp, settled_setup):
    asset = settled_setup["asset"]
    future = DELIVERY_DAY + timedelta(days=5)
    prognosis = services.prognosis_submit(
        actor=actor_esp, asset=asset, delivery_day=future, values_kw=[150] * 96
    )
    assert prognosis.values_kw[0] == 150
    with pytest.raises(DomainError) as error:
        services.prognosis_submit(actor=actor_esp, asset=asset, delivery_day=future, values_kw=[150] * 95)
    assert error.value.field == "values_kw"
    with pytest.raises(DomainError) as error:
        services.prognosis_submit(
            actor=actor_esp, asset=asset, delivery_day=DELIVERY_DAY, values_kw=[150] * 96
        )
    assert error.value.code == "prognosis_frozen"


@pytest.mark.django_db
def test_missing_data_gives_awaiting_data_never_zero(settled_setup):
    verification = services.verification_run(contract=settled_setup["contract"])
    assert verification.state == "awaiting_data"
    assert verification.delivered_kwh is None and "eligible" in verification.note


@pytest.mark.django_db
def test_full_delivery_is_verified_and_a_rerun_changes_nothing(actor_esp, settled_setup):
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    verification = services.verification_run(contract=settled_setup["contract"])
    assert verification.state == "verified"
    assert verification.delivered_kwh == Decimal("100.000") and verification.contracted_kwh == Decimal(
        "100.000"
    )
    assert verification.status[68:72] == ["delivered"] * 4
    computed_at = verification.computed_at
    again = services.verification_run(contract=settled_setup["contract"])
    assert again.computed_at == computed_at and DeliveryVerification.objects.count() == 1


@pytest.mark.django_db
def test_partial_delivery_pays_pro_rata_with_the_products_penalty(
    actor_esp, actor_fmo, settled_setup, esp_org, dso_org, fmo_org
):
    # Delivered 60 of 100 kW for one hour at 80 EUR/MWh, tolerance 10%, penalty factor 0.5, fee 1 EUR/MWh:
    # activation 0.06 MWh x 80 = 4.80; penalty 0.04 MWh x 80 x 0.5 = 1.60; fee 0.1 MWh x 1 = 0.10 each side.
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=60)
    verification = services.verification_run(contract=settled_setup["contract"])
    assert verification.status[68:72] == ["partial"] * 4
    period = services.period_create(
        actor=actor_fmo, name="June 2026", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    seller = SettlementStatement.objects.get(organisation=esp_org)
    buyer = SettlementStatement.objects.get(organisation=dso_org)
    fmo = SettlementStatement.objects.get(organisation=fmo_org)
    assert {line.kind: line.amount_eur for line in seller.lines.all()} == {
        "activation": Decimal("4.80"),
        "penalty": Decimal("-1.60"),
        "fee": Decimal("-0.10"),
    }
    assert seller.total_eur == Decimal("3.10")
    assert buyer.total_eur == Decimal("-4.80") + Decimal("1.60") - Decimal("0.10")
    assert fmo.total_eur == Decimal("0.20")


@pytest.mark.django_db
def test_a_contracts_cleared_reactive_power_is_settled_as_cleared(
    actor_esp, actor_fmo, settled_setup, esp_org, dso_org, fmo_org
):
    """A network-aware contract's kVAr is paid at its Q-LMP by the buyer to the seller, on a "reactive" line, and
    the statements still sum to zero; the line equals the contract page's reactive value."""
    contract = settled_setup["contract"]
    n = len(contract.quantities_kw)
    contract.reactive_kvar = [0.0] * n
    contract.reactive_prices = ["0"] * n
    contract.reactive_kvar[0], contract.reactive_prices[0] = -45.5, "-10.0000"  # absorbed at a negative Q-LMP
    contract.save(update_fields=["reactive_kvar", "reactive_prices"])
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    services.verification_run(contract=contract)
    period = services.period_create(
        actor=actor_fmo, name="June 2026", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    # 45.5 kVAr x 10 EUR/Mvarh x 0.25 h / 1000 = 0.11375 -> 0.11
    seller = SettlementStatement.objects.get(organisation=esp_org)
    buyer = SettlementStatement.objects.get(organisation=dso_org)
    assert seller.lines.get(kind="reactive").amount_eur == Decimal("0.11") == contract.reactive_value_eur
    assert buyer.lines.get(kind="reactive").amount_eur == Decimal("-0.11")
    assert sum(SettlementStatement.objects.values_list("total_eur", flat=True), Decimal(0)) == 0


@pytest.mark.django_db
def test_locked_period_refuses_recomputation_and_invoices_are_numbered(actor_esp, actor_fmo, settled_setup):
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    services.verification_run(contract=settled_setup["contract"])
    period = services.period_create(
        actor=actor_fmo, name="June 2026", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    services.period_lock(actor=actor_fmo, period=period)
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    year = timezone.now().year
    assert numbers == [f"FM-INV-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]
    with pytest.raises(DomainError) as error:
        services.period_compute(actor=actor_fmo, period=period)
    assert error.value.code == "period_locked"
    settled_setup["contract"].refresh_from_db()
    assert settled_setup["contract"].state == "settled"
    assert services.period_adjust(actor=actor_fmo, period=period) == []


@pytest.mark.django_db
def test_only_fmo_settles(actor_esp):
    with pytest.raises(DomainError):
        services.period_create(actor=actor_esp, name="x", start=date(2026, 6, 1), end=date(2026, 6, 30))


@pytest.mark.django_db
def test_disputes_are_audited_and_resolved_by_the_fmo(actor_esp, actor_dso, actor_fmo, settled_setup):
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=60)
    verification = services.verification_run(contract=settled_setup["contract"])
    with pytest.raises(DomainError):
        services.dispute_open(actor=actor_dso, verification=verification, comment="not mine to dispute")
    dispute = services.dispute_open(
        actor=actor_esp, verification=verification, comment="Sub-meter was recalibrated"
    )
    assert DeliveryVerification.objects.get().state == "disputed"
    with pytest.raises(DomainError):
        services.dispute_resolve(actor=actor_esp, dispute=dispute, uphold=True, resolution="self-approval")
    services.dispute_resolve(
        actor=actor_fmo,
        dispute=dispute,
        uphold=True,
        resolution="Calibration report accepted",
        accepted_delivered_kwh=95,
    )
    assert DeliveryVerification.objects.get().delivered_kwh == Decimal("95.000")
    assert list(
        AuditEvent.objects.filter(action__startswith="dispute.").values_list("action", flat=True)
    ) == ["dispute.resolve", "dispute.open"]


@pytest.mark.django_db
def test_accuracy_scores_each_method(actor_esp, settled_setup):
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=0)
    rows = services.accuracy_compute(asset=settled_setup["asset"], until=DELIVERY_DAY)
    scores = {row.method: row for row in rows}
    assert scores["high_x_of_y"].samples > 0 and scores["high_x_of_y"].nmae == pytest.approx(0, abs=1e-9)
