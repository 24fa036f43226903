"""M&V and settlement through the services: event days, DST and midnight edges, holidays, prognoses, exact money,
penalty rules, availability fees, locks, corrections and disputes after a lock."""

import csv
import io
import tracemalloc
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEvent
from flexmarket import ptu
from flexmarket.errors import DomainError, ValidationErrors
from grid.models import Portfolio
from settlement import invoices, services
from settlement.models import (
    DeliveryVerification,
    MeterDay,
    SettlementStatement,
    StatementLine,
)
from settlement.services.meter import _Seen
from tests.grid.factories import FlexAssetFactory
from tests.settlement.fixtures import (
    TZ,
    flat_history_and_day,
    make_contract,
    readings_csv,
    settle,
    totals,
    upload,
)
from tests.trading.factories import ProductFactory
from trading.models import AvailabilityAgreement, Contract

AMSTERDAM = ZoneInfo(TZ)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=AMSTERDAM)
WEDNESDAY = date(2026, 6, 10)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def lines_of(statement) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for line in statement.lines.all():
        result[line.kind] = result.get(line.kind, Decimal(0)) + line.amount_eur
    return result


# --- item 1: an event day stays an event day --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["settled", "superseded", "cancelled"])
def test_an_event_day_stays_an_event_day_whatever_its_contracts_state(world, actor_esp, state):
    product = world["product"]
    product.baseline_params = {"x": 10, "y": 10}
    product.save()
    thursday = WEDNESDAY + timedelta(days=1)
    first = make_contract(product=product, day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"])
    second = make_contract(product=product, day=thursday, seller_asset=world["asset"], buyer=world["dso"])
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    upload(actor_esp, readings_csv(world["asset"], thursday, 1, lambda d, i: 100 if 68 <= i < 72 else 200))
    Contract.objects.filter(pk=first.pk).update(state=state)
    after = services.verification_run(contract=second)
    # Wednesday's activation (100 kW less in the window) never becomes a like-day: the baseline stays 200 kW.
    assert after.delivered_kwh == Decimal("100.000") and after.baseline_kw[68:72] == [200.0] * 4
    assert str(WEDNESDAY) not in after.days_used


# --- item 6: DST edges --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_history_is_counted_in_local_calendar_days_after_the_autumn_switch(world, actor_esp):
    # High 22 of 22 on Thursday 12 November 2026 needs every weekday from Tuesday 13 October on; a history window
    # of 720 h before local midnight cut 13 October's first hour (summer time) and left 21 like-days.
    product = world["product"]
    product.baseline_params = {"x": 22, "y": 22}
    product.save()
    day = date(2026, 11, 12)
    contract = make_contract(product=product, day=day, seller_asset=world["asset"], buyer=world["dso"])
    flat_history_and_day(actor_esp, world["asset"], day, 100)
    verification = services.verification_run(contract=contract)
    assert verification.state == "verified", verification.note
    assert verification.delivered_kwh == Decimal("100.000") and "2026-10-13" in verification.days_used


@pytest.mark.django_db
def test_high_1_of_y_after_the_spring_switch_completes(world, actor_esp):
    # Saturday 4 April 2026; the best weekend day is Sunday 29 March (92 PTUs, no 02:00-02:45).
    product = world["product"]
    product.baseline_params = {"x": 1, "y": 4}
    product.save()
    saturday = date(2026, 4, 4)
    contract = make_contract(product=product, day=saturday, seller_asset=world["asset"], buyer=world["dso"])
    upload(
        actor_esp,
        readings_csv(
            world["asset"],
            saturday - timedelta(days=30),
            30,
            lambda d, i: 300 if d == date(2026, 3, 29) else 200,
        ),
    )
    upload(actor_esp, readings_csv(world["asset"], saturday, 1, lambda d, i: 200))
    verification = services.verification_run(contract=contract)
    assert verification.state == "verified", verification.note
    assert verification.days_used == ["2026-03-29"] and verification.baseline_kw[8:12] == [300.0] * 4


# --- item 7: midnight edges -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_meter_before_for_an_event_at_midnight_reads_the_previous_day(world, actor_esp):
    product = world["product"]
    product.baseline_method, product.baseline_params = "meter_before_after", {"before_ptus": 4}
    product.save()
    contract = make_contract(
        product=product, day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"], start_index=0
    )
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 100 if i < 4 else 200))
    waiting = services.verification_run(contract=contract)
    assert waiting.state == "awaiting_data" and waiting.delivered_kwh is None
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY - timedelta(days=1), 1, lambda d, i: 200))
    verification = services.verification_run(contract=contract)
    assert verification.state == "verified" and verification.delivered_kwh == Decimal("100.000")


@pytest.mark.django_db
def test_an_adjusted_baseline_waits_for_the_readings_before_the_event(world, actor_esp):
    # With the pre-event readings missing, the adjusted baseline must not be reported as verified (unadjusted).
    product = world["product"]
    product.baseline_params = {"x": 5, "y": 10, "adjustment": "additive", "cap": None}
    product.save()
    contract = make_contract(product=product, day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"])
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY - timedelta(days=30), 30, lambda d, i: 200))
    upload(
        actor_esp,
        readings_csv(
            world["asset"], WEDNESDAY, 1, lambda d, i: None if 63 <= i < 67 else (150 if i >= 68 else 230)
        ),
    )
    waiting = services.verification_run(contract=contract)
    assert waiting.state == "awaiting_data" and waiting.delivered_kwh is None
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 230 if 63 <= i < 67 else None))
    verification = services.verification_run(contract=contract)
    # Adjusted by +30 kW: baseline 230, metered 150, delivered 80 kW for one hour.
    assert verification.state == "verified" and verification.delivered_kwh == Decimal("80.000")


# --- item 9: holidays, strict NODES ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_markets_public_holidays_are_not_like_days(world, actor_esp):
    # King's Day, Monday 27 April 2026, had a high load; High 1 of 5 for Tuesday 28 April must not pick it.
    product = world["product"]
    product.baseline_params = {"x": 1, "y": 5}
    product.save()
    market = product.market
    tuesday = date(2026, 4, 28)
    contract = make_contract(product=product, day=tuesday, seller_asset=world["asset"], buyer=world["dso"])
    upload(
        actor_esp,
        readings_csv(
            world["asset"], tuesday - timedelta(days=30), 30, lambda d, i: 400 if d.day == 27 else 200
        ),
    )
    upload(actor_esp, readings_csv(world["asset"], tuesday, 1, lambda d, i: 100 if 68 <= i < 72 else 200))
    assert services.verification_run(contract=contract).delivered_kwh == Decimal("300.000")
    market.holiday_country = "NL"
    market.full_clean()
    market.save()
    verification = services.verification_run(contract=contract)
    assert verification.delivered_kwh == Decimal("100.000") and "2026-04-27" not in verification.days_used


@pytest.mark.django_db
def test_a_market_refuses_an_unknown_holiday_calendar(world):
    from django.core.exceptions import ValidationError

    market = world["product"].market
    market.holiday_country = "ZZ"
    with pytest.raises(ValidationError) as error:
        market.full_clean()
    assert "holiday_country" in error.value.message_dict


@pytest.mark.django_db
def test_strict_nodes_uses_the_five_preceding_working_days(world, actor_esp):
    product = world["product"]
    product.baseline_method, product.baseline_params = "nodes", {}
    product.save()
    earlier = make_contract(
        product=product, day=WEDNESDAY - timedelta(days=1), seller_asset=world["asset"], buyer=world["dso"]
    )
    contract = make_contract(product=product, day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"])
    # Working days before Wednesday 10 June: Tue 9 (an event day, kept), Mon 8, Fri 5, Thu 4, Wed 3 at 300 kW;
    # older days and weekend days at 900 kW must not count.
    levels = {date(2026, 6, d): 300 for d in (3, 4, 5, 8, 9)}
    upload(
        actor_esp,
        readings_csv(world["asset"], WEDNESDAY - timedelta(days=30), 30, lambda d, i: levels.get(d, 900)),
    )
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 200 if 68 <= i < 72 else 300))
    verification = services.verification_run(contract=contract)
    assert earlier.state == "active" and verification.state == "verified"
    assert verification.baseline_kw[68:72] == [300.0] * 4 and verification.delivered_kwh == Decimal("100.000")
    assert verification.days_used == ["2026-06-03", "2026-06-04", "2026-06-05", "2026-06-08", "2026-06-09"]


# --- issue 8 item 6: portfolio prognoses, availability fees, the future --------------------------------------


@pytest.mark.django_db
def test_a_portfolio_d_prognosis_is_the_portfolios_baseline(world, actor_esp, esp_org):
    product = world["product"]
    product.baseline_method, product.baseline_params = "nominated", {}
    product.save()
    second = FlexAssetFactory(
        owner=esp_org, grid_location=world["zone"], created_at=world["asset"].created_at
    )
    portfolio = Portfolio.objects.create(owner=esp_org, grid_location=world["zone"], name="Evening pool")
    portfolio.assets.set([world["asset"], second])
    contract = make_contract(
        product=product, day=WEDNESDAY, portfolio=portfolio, buyer=world["dso"], quantities_kw=[200] * 4
    )
    services.prognosis_submit(
        actor=actor_esp,
        portfolio=portfolio,
        delivery_day=WEDNESDAY,
        values_kw=[300] * 96,
        now=datetime(2026, 6, 8, 9, 0, tzinfo=AMSTERDAM),
    )
    for asset in (world["asset"], second):
        upload(actor_esp, readings_csv(asset, WEDNESDAY, 1, lambda d, i: 50 if 68 <= i < 72 else 150))
    verification = services.verification_run(contract=contract)
    assert verification.state == "verified", verification.note
    assert verification.baseline_kw[68:72] == [300.0] * 4 and verification.delivered_kwh == Decimal("200.000")


@pytest.mark.django_db
def test_readings_of_ptus_that_have_not_ended_are_refused(world, actor_esp):
    asset = world["asset"]
    current = ptu.floor_to_ptu(NOW)
    rows = [
        f"{asset.connection_ean},{(current - ptu.PTU).isoformat()},5",
        f"{asset.connection_ean},{current.isoformat()},5",
    ]
    with pytest.raises(ValidationErrors) as error:
        upload(actor_esp, ("asset_ean,ptu_start,kw\n" + "\n".join(rows) + "\n").encode())
    assert [(e["row"], e["field"]) for e in error.value.errors] == [(3, "ptu_start")]
    assert "not ended" in error.value.errors[0]["message"] and not MeterDay.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:45:00+00:00", "2024-11-30T22:45:00+00:00"]
)
def test_readings_outside_the_sane_window_are_refused(world, actor_esp, stamp):
    # The asset was registered on 5 January 2026 00:00 CET: 400 days earlier is 30 November 2024 23:00 UTC.
    data = f"asset_ean,ptu_start,kw\n{world['asset'].connection_ean},{stamp},5\n".encode()
    with pytest.raises(ValidationErrors) as error:
        upload(actor_esp, data)
    assert error.value.errors[0]["field"] == "ptu_start" and not MeterDay.objects.exists()
    ok = f"asset_ean,ptu_start,kw\n{world['asset'].connection_ean},2024-11-30T23:00:00+00:00,5\n".encode()
    assert upload(actor_esp, ok).changed_count == 1


@pytest.mark.django_db
def test_one_meter_file_spans_at_most_the_configured_days(world, actor_esp, settings):
    """A file whose readings all lie in the asset's window may still not span more than the limit (400 days)."""
    settings.FLEXMARKET_METER_FILE_MAX_SPAN_DAYS = 30
    data = readings_csv(world["asset"], date(2026, 5, 1), 40, lambda d, i: 10)
    with pytest.raises(DomainError) as error:
        upload(actor_esp, data)
    assert error.value.field == "file" and "span more than 30 days" in error.value.message
    assert not MeterDay.objects.exists()


def test_duplicate_tracking_does_not_grow_with_the_span_of_time():
    seen = _Seen()
    tracemalloc.start()
    assert seen.add(1, 0) and seen.add(1, 96 * 365 * 50)  # two readings fifty years apart
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 1024
    assert not seen.add(1, 0) and seen.gaps() == {1: 96 * 365 * 50 - 1}


@pytest.mark.django_db
def test_a_delivery_that_has_not_happened_cannot_be_verified(world, actor_esp):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    during = datetime(2026, 6, 10, 17, 30, tzinfo=AMSTERDAM)
    verification = services.verification_run(contract=contract, now=during)
    assert verification.state == "awaiting_data" and verification.delivered_kwh is None
    assert "not over" in verification.note
    assert services.verification_run(contract=contract).state == "verified"


@pytest.mark.django_db
def test_an_accepted_availability_agreement_is_paid_in_settlement(world, actor_fmo):
    agreement = AvailabilityAgreement.objects.create(
        dso=world["dso"],
        esp=world["esp"],
        grid_location=world["zone"],
        product=world["product"],
        asset=world["asset"],
        capacity_kw=Decimal("250"),
        availability_price=Decimal("12.34"),
        activation_price=Decimal("80"),
        windows=[{"days": [0, 1, 2, 3, 4], "start": "17:00", "end": "20:00"}],
        valid_from=date(2026, 6, 3),
        valid_to=date(2026, 7, 31),
        state=AvailabilityAgreement.State.ACTIVE,
    )
    agreement.pk = None
    agreement.state = AvailabilityAgreement.State.PROPOSED  # not accepted: not paid
    agreement.save()
    agreement = AvailabilityAgreement.objects.get(state=AvailabilityAgreement.State.ACTIVE)
    period = services.period_create(
        actor=actor_fmo, name="June week 1", start=date(2026, 6, 1), end=date(2026, 6, 7)
    )
    services.period_compute(actor=actor_fmo, period=period)
    # Wednesday 3 to Friday 5 June, 17:00-20:00: 9 h x 0.25 MW x 12.34 EUR/MW/h = 27.765 -> 27.77.
    esp_line = StatementLine.objects.get(statement__organisation=world["esp"])
    assert (esp_line.kind, esp_line.amount_eur, esp_line.agreement_id) == (
        "availability",
        Decimal("27.77"),
        agreement.pk,
    )
    assert f"agreement #{agreement.pk}" in esp_line.description
    assert totals(period) == {world["esp"].pk: Decimal("27.77"), world["dso"].pk: Decimal("-27.77")}


# --- issue 8 item 6: locking in the future or with unverified contracts -------------------------------------


@pytest.mark.django_db
def test_a_period_in_the_future_is_locked_only_with_a_reason(world, actor_fmo):
    period = services.period_create(
        actor=actor_fmo, name="Next week", start=date(2026, 11, 23), end=date(2026, 11, 29)
    )
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    with pytest.raises(DomainError) as error:
        services.period_lock(actor=actor_fmo, period=period)
    assert error.value.code == "period_lock_refused" and "not over" in error.value.message
    services.period_lock(actor=actor_fmo, period=period, override_reason="Contract requires an early invoice")
    period.refresh_from_db()
    assert period.state == "locked" and period.lock_override_reason == "Contract requires an early invoice"
    event = AuditEvent.objects.get(action="settlement.lock")
    assert event.reason == "Contract requires an early invoice"


@pytest.mark.django_db
def test_unverified_contracts_block_the_lock_or_are_carried_with_a_reason(world, actor_esp, actor_fmo):
    verified = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    other = FlexAssetFactory(
        owner=world["esp"], grid_location=world["zone"], created_at=world["asset"].created_at
    )
    waiting = make_contract(product=world["product"], day=WEDNESDAY, seller_asset=other, buyer=world["dso"])
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    services.verification_run(contract=verified)
    services.verification_run(contract=waiting)
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    with pytest.raises(DomainError) as error:
        services.period_lock(actor=actor_fmo, period=period)
    assert waiting.reference in error.value.message
    services.period_lock(actor=actor_fmo, period=period, override_reason="Meter data of the pool is late")
    verified.refresh_from_db()
    waiting.refresh_from_db()
    assert (verified.state, waiting.state) == ("settled", "active")
    assert AuditEvent.objects.get(action="settlement.lock").after["carried"] == [waiting.reference]


# --- money: exact, conserved, one rounding rule, VAT --------------------------------------------------------


@pytest.mark.django_db
def test_fees_are_split_so_that_the_period_sums_to_exactly_zero(world, actor_esp, actor_fmo, fmo_org):
    product = world["product"]
    product.fee_eur_per_mwh = Decimal("17.25")  # 0.1 MWh x 17.25 = 1.725 EUR per side
    product.save()
    contract = make_contract(product=product, day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"])
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    services.verification_run(contract=contract)
    period = settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    by_org = totals(period)
    assert sum(by_org.values()) == Decimal("0.00")
    fmo = SettlementStatement.objects.get(period=period, organisation=fmo_org)
    seller = SettlementStatement.objects.get(period=period, organisation=world["esp"])
    assert lines_of(fmo) == {"fee": Decimal("3.46")} and lines_of(seller)["fee"] == Decimal("-1.73")


@pytest.mark.django_db
def test_exactly_the_tolerance_is_paid_in_full(world, actor_esp, actor_fmo):
    # 89.1 of 99 kW is exactly 90 % with a 10 % tolerance: full pay, 99 kW x 0.25 h x 400 EUR/MWh = 9.90.
    contract = make_contract(
        product=world["product"],
        day=WEDNESDAY,
        seller_asset=world["asset"],
        buyer=world["dso"],
        quantities_kw=[99],
        price="400",
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 89.1, event=[68])
    verification = services.verification_run(contract=contract)
    assert verification.status[68] == "delivered"
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    seller = SettlementStatement.objects.get(period=period, organisation=world["esp"])
    assert lines_of(seller)["activation"] == Decimal("9.90")


@pytest.mark.django_db
def test_half_a_cent_is_rounded_half_up_once(world, actor_fmo):
    # Availability: 45 kW x 36 EUR/MW/h x 0.25 h = 0.405 EUR -> 0.41 (binary floats gave 0.40).
    product = world["product"]
    product.kind, product.fee_eur_per_mwh = "availability", Decimal("0")
    product.save()
    contract = make_contract(
        product=product,
        day=WEDNESDAY,
        seller_asset=world["asset"],
        buyer=world["dso"],
        quantities_kw=[45],
        price="36",
    )
    DeliveryVerification.objects.create(
        contract=contract,
        state="verified",
        method="x",
        baseline_kw=[],
        metered_kw=[],
        delivered_kw=[0] * 96,
        ratio=[],
        status=[],
        inputs_hash="-",
    )
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    assert totals(period) == {world["esp"].pk: Decimal("0.41"), world["dso"].pk: Decimal("-0.41")}


@pytest.mark.django_db
def test_statements_carry_currency_and_vat(world, actor_esp, actor_fmo, settings):
    settings.SETTLEMENT_VAT_RATE = "0.21"  # the default, pinned
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    services.verification_run(contract=contract)
    period = settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    seller = SettlementStatement.objects.get(period=period, organisation=world["esp"])
    # 0.1 MWh x 80 = 8.00 minus the 0.10 fee: net 7.90, VAT 21 % = 1.659 -> 1.66, gross 9.56.
    assert (seller.currency, seller.total_eur, seller.vat_rate, seller.vat_eur, seller.gross_eur) == (
        "EUR",
        Decimal("7.90"),
        Decimal("0.2100"),
        Decimal("1.66"),
        Decimal("9.56"),
    )
    rows = {row["kind"]: row for row in csv.DictReader(io.StringIO(invoices.invoice_csv(seller)))}
    assert (rows["vat_eur"]["amount"], rows["vat_eur"]["currency"]) == ("1.66", "EUR")
    assert rows["gross_eur"]["amount"] == "9.56" and rows["activation"]["currency"] == "EUR"
    assert invoices.invoice_pdf(seller).startswith(b"%PDF")


# --- item 8: USEF penalties through the whole path ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "seller_total"), [("usef", Decimal("-33.00")), ("capped", Decimal("-22.00"))]
)
def test_usef_example_through_meter_data_and_settlement(world, actor_esp, actor_fmo, rule, seller_total):
    # Baseline 10 MW, 2 MW ordered for one ISP at 7 EUR/MW (28 EUR/MWh), penalty 11 EUR/MW (44 EUR/MWh); the
    # allocation is 11 MW: the USEF rule penalises the whole 3 MW deviation from the adjusted baseline.
    product = world["product"]
    product.baseline_method, product.baseline_params = "high_x_of_y", {"x": 5, "y": 10}
    product.penalty_rule, product.penalty_price = rule, Decimal("44")
    product.delivery_tolerance, product.fee_eur_per_mwh = Decimal("0"), Decimal("0")
    product.save()
    contract = make_contract(
        product=product,
        day=WEDNESDAY,
        seller_asset=world["asset"],
        buyer=world["dso"],
        quantities_kw=[2000],
        price="28",
    )
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY - timedelta(days=30), 30, lambda d, i: 10000))
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 11000 if i == 68 else 10000))
    services.verification_run(contract=contract)
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    assert totals(period) == {world["esp"].pk: seller_total, world["dso"].pk: -seller_total}


# --- item 2: corrections after a lock -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_correction_after_the_lock_re_verifies_and_the_fmo_issues_a_typed_adjustment(
    world, actor_esp, actor_fmo, fmo_org, django_capture_on_commit_callbacks
):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    with django_capture_on_commit_callbacks(execute=True):  # the upload's verification runs are sent and run
        flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    period = settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    contract.refresh_from_db()
    assert contract.state == "settled"
    # The meter operator corrects the delivery day: 100 kW were delivered, not 60.
    with django_capture_on_commit_callbacks(execute=True):
        upload(
            actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 100 if 68 <= i < 72 else 200)
        )
    assert DeliveryVerification.objects.get().delivered_kwh == Decimal("100.000")
    pending = services.period_pending_adjustment(actor=actor_fmo, period=period)
    seller = {line.kind: line.amount for line in pending[world["esp"].pk]}
    assert seller == {"activation": Decimal("3.20"), "penalty": Decimal("1.60")}  # 4.80 -> 8.00; -1.60 -> 0
    issued = services.period_adjust(actor=actor_fmo, period=period)
    assert {s.organisation_id: s.total_eur for s in issued} == {
        world["esp"].pk: Decimal("4.80"),
        world["dso"].pk: Decimal("-4.80"),
    }
    adjustment = SettlementStatement.objects.get(kind="adjustment", organisation=world["esp"])
    assert sorted(adjustment.lines.values_list("kind", flat=True)) == ["activation", "penalty"]
    assert all(s.invoice.number.startswith("FM-INV-") for s in issued)
    assert sum(totals(period).values()) == 0
    assert services.period_pending_adjustment(actor=actor_fmo, period=period) == {}


@pytest.mark.django_db
def test_the_safety_net_re_verifies_settled_contracts(
    world, actor_esp, actor_fmo, django_capture_on_commit_callbacks
):
    contract = make_contract(
        product=world["product"], day=date(2026, 11, 18), seller_asset=world["asset"], buyer=world["dso"]
    )
    Contract.objects.filter(pk=contract.pk).update(state="settled")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(services.verification_runs_request_due(now=NOW)) == 1
    assert DeliveryVerification.objects.get().state == "awaiting_data"


# --- item 3: disputes ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_dispute_opened_after_the_lock_is_carried_never_reversed(world, actor_esp, actor_fmo):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    verification = services.verification_run(contract=contract)
    period = settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    dispute = services.dispute_open(
        actor=actor_esp, verification=verification, comment="Sub-meter recalibrated"
    )
    assert services.period_pending_adjustment(actor=actor_fmo, period=period) == {}
    assert services.period_adjust(actor=actor_fmo, period=period) == []
    services.dispute_resolve(
        actor=actor_fmo, dispute=dispute, uphold=True, resolution="Report accepted", accepted_delivered_kwh=95
    )
    pending = services.period_pending_adjustment(actor=actor_fmo, period=period)
    # 95 of 100 kWh is within the 10 % tolerance: full pay 8.00 instead of 4.80, and no penalty.
    assert {line.kind: line.amount for line in pending[world["esp"].pk]} == {
        "activation": Decimal("3.20"),
        "penalty": Decimal("1.60"),
    }


@pytest.mark.django_db
def test_an_open_dispute_blocks_the_lock_until_carried_explicitly(world, actor_esp, actor_fmo):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    verification = services.verification_run(contract=contract)
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        dispute = services.dispute_open(actor=actor_esp, verification=verification, comment="Wrong baseline")
    with pytest.raises(DomainError) as stale:
        services.period_lock(actor=actor_fmo, period=period, override_reason="carry it")
    assert "Recompute" in stale.value.message  # the approved statements still pay the disputed contract
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        services.period_compute(actor=actor_fmo, period=period)
        services.period_approve(actor=actor_fmo, period=period)
        with pytest.raises(DomainError) as blocked:
            services.period_lock(actor=actor_fmo, period=period)
        assert "disputed" in blocked.value.message
        services.period_lock(actor=actor_fmo, period=period, override_reason="Ruling expected next month")
    assert not StatementLine.objects.filter(contract=contract).exists()
    contract.refresh_from_db()
    assert contract.state == "active"
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        services.dispute_resolve(
            actor=actor_fmo, dispute=dispute, uphold=False, resolution="Baseline is right"
        )
        services.period_adjust(actor=actor_fmo, period=period)
    contract.refresh_from_db()
    assert contract.state == "settled" and sum(totals(period).values()) == 0
    seller = SettlementStatement.objects.get(kind="adjustment", organisation=world["esp"])
    assert lines_of(seller) == {
        "activation": Decimal("4.80"),
        "penalty": Decimal("-1.60"),
        "fee": Decimal("-0.10"),
    }


@pytest.mark.django_db
def test_an_upheld_value_is_final_until_the_fmo_reopens_the_dispute(world, actor_esp, actor_fmo):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    verification = services.verification_run(contract=contract)
    dispute = services.dispute_open(
        actor=actor_esp, verification=verification, comment="Sub-meter recalibrated"
    )
    services.dispute_resolve(
        actor=actor_fmo, dispute=dispute, uphold=True, resolution="Accepted", accepted_delivered_kwh=95
    )
    # An unrelated history reading changes; the upheld 95 kWh is not overwritten by re-verification.
    upload(
        actor_esp,
        readings_csv(world["asset"], WEDNESDAY - timedelta(days=20), 1, lambda d, i: 201 if i == 0 else 200),
    )
    assert services.verification_run(contract=contract).delivered_kwh == Decimal("95.000")
    with pytest.raises(DomainError):
        services.dispute_open(actor=actor_esp, verification=verification, comment="Once more")
    with pytest.raises(DomainError):
        services.dispute_reopen(actor=actor_esp, dispute=dispute, reason="I want more")
    services.dispute_reopen(actor=actor_fmo, dispute=dispute, reason="New calibration report")
    assert DeliveryVerification.objects.get().state == "disputed"
    assert AuditEvent.objects.get(action="dispute.reopen").reason == "New calibration report"
    services.dispute_resolve(actor=actor_fmo, dispute=dispute, uphold=False, resolution="Report rejected")
    verification = DeliveryVerification.objects.get()
    assert verification.state == "verified" and verification.delivered_kwh == Decimal("60.000")


# --- a period over random contracts sums to exactly zero (through the database) -----------------------------


@pytest.mark.django_db
def test_a_period_of_random_contracts_sums_to_exactly_zero(world, actor_fmo, esp2_org):
    second_seller = FlexAssetFactory(owner=esp2_org, grid_location=world["zone"])
    kw = st.decimals(0, 900, places=3, allow_nan=False, allow_infinity=False)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.tuples(
                st.lists(kw, min_size=1, max_size=6),
                st.decimals(0, 400, places=4, allow_nan=False, allow_infinity=False),
                st.decimals(-100, 1000, places=3, allow_nan=False, allow_infinity=False),
                st.sampled_from(["capped", "usef"]),
                st.decimals(0, 5, places=4, allow_nan=False, allow_infinity=False),
                st.booleans(),
            ),
            min_size=1,
            max_size=6,
        )
    )
    def property_(contracts):
        with transaction.atomic():
            for index, (quantities, price, delivered, rule, fee, other_seller) in enumerate(contracts):
                product = ProductFactory(
                    penalty_rule=rule, fee_eur_per_mwh=fee, delivery_tolerance=Decimal("0.05")
                )
                contract = make_contract(
                    product=product,
                    day=WEDNESDAY,
                    buyer=world["dso"],
                    start_index=index,
                    seller_asset=second_seller if other_seller else world["asset"],
                    quantities_kw=[float(q) for q in quantities],
                    price=str(price),
                )
                day = [None] * 96
                for i in range(len(quantities)):
                    day[index + i] = float(delivered)
                DeliveryVerification.objects.create(
                    contract=contract,
                    state="verified",
                    method="x",
                    baseline_kw=[],
                    metered_kw=[],
                    delivered_kw=day,
                    ratio=[],
                    status=[],
                    inputs_hash="-",
                )
            period = services.period_create(actor=actor_fmo, name="Random", start=WEDNESDAY, end=WEDNESDAY)
            services.period_compute(actor=actor_fmo, period=period)
            assert sum(totals(period).values(), Decimal(0)) == Decimal("0.00")
            transaction.set_rollback(True)

    property_()


@pytest.mark.django_db
def test_accuracy_scores_leave_out_days_of_settled_contracts(world, actor_esp):
    # A settled contract's day had its evening load cut to 0; it is no day "without activation" to score.
    event_day = WEDNESDAY - timedelta(days=7)
    make_contract(
        product=world["product"],
        day=event_day,
        seller_asset=world["asset"],
        buyer=world["dso"],
        state="settled",
    )
    upload(
        actor_esp,
        readings_csv(
            world["asset"],
            WEDNESDAY - timedelta(days=50),
            50,
            lambda d, i: 0 if d == event_day and 68 <= i < 80 else 200,
        ),
    )
    scores = {row.method: row for row in services.accuracy_compute(asset=world["asset"], until=WEDNESDAY)}
    assert scores["high_x_of_y"].samples > 0 and scores["high_x_of_y"].nmae == pytest.approx(0, abs=1e-12)
