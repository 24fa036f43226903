"""The batch verification path (runs, uploads) stores exactly what the per-contract path stores.

The per-contract `verification_run` is the reference: every contract of a mixed scenario (all methods, same-day
adjustments, portfolios, prognoses, event days, gaps, holidays, DST and midnight edges, a dispute, deliveries not
yet over) is verified by both, and the stored fields must be equal. A hypothesis property does the same on
random readings, windows and methods. Then the batch's query count, its idempotence, its runs, and which
contracts an upload re-verifies.
"""

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AuditEvent
from flexmarket import ptu
from flexmarket.errors import DomainError
from flexmarket.runs import RunBusy
from grid.models import Portfolio
from settlement import meterdays, services
from settlement.models import DeliveryVerification, Dispute, MeterDay, Prognosis, VerificationRun
from settlement.services.verification_batch import (
    WRITTEN_FIELDS,
    _read_copy,
    _read_rows,
    readings_grid,
    verifications_compute,
)
from tests.grid.factories import FlexAssetFactory
from tests.settlement.fixtures import make_contract, readings_csv
from tests.settlement.readings import readings_store
from tests.trading.factories import MarketFactory, ProductFactory
from trading.models import Contract

TZ = "Europe/Amsterdam"
AMSTERDAM = ZoneInfo(TZ)
COMPARED = [name for name in WRITTEN_FIELDS if name != "computed_at"]
LATE = datetime(2026, 11, 20, 12, 0, tzinfo=AMSTERDAM)
DAYS = [
    date(2026, 6, 10),  # a Wednesday
    date(2026, 10, 25),  # autumn DST: 100 PTUs
    date(2026, 3, 29),  # spring DST: 92 PTUs
    date(2026, 11, 2),  # a Monday whose history holds the autumn DST day (aligned)
    date(2026, 4, 6),  # Easter Monday: a non-working day in the Netherlands
]
METHODS = [
    ("high_x_of_y", {"x": 5, "y": 10}),
    ("mid_x_of_y", {"x": 4, "y": 6, "adjustment": "additive", "cap": 0.2}),
    (
        "high_x_of_y",
        {
            "x": 3,
            "y": 5,
            "adjustment": "multiplicative",
            "cap": None,
            "positive_only": True,
            "window_ptus": 3,
        },
    ),
    ("high_x_of_y", {"x": 2, "y": 4, "adjustment": "additive", "window_ptus": 6, "gap_ptus": 0}),
    ("nodes", {"days": 5}),
    ("nodes", {"days": 5, "adjustment": "additive"}),
    ("regression", {"y": 20}),
    ("meter_before_after", {"before_ptus": 2, "after_ptus": 2}),
    ("nominated", {}),
]


def stored(contract_ids) -> dict[int, dict]:
    return {
        row["contract_id"]: row
        for row in DeliveryVerification.objects.filter(contract_id__in=contract_ids).values(
            "contract_id", *COMPARED
        )
    }


def write_readings(assets, days, rng, *, gap=0.01, missing_days=0.05) -> None:
    """Readings of each asset on each local day (a load shape with noise), with random gaps and missing days."""
    rows = []
    for asset in assets:
        scale = rng.uniform(0.5, 3.0)
        for day in sorted(days):
            if rng.random() < missing_days:
                continue
            for start in ptu.ptu_starts(day, TZ):
                if rng.random() < gap:
                    continue
                hour = start.astimezone(AMSTERDAM).hour
                kw = scale * (80 + 40 * np.exp(-((hour - 18) ** 2) / 6)) * rng.normal(1, 0.1)
                rows.append((asset, start, Decimal(f"{kw:.3f}")))
    readings_store(rows)


def window_days(day: date) -> set[date]:
    return {day + timedelta(days=k) for k in range(-31, 2)}


def compare_paths(contract_ids, now) -> dict[int, dict]:
    """Verify with the per-contract path, keep its results, remove them, verify with the batch path; both must
    store the same. Disputed results stay (they are held) and must be untouched by the batch."""
    for contract in Contract.objects.filter(pk__in=contract_ids).order_by("pk"):
        services.verification_run(contract=contract, now=now)
    reference = stored(contract_ids)
    held = set(
        DeliveryVerification.objects.filter(contract_id__in=contract_ids, disputes__isnull=False).values_list(
            "contract_id", flat=True
        )
    )
    DeliveryVerification.objects.filter(contract_id__in=contract_ids).exclude(contract_id__in=held).delete()
    report = verifications_compute(contract_ids=contract_ids, now=now)
    assert report.failed == {}
    batch = stored(contract_ids)
    assert batch.keys() == reference.keys()
    for contract_id, fields in reference.items():
        assert batch[contract_id] == fields, contract_id
    return batch


@pytest.fixture
def mixed(dso_org, esp_org):
    """Contracts of every method on four assets and a portfolio, across DST, holidays and midnight edges."""
    rng = np.random.default_rng(11)
    market = MarketFactory(time_zone=TZ, holiday_country="NL")
    created = datetime(2025, 12, 1, tzinfo=AMSTERDAM)
    assets = [
        FlexAssetFactory(
            owner=esp_org, max_up_kw=Decimal("3000"), max_down_kw=Decimal("3000"), created_at=created
        )
        for _ in range(4)
    ]
    portfolio = Portfolio.objects.create(owner=esp_org, grid_location=assets[0].grid_location, name="Pool")
    portfolio.assets.set(assets[2:4])
    products = [
        ProductFactory(
            market=market,
            baseline_method=method,
            baseline_params=params,
            direction="down" if i == 3 else "up",
            delivery_tolerance=Decimal("0.10"),
        )
        for i, (method, params) in enumerate(METHODS)
    ]
    days = set()
    for day in DAYS:
        days |= window_days(day)
    write_readings(assets, days, rng)
    contracts = []
    starts = [0, 1, 40, 68, 88]
    for d, day in enumerate(DAYS):
        for p, product in enumerate(products):
            backing = {"seller_asset": assets[(d + p) % 3]} if (d + p) % 4 else {"portfolio": portfolio}
            n = ptu.ptu_count(day, TZ)
            start = min(starts[(d * 3 + p) % len(starts)], n - 4)
            state = [Contract.State.ACTIVE, Contract.State.SETTLED, Contract.State.CANCELLED][(d + p) % 3]
            contracts.append(
                make_contract(
                    product=product,
                    day=day,
                    buyer=dso_org,
                    start_index=start,
                    quantities_kw=[round(float(rng.uniform(5, 60)), 1) for _ in range(4)],
                    state=state,
                    **backing,
                )
            )
    # Event days in the history: earlier contracts on some assets, whatever their state.
    for k, asset in enumerate(assets[:3]):
        make_contract(
            product=products[0],
            day=DAYS[0] - timedelta(days=3 + k),
            buyer=dso_org,
            seller_asset=asset,
            state=Contract.State.CANCELLED,
        )
    # D-prognoses: per asset, and for the portfolio (one of them with the wrong length).
    for day in DAYS:
        start = ptu.day_bounds_utc(day, TZ)[0]
        n = ptu.ptu_count(day, TZ)
        for asset in assets:
            Prognosis.objects.create(
                owner=esp_org, asset=asset, delivery_day=day, ptu_start=start, values_kw=[150.5] * n
            )
        Prognosis.objects.create(
            owner=esp_org,
            portfolio=portfolio,
            delivery_day=day,
            ptu_start=start,
            values_kw=[300.0] * (n if day != DAYS[1] else 96),
        )
    return {"contracts": contracts, "assets": assets, "products": products, "esp": esp_org}


@pytest.mark.django_db
def test_the_batch_stores_what_the_per_contract_path_stores_for_every_method_and_edge(mixed):
    ids = [c.pk for c in mixed["contracts"]]
    results = compare_paths(ids, LATE)
    states = {row["state"] for row in results.values()}
    assert states == {"verified", "awaiting_data"}  # the scenario holds both, so both were compared
    assert {row["method"] for row in results.values()} == {method for method, _ in METHODS}


@pytest.mark.django_db
def test_a_delivery_not_over_awaits_in_both_paths(mixed):
    during = datetime.combine(DAYS[0], datetime.min.time(), tzinfo=AMSTERDAM) + timedelta(hours=10, minutes=7)
    contracts = [c for c in mixed["contracts"] if ptu.local_day_of(c.ptu_start, TZ) == DAYS[0]]
    results = compare_paths([c.pk for c in contracts], during)
    running = [c.pk for c in contracts if c.ptu_start + len(c.quantities_kw) * ptu.PTU > during]
    assert running and all(results[pk]["state"] == "awaiting_data" for pk in running)
    assert all(results[pk]["note"].startswith("the delivery is not over") for pk in running)


@pytest.mark.django_db
def test_a_disputed_result_is_held_by_the_batch(mixed, esp_user):
    contract = mixed["contracts"][0]
    verification = services.verification_run(contract=contract, now=LATE)
    Dispute.objects.create(verification=verification, opened_by=esp_user, comment="wrong")
    DeliveryVerification.objects.filter(pk=verification.pk).update(state="disputed")
    ones = meterdays.pack(np.full(meterdays.PTUS_PER_DAY, 1000))
    MeterDay.objects.filter(asset__in=mixed["assets"]).update(watts=ones, readings=meterdays.PTUS_PER_DAY)
    report = verifications_compute(contract_ids=[contract.pk], now=LATE)
    assert report.states == {contract.pk: "disputed"} and report.written == {}
    assert DeliveryVerification.objects.get(pk=verification.pk).inputs_hash == verification.inputs_hash


@pytest.mark.django_db
def test_the_batch_is_idempotent_and_agrees_with_the_per_contract_fingerprint(mixed):
    ids = [c.pk for c in mixed["contracts"]]
    first = verifications_compute(contract_ids=ids, now=LATE)
    assert len(first.written) == len(ids)
    stamps = dict(DeliveryVerification.objects.values_list("contract_id", "computed_at"))
    assert verifications_compute(contract_ids=ids, now=LATE).written == {}
    for contract in mixed["contracts"][:5]:  # the per-contract path finds the batch's result current
        services.verification_run(contract=contract, now=LATE)
    assert dict(DeliveryVerification.objects.values_list("contract_id", "computed_at")) == stamps


@pytest.mark.django_db
def test_the_batch_reads_and_writes_with_a_constant_number_of_queries(mixed, django_assert_num_queries):
    by_kind = {}
    for contract in mixed["contracts"]:
        by_kind.setdefault((contract.product_id, bool(contract.offer.portfolio_id)), []).append(contract.pk)
    small = [ids[0] for ids in by_kind.values()]
    large = [pk for ids in by_kind.values() for pk in ids]
    assert len(large) > 2 * len(small)
    # contracts, portfolio members, stored results, event days, prognoses, readings, one upsert (on PostgreSQL:
    # a temporary table, a COPY into it, one INSERT ... ON CONFLICT and the DROP, inside a savepoint)
    expected = 7 if connection.vendor != "postgresql" else 6 + 6
    with django_assert_num_queries(expected):
        verifications_compute(contract_ids=small, now=LATE)
    DeliveryVerification.objects.all().delete()
    with django_assert_num_queries(expected):
        verifications_compute(contract_ids=large, now=LATE)


@pytest.mark.django_db
def test_an_error_in_one_contract_fails_only_that_contract(mixed):
    broken = mixed["contracts"][0]
    broken.product.baseline_method = "guesswork"
    broken.product.save()
    same_product = [c.pk for c in mixed["contracts"] if c.product_id == broken.product_id]
    others = [c.pk for c in mixed["contracts"] if c.product_id != broken.product_id]
    report = verifications_compute(contract_ids=same_product + others, now=LATE)
    assert set(report.failed) == set(same_product)
    assert report.failed[broken.pk] == "ValueError: unknown baseline method 'guesswork'"
    assert set(report.written) == set(others)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.django_db
def test_property_batch_equals_per_contract_on_random_inputs(data, dso_org, esp_org):
    """Random readings (gaps, missing days), days, windows, directions and methods: both paths store the same."""
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    day = data.draw(st.sampled_from(DAYS), label="day")
    n = ptu.ptu_count(day, TZ)
    gap = data.draw(st.sampled_from([0.0, 0.002, 0.05]), label="gap")
    picks = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(METHODS) - 1), st.integers(0, n - 1), st.integers(1, 8), st.booleans()
            ),
            min_size=1,
            max_size=5,
        ),
        label="contracts",
    )
    with transaction.atomic():
        rng = np.random.default_rng(seed)
        market = MarketFactory(time_zone=TZ, holiday_country="NL")
        assets = [
            FlexAssetFactory(owner=esp_org, max_up_kw=Decimal("3000"), max_down_kw=Decimal("3000"))
            for _ in range(3)
        ]
        write_readings(assets, window_days(day), rng, gap=gap, missing_days=0.1)
        ids = []
        for i, (method, start, length, down) in enumerate(picks):
            name, params = METHODS[method]
            product = ProductFactory(
                market=market,
                baseline_method=name,
                baseline_params=params,
                direction="down" if down else "up",
                delivery_tolerance=Decimal("0.05"),
            )
            length = min(length, n - start)
            contract = make_contract(
                product=product,
                day=day,
                buyer=dso_org,
                seller_asset=assets[i % 3],
                start_index=start,
                quantities_kw=[round(float(rng.uniform(1, 50)), 1) for _ in range(length)],
            )
            ids.append(contract.pk)
        compare_paths(ids, LATE)
        transaction.set_rollback(True)


# --- PostgreSQL: the binary COPY read --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_copy_read_equals_the_orm_read_and_the_paths_agree(mixed):
    assets = [a.pk for a in mixed["assets"]]
    start = ptu.day_bounds_utc(DAYS[2] - timedelta(days=32), TZ)[0]
    end = ptu.day_bounds_utc(DAYS[3] + timedelta(days=1), TZ)[1]
    # a superseded reading is not current and is left out by both
    readings_store([(mixed["assets"][0], start, Decimal("-1.5"))], version=7, superseded=True)
    copied, fetched = _read_copy(assets, start, end), _read_rows(assets, start, end)
    order_copied = np.lexsort((copied[1], copied[0]))
    order_fetched = np.lexsort((fetched[1], fetched[0]))
    for a, b in zip(copied, fetched, strict=True):
        assert np.array_equal(a[order_copied], b[order_fetched])
    assert connection.vendor == "postgresql"
    rows, values, versions = readings_grid(asset_ids=assets, start=start, end=end)
    assert np.isfinite(values).sum() == (versions > 0).sum() == len(fetched[0])
    compare_paths([c.pk for c in mixed["contracts"]], LATE)


# --- runs ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runs_queued_together_are_verified_in_one_batch_and_audited(
    mixed, django_capture_on_commit_callbacks
):
    ids = [c.pk for c in mixed["contracts"][:12]]
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        created = services.verification_runs_request(contract_ids=ids)
    assert len(created) == 12 and len(callbacks) == 1
    report = services.verification_runs_execute(run_ids=[run.pk for run in created])
    assert report == {"claimed": 12, "succeeded": 12, "failed": 0}
    runs = VerificationRun.objects.filter(pk__in=[run.pk for run in created])
    assert {run.state for run in runs} == {"succeeded"} and {run.attempts for run in runs} == {1}
    outcomes = dict(DeliveryVerification.objects.values_list("contract_id", "state"))
    assert {run.contract_id: run.outcome for run in runs} == outcomes
    events = AuditEvent.objects.filter(action="verification.computed")
    assert events.count() == 12 and {e.after["run"] for e in events} == {run.pk for run in created}
    assert services.verification_runs_execute(run_ids=[run.pk for run in created])["claimed"] == 0


@pytest.mark.django_db
def test_a_batch_run_fails_only_the_runs_of_contracts_that_failed(mixed):
    broken = mixed["contracts"][0]
    broken.product.baseline_method = "guesswork"
    broken.product.save()
    created = services.verification_runs_request(contract_ids=[c.pk for c in mixed["contracts"][:6]])
    report = services.verification_runs_execute(run_ids=[run.pk for run in created])
    failed = VerificationRun.objects.get(contract=broken)
    assert report["failed"] == 1 and failed.state == "failed" and "guesswork" in failed.error
    assert VerificationRun.objects.filter(state="succeeded").count() == 5
    assert AuditEvent.objects.get(action="verification.failed").after["contract"] == broken.pk


@pytest.mark.django_db
def test_a_batch_leaves_runs_another_worker_holds_and_retries_after_their_lease(mixed):
    created = services.verification_runs_request(contract_ids=[c.pk for c in mixed["contracts"][:3]])
    held = created[0]
    VerificationRun.objects.filter(pk=held.pk).update(
        state="running", attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(RunBusy) as busy:  # the task retries once the lease has expired
        services.verification_runs_execute(run_ids=[run.pk for run in created])
    assert 240 < busy.value.retry_in <= 301
    assert VerificationRun.objects.get(pk=held.pk).state == "running"
    assert VerificationRun.objects.filter(state="succeeded").count() == 2  # the others are done meanwhile


# --- which contracts an upload re-verifies ---------------------------------------------------------------------


def _upload(actor, asset, day, kw_for):
    return services.meter_upload_csv(
        actor=actor, file=io.BytesIO(readings_csv(asset, day, 1, kw_for)), filename="m.csv"
    )


@pytest.mark.django_db
def test_an_upload_re_verifies_only_contracts_whose_window_holds_a_changed_reading(
    world, actor_esp, django_capture_on_commit_callbacks
):
    asset, product = world["asset"], world["product"]
    day = date(2026, 6, 10)
    contract = make_contract(product=product, day=day, seller_asset=asset, buyer=world["dso"])
    far = make_contract(product=product, day=day + timedelta(days=30), seller_asset=asset, buyer=world["dso"])
    other_asset = FlexAssetFactory(
        owner=world["esp"], grid_location=world["zone"], created_at=asset.created_at
    )
    other = make_contract(product=product, day=day, seller_asset=other_asset, buyer=world["dso"])
    with django_capture_on_commit_callbacks(execute=False):
        _upload(
            actor_esp, asset, day + timedelta(days=5), lambda d, i: 100
        )  # after `contract`'s window, in `far`'s
    assert list(VerificationRun.objects.values_list("contract_id", flat=True)) == [far.pk]
    VerificationRun.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        _upload(actor_esp, asset, day - timedelta(days=20), lambda d, i: 100)  # in the baseline history
    assert list(VerificationRun.objects.values_list("contract_id", flat=True)) == [contract.pk]
    VerificationRun.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        _upload(actor_esp, asset, day - timedelta(days=40), lambda d, i: 100)  # before every window
    assert not VerificationRun.objects.exists()
    assert not VerificationRun.objects.filter(contract=other).exists()


@pytest.mark.django_db
def test_an_upload_on_the_edge_of_a_window_re_verifies_exactly_at_the_local_day_bounds(
    world, actor_esp, django_capture_on_commit_callbacks
):
    asset, product = world["asset"], world["product"]
    day = date(2026, 6, 10)
    contract = make_contract(product=product, day=day, seller_asset=asset, buyer=world["dso"])
    last_day = day + timedelta(days=1)  # the last local day the verification reads (midnight windows)
    with django_capture_on_commit_callbacks(execute=False):
        _upload(actor_esp, asset, last_day, lambda d, i: 100 if i == 95 else None)
    assert list(VerificationRun.objects.values_list("contract_id", flat=True)) == [contract.pk]
    VerificationRun.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=False):
        _upload(actor_esp, asset, last_day + timedelta(days=1), lambda d, i: 100 if i == 0 else None)
    assert not VerificationRun.objects.exists()


@pytest.mark.django_db
def test_an_upload_re_verifies_a_portfolio_contract_through_its_member(
    world, actor_esp, esp_org, django_capture_on_commit_callbacks
):
    asset, product = world["asset"], world["product"]
    day = date(2026, 6, 10)
    member = FlexAssetFactory(owner=esp_org, grid_location=world["zone"], created_at=asset.created_at)
    portfolio = Portfolio.objects.create(owner=esp_org, grid_location=world["zone"], name="Pool")
    portfolio.assets.set([asset, member])
    contract = make_contract(product=product, day=day, portfolio=portfolio, buyer=world["dso"])
    with django_capture_on_commit_callbacks(execute=False):
        _upload(actor_esp, member, day, lambda d, i: 100)
    assert list(VerificationRun.objects.values_list("contract_id", flat=True)) == [contract.pk]


# --- the FMO's Re-verify of a period ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_re_verifying_a_period_verifies_its_contracts_in_a_batch_and_counts_the_changes(mixed, actor_fmo):
    period = services.period_create(actor=actor_fmo, name="June", start=DAYS[0], end=DAYS[0])
    payable = [
        c.pk
        for c in mixed["contracts"]
        if c.session.delivery_day == DAYS[0] and c.state in (Contract.State.ACTIVE, Contract.State.SETTLED)
    ]
    for contract in Contract.objects.filter(pk__in=payable):  # the reference, removed again
        services.verification_run(contract=contract)
    reference = stored(payable)
    DeliveryVerification.objects.all().delete()
    assert services.period_reverify(actor=actor_fmo, period=period) == len(payable)
    assert stored(payable) == reference
    assert services.period_reverify(actor=actor_fmo, period=period) == 0  # unchanged inputs
    assert AuditEvent.objects.filter(action="settlement.reverify").count() == 2


@pytest.mark.django_db
def test_re_verifying_a_period_with_a_failing_contract_writes_nothing_and_names_it(mixed, actor_fmo):
    period = services.period_create(actor=actor_fmo, name="June", start=DAYS[0], end=DAYS[0])
    broken = next(
        c
        for c in mixed["contracts"]
        if c.session.delivery_day == DAYS[0] and c.state == Contract.State.ACTIVE
    )
    broken.product.baseline_method = "guesswork"
    broken.product.save()
    with pytest.raises(DomainError) as error:
        services.period_reverify(actor=actor_fmo, period=period)
    assert broken.reference in error.value.message and "guesswork" in error.value.message
    assert not DeliveryVerification.objects.exists()
