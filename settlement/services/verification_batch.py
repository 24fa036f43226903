"""Delivery verification in batches: the production path of verification runs and meter uploads.

A batch of contracts is verified with a constant number of queries whatever its size: the contracts, their
portfolios, their stored results, the contracts that make event days, the D-prognoses, then every reading the
batch needs in one set-based query (binary COPY on PostgreSQL), laid out as a grid of assets x PTUs. High/Mid X
of Y baselines (with or without a same-day adjustment) are computed with the vectorised functions of
`settlement.baselines` for all assets that share a delivery day and an event window; the other methods run per
contract on the grid. Changed results are written in one bulk upsert. Each contract's stored result, inputs
fingerprint included, is exactly what `verification_run` stores (tests/settlement/test_verification_batch.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from flexmarket import ptu as ptus
from flexmarket.runs import error_text
from grid.models import FlexAsset
from settlement import baselines, meterdays
from settlement.models import DeliveryVerification, Dispute, MeterDay, Prognosis
from settlement.services.verification import (
    Window,
    contract_window,
    contracted_profile,
    inputs_fingerprint,
    non_working_days,
    profiles_from_values,
    readings_digest,
    verification_fields,
    verification_run,
)
from trading.models import Contract

logger = logging.getLogger(__name__)

X_OF_Y = ("high_x_of_y", "mid_x_of_y")
SUMMARY_FIELDS = ("state", "contracted_kwh", "delivered_kwh", "method", "inputs_hash")
WRITTEN_FIELDS = (
    "state",
    "method",
    "params",
    "days_used",
    "baseline_kw",
    "metered_kw",
    "delivered_kw",
    "ratio",
    "status",
    "contracted_kwh",
    "delivered_kwh",
    "note",
    "inputs_hash",
    "computed_at",
)


@dataclass
class BatchReport:
    """Per contract: the state of its result after the batch; which results were written (with the summary they
    had before, None for a new one); which contracts failed and why (the others are stored regardless)."""

    states: dict[int, str] = field(default_factory=dict)
    written: dict[int, dict | None] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def merge(self, other: BatchReport) -> None:
        self.states.update(other.states)
        self.written.update(other.written)
        self.failed.update(other.failed)


def batch_size() -> int:
    return settings.FLEXMARKET_VERIFICATION_BATCH_CONTRACTS


def verifications_compute(*, contract_ids, now: datetime | None = None) -> BatchReport:
    """Verify the contracts (idempotent) in chunks of FLEXMARKET_VERIFICATION_BATCH_CONTRACTS, each read and
    written set-based. A contract with a dispute keeps its result; an error in one contract's computation fails
    that contract only. Call it inside a transaction: a database error leaves nothing half-written."""
    now = now or timezone.now()
    wanted = sorted(set(contract_ids))
    report = BatchReport()
    size = batch_size()
    for first in range(0, len(wanted), size):
        report.merge(_Chunk(wanted[first : first + size], now).run())
    return report


# --- one chunk -------------------------------------------------------------------------------------------------


@dataclass
class _Unit:
    """One asset of one contract."""

    contract: int  # index in the chunk's contract list
    position: int  # the asset's position in the contract
    row: int  # the asset's row in the readings grid
    event_days: set[date]


@dataclass
class _Job:
    contract: Contract
    window: Window
    assets: list[tuple[int, str]]
    rows: list[int]
    event_days: set[tuple[int, date]]
    non_working: set[date]
    portfolio_prognosis: list | None
    asset_prognoses: dict[int, list]
    fingerprint: str = ""
    contracted: np.ndarray | None = None
    metered: list[np.ndarray] = field(default_factory=list)
    results: list = field(default_factory=list)


class _Chunk:
    def __init__(self, contract_ids: list[int], now: datetime):
        self.ids, self.now = contract_ids, now
        self.report = BatchReport()
        self.day_cache: dict[tuple[str, date], tuple[int, np.ndarray]] = {}

    def run(self) -> BatchReport:
        contracts = list(
            Contract.objects.select_related("product__market", "offer__asset", "session")
            .filter(pk__in=self.ids)
            .order_by("pk")
        )
        if not contracts:
            return self.report
        members = self._portfolio_members({c.offer.portfolio_id for c in contracts if c.offer.portfolio_id})
        existing = self._existing()
        jobs: list[_Job] = []
        for contract in contracts:
            stored = existing.get(contract.pk)
            if stored is not None and stored["disputed"]:
                self.report.states[contract.pk] = stored["state"]  # held or final: see verification_run
                continue
            if contract.product.baseline_method == "temperature":
                self._one_by_one(contract, stored)
                continue
            market = contract.product.market
            window = contract_window(contract, market.time_zone, self.now)
            offer = contract.offer
            assets = [(offer.asset_id, offer.asset.name)] if offer.asset_id else members[offer.portfolio_id]
            jobs.append(
                _Job(
                    contract=contract,
                    window=window,
                    assets=assets,
                    rows=[],
                    event_days=set(),
                    non_working=self._non_working(market, window),
                    portfolio_prognosis=None,
                    asset_prognoses={},
                )
            )
        if not jobs:
            return self.report
        asset_ids = sorted({asset_id for job in jobs for asset_id, _ in job.assets})
        self._event_days(jobs, asset_ids)
        self._prognoses(jobs, asset_ids)
        lo = min(job.window.load_start for job in jobs)
        hi = max(job.window.load_end for job in jobs)
        # The grid spans every day a job reads, also the PTUs after `now` (NaN: not yet metered).
        last = max(
            ptus.day_bounds_utc(job.window.day + timedelta(days=1), job.contract.product.market.time_zone)[1]
            for job in jobs
        )
        rows, self.values, self.versions = readings_grid(asset_ids=asset_ids, start=lo, end=hi, until=last)
        self.lo = lo
        groups: dict[tuple, list[_Unit]] = defaultdict(list)
        pending: list[tuple[int, _Job]] = []
        for index, job in enumerate(jobs):
            try:
                if self._prepare(index, job, rows, existing.get(job.contract.pk), groups):
                    pending.append((index, job))
            except Exception as error:  # recorded for this contract; the batch goes on
                self._fail(job.contract, error)
        for key, units in groups.items():
            try:
                self._x_of_y(key, units, jobs)
            except Exception as error:
                for index in {unit.contract for unit in units}:
                    self._fail(jobs[index].contract, error)
        computed_at = timezone.now()
        writes = []
        for _index, job in pending:
            if job.contract.pk in self.report.failed:
                continue
            try:
                fields = verification_fields(
                    contract=job.contract,
                    window=job.window,
                    contracted=job.contracted,
                    asset_names=[name for _, name in job.assets],
                    metered=job.metered,
                    results=job.results,
                    portfolio_prognosis=job.portfolio_prognosis,
                    fingerprint=job.fingerprint,
                    computed_at=computed_at,
                )
            except Exception as error:
                self._fail(job.contract, error)
                continue
            writes.append(DeliveryVerification(contract=job.contract, **fields))
            stored = existing.get(job.contract.pk)
            self.report.written[job.contract.pk] = (
                None if stored is None else {name: str(stored[name]) for name in SUMMARY_FIELDS}
            )
            self.report.states[job.contract.pk] = fields["state"]
        results_write(writes)
        return self.report

    # --- reads (a constant number of queries) ---

    def _portfolio_members(self, portfolio_ids: set[int]) -> dict[int, list[tuple[int, str]]]:
        members: dict[int, list[tuple[int, str]]] = defaultdict(list)
        if portfolio_ids:
            through = FlexAsset.portfolios.through.objects.filter(portfolio_id__in=portfolio_ids)
            for portfolio_id, asset_id, name in through.order_by("flexasset_id").values_list(
                "portfolio_id", "flexasset_id", "flexasset__name"
            ):
                members[portfolio_id].append((asset_id, name))
        return members

    def _existing(self) -> dict[int, dict]:
        disputed = Exists(Dispute.objects.filter(verification=OuterRef("pk")))
        return {
            row["contract_id"]: row
            for row in DeliveryVerification.objects.filter(contract_id__in=self.ids)
            .annotate(disputed=disputed)
            .values("contract_id", "disputed", *SUMMARY_FIELDS)
        }

    def _non_working(self, market, window: Window) -> set[date]:
        return non_working_days(market, window.first_day - timedelta(days=1), window.day + timedelta(days=1))

    def _event_days(self, jobs: list[_Job], asset_ids: list[int]) -> None:
        """Event days as `verification.py:_event_days` finds them per contract, from one query for the batch."""
        start = min(job.window.load_start for job in jobs)
        end = max(job.window.start for job in jobs)
        by_asset: dict[int, list[tuple[int | None, int | None, datetime]]] = defaultdict(list)
        for asset_id, portfolio_asset, ptu_start in Contract.objects.filter(
            Q(offer__asset_id__in=asset_ids) | Q(offer__portfolio__assets__in=asset_ids),
            ptu_start__gte=start,
            ptu_start__lt=end,
        ).values_list("offer__asset_id", "offer__portfolio__assets", "ptu_start"):
            row = (asset_id, portfolio_asset, ptu_start)
            for key in {asset_id, portfolio_asset} - {None}:
                by_asset[key].append(row)
        local_days: dict[tuple[datetime, str], date] = {}
        for job in jobs:
            tz = job.contract.product.market.time_zone
            ids = {asset_id for asset_id, _ in job.assets}
            seen = set()
            for asset_id in ids:
                for row in by_asset.get(asset_id, ()):
                    asset, portfolio_asset, moment = row
                    if not (job.window.load_start <= moment < job.window.start) or id(row) in seen:
                        continue
                    seen.add(id(row))
                    day = local_days.get((moment, tz))
                    if day is None:
                        day = local_days[(moment, tz)] = ptus.local_day_of(moment, tz)
                    for member in (asset, portfolio_asset):
                        if member:
                            job.event_days.add((member, day))

    def _prognoses(self, jobs: list[_Job], asset_ids: list[int]) -> None:
        portfolio_ids = {job.contract.offer.portfolio_id for job in jobs} - {None}
        days = {job.window.day for job in jobs}
        per_asset: dict[tuple[int, date], list] = {}
        per_portfolio: dict[tuple[int, date], list] = {}
        for asset_id, portfolio_id, day, values in Prognosis.objects.filter(
            Q(asset_id__in=asset_ids) | Q(portfolio_id__in=portfolio_ids), delivery_day__in=days
        ).values_list("asset_id", "portfolio_id", "delivery_day", "values_kw"):
            if asset_id is not None:
                per_asset[(asset_id, day)] = values
            if portfolio_id is not None:
                per_portfolio[(portfolio_id, day)] = values
        for job in jobs:
            day = job.window.day
            if job.contract.offer.portfolio_id:
                job.portfolio_prognosis = per_portfolio.get((job.contract.offer.portfolio_id, day))
            job.asset_prognoses = {
                asset_id: per_asset[(asset_id, day)]
                for asset_id, _ in job.assets
                if (asset_id, day) in per_asset
            }

    # --- computation ---

    def _column(self, moment: datetime) -> int:
        return int((moment - self.lo) / ptus.PTU)

    def _day(self, day: date, tz: str) -> tuple[int, np.ndarray]:
        """First grid column and slot minutes of a local day."""
        key = (tz, day)
        if key not in self.day_cache:
            self.day_cache[key] = (
                self._column(ptus.day_bounds_utc(day, tz)[0]),
                baselines.day_slot_minutes(day, tz),
            )
        return self.day_cache[key]

    def _prepare(self, index: int, job: _Job, rows: dict[int, int], stored, groups) -> bool:
        """Fingerprint the contract's inputs; False if its stored result is current. Otherwise queue each asset's
        baseline: vectorised (X of Y) or computed here from the grid."""
        contract, window = job.contract, job.window
        product = contract.product
        tz = product.market.time_zone
        job.rows = [rows[asset_id] for asset_id, _ in job.assets]
        first, last = self._column(window.load_start), self._column(window.load_end)
        job.fingerprint = inputs_fingerprint(
            contract=contract,
            window=window,
            asset_ids=[asset_id for asset_id, _ in job.assets],
            digests=[readings_digest(self.versions[row, first:last]) for row in job.rows],
            event_days=job.event_days,
            non_working=job.non_working,
            portfolio_prognosis=job.portfolio_prognosis,
            asset_prognoses=job.asset_prognoses,
        )
        if stored is not None and stored["inputs_hash"] == job.fingerprint:
            self.report.states[contract.pk] = stored["state"]
            return False
        job.contracted = contracted_profile(contract, window)
        event_mask = job.contracted > 0
        column, slots = self._day(window.day, tz)
        job.metered = [self.values[row, column : column + slots.size].copy() for row in job.rows]
        nominated_whole = product.baseline_method == "nominated" and job.portfolio_prognosis is not None
        job.results = [None] * len(job.assets)
        if nominated_whole:
            return True
        key = _x_of_y_key(product.baseline_method, product.baseline_params)
        for position, (asset_id, _) in enumerate(job.assets):
            own_events = {d for a, d in job.event_days if a == asset_id}
            if key is not None:
                groups[(tz, window.day, product.market_id, *key, event_mask.tobytes())].append(
                    _Unit(index, position, job.rows[position], own_events)
                )
                continue
            days = window.history
            values = {}
            for day in [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]:
                start, day_slots = self._day(day, tz)
                values[day] = (self.values[job.rows[position], start : start + day_slots.size], day_slots)
            profiles = profiles_from_values(values, days, event_days=own_events, non_working=job.non_working)
            prognosis = job.asset_prognoses.get(asset_id)
            job.results[position] = baselines.compute_baseline(
                product.baseline_method,
                product.baseline_params,
                target=profiles[window.day],
                history=[profiles[d] for d in days[:-1]],
                event_mask=event_mask,
                nominated=np.array(prognosis, dtype=float) if prognosis else None,
            )
        return True

    def _x_of_y(self, key: tuple, units: list[_Unit], jobs: list[_Job]) -> None:
        """One vectorised X of Y (+ adjustment) for every asset of the group: same day, method and window."""
        tz, day, _market, method, x, y, adjustment, mask_bytes = key
        event_mask = np.frombuffer(mask_bytes, dtype=bool)
        job0 = jobs[units[0].contract]
        history_days = job0.window.history[:-1]
        non_working = job0.non_working
        rows = np.array([unit.row for unit in units])
        raw = {}
        for current in [history_days[0] - timedelta(days=1), *history_days, day, day + timedelta(days=1)]:
            column, slots = self._day(current, tz)
            raw[current] = self.values[rows, column : column + slots.size]
        target_slots = self._day(day, tz)[1]
        target = raw[day]

        def weekend(d: date) -> bool:
            return d.weekday() >= 5 or d in non_working

        aligned, like = [], []
        for current in history_days:
            slots = self._day(current, tz)[1]
            values = raw[current]
            same = slots.size == target_slots.size and bool((slots == target_slots).all())
            aligned.append(values if same else baselines.align_batch(values, slots, target_slots))
            events = np.array([current in unit.event_days for unit in units])
            like.append(np.isfinite(values).all(axis=1) & ~events & (weekend(current) == weekend(day)))
        result = baselines.baseline_x_of_y_rows(
            np.stack(aligned, axis=1), np.stack(like, axis=1), event_mask, x=x, y=y, mode=method.split("_")[0]
        )
        values = result.values
        complete = result.complete
        notes = np.full(len(units), "", dtype=object)
        if adjustment is not None:
            kind, window_ptus, gap_ptus, cap, positive_only = adjustment
            length = window_ptus + gap_ptus
            tails = np.full((len(units), len(history_days), length), np.nan)
            for k, current in enumerate(history_days):
                before = raw[current - timedelta(days=1)]
                take = min(length, before.shape[1])
                if take:
                    tails[:, k, length - take :] = before[:, before.shape[1] - take :]
            adjusted = baselines.adjust_same_day_batch(
                values,
                target,
                event_mask,
                kind=kind,
                window_ptus=window_ptus,
                gap_ptus=gap_ptus,
                cap=cap,
                positive_only=positive_only,
                baseline_before=baselines.tails_mean_batch(tails, result.chosen),
                actual_before=raw[history_days[-1]],
            )
            values = np.where(complete[:, None], adjusted, values)
            adjusted_complete = np.isfinite(adjusted).all(axis=1)
            notes[complete & ~adjusted_complete] = "awaiting the readings before the event (adjustment)"
            complete = np.where(complete, adjusted_complete, complete)
        like_count = result.like_days.sum(axis=1)
        for i, unit in enumerate(units):
            params = dict(jobs[unit.contract].contract.product.baseline_params or {})
            if like_count[i] < x:
                used = tuple(history_days[k] for k in np.flatnonzero(result.like_days[i]))
                note = f"only {like_count[i]} eligible like-days; {x} needed"
            else:
                used = tuple(history_days[k] for k in sorted(result.chosen[i]))
                note = notes[i]
            jobs[unit.contract].results[unit.position] = baselines.BaselineResult(
                values[i], method, params, used, bool(complete[i]), note
            )

    def _one_by_one(self, contract: Contract, stored: dict | None) -> None:
        """The temperature method also reads zone temperatures, which the batch grid does not hold: such
        contracts take the per-contract path (the same stored fields), reported like the batch's own."""
        try:
            with transaction.atomic():
                result = verification_run(contract=contract, now=self.now)
        except Exception as error:  # recorded for this contract; the batch goes on
            self._fail(contract, error)
            return
        before = None if stored is None else {name: str(stored[name]) for name in SUMMARY_FIELDS}
        if before is None or before["inputs_hash"] != result.inputs_hash:
            self.report.written[contract.pk] = before
        self.report.states[contract.pk] = result.state

    def _fail(self, contract: Contract, error: Exception) -> None:
        logger.exception("Verification of contract %s failed", contract.pk, exc_info=error)
        self.report.failed[contract.pk] = error_text(error)


def results_write(results: list[DeliveryVerification]) -> None:
    """Insert or update the results in one statement: on PostgreSQL a COPY into a temporary table and one
    INSERT ... ON CONFLICT (four queries in a savepoint, no per-row SQL); elsewhere one bulk upsert."""
    if not results:
        return
    if connection.vendor != "postgresql":
        DeliveryVerification.objects.bulk_create(
            results, update_conflicts=True, unique_fields=["contract"], update_fields=list(WRITTEN_FIELDS)
        )
        return
    table = DeliveryVerification._meta.db_table
    columns = ", ".join(["contract_id", *WRITTEN_FIELDS])
    json_fields = {"params", "days_used", "baseline_kw", "metered_kw", "delivered_kw", "ratio", "status"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE verification_batch AS SELECT {columns} FROM {table} WITH NO DATA")
        sql = f"COPY verification_batch ({columns}) FROM STDIN"
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
        with logged, cursor.cursor.copy(sql) as copy:
            for result in results:
                copy.write_row(
                    [result.contract_id]
                    + [
                        json.dumps(getattr(result, name)) if name in json_fields else getattr(result, name)
                        for name in WRITTEN_FIELDS
                    ]
                )
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in WRITTEN_FIELDS)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM verification_batch "
            f"ON CONFLICT (contract_id) DO UPDATE SET {updates}"
        )
        cursor.execute("DROP TABLE verification_batch")  # an error before this rolls the CREATE back too


def _x_of_y_key(method: str, params: dict | None) -> tuple | None:
    """The group key of a product whose baseline the vectorised X of Y computes; None for the other methods and
    for parameters it does not take (those run per contract, which also raises what the single path raises)."""
    if method not in X_OF_Y:
        return None
    params = dict(params or {})
    try:
        x, y = int(params.get("x", 5)), int(params.get("y", 10))
    except (TypeError, ValueError):
        return None
    if not 0 < x <= y:
        return None
    adjustment = None
    if params.get("adjustment"):
        kind = params["adjustment"]
        cap = params.get("cap", 0.2)
        try:
            window_ptus, gap_ptus = int(params.get("window_ptus", 4)), int(params.get("gap_ptus", 1))
        except (TypeError, ValueError):
            return None
        if (
            kind not in ("additive", "multiplicative")
            or window_ptus <= 0
            or gap_ptus < 0
            or not (cap is None or (isinstance(cap, (int, float)) and not isinstance(cap, bool)))
        ):
            return None
        adjustment = (kind, window_ptus, gap_ptus, cap, bool(params.get("positive_only", False)))
    return method, x, y, adjustment


# --- the set-based read ----------------------------------------------------------------------------------------


def readings_grid(
    *, asset_ids: list[int], start: datetime, end: datetime, until: datetime | None = None
) -> tuple[dict[int, int], np.ndarray, np.ndarray]:
    """Current ESP readings of the assets in [start, end) in one query, as a grid from `start` to `until` (default
    `end`): ({asset id: row}, kW (rows, PTUs) with NaN where there is no reading, version (rows, PTUs) with 0 where
    there is none). Readings off a PTU boundary are left out, as the per-contract path leaves them out of its
    series."""
    width = max(int((max(end, until or end) - start) / ptus.PTU), 0)
    rows = {asset_id: i for i, asset_id in enumerate(asset_ids)}
    values = np.full((len(asset_ids), width), np.nan)
    versions = np.zeros((len(asset_ids), width), dtype=np.int32)
    if not asset_ids or end <= start:
        return rows, values, versions
    origin, ptu = _micros(start), _micros(ptus.PTU)
    ids = np.asarray(asset_ids, dtype=np.int64)

    def scatter(assets, micros, kw, version) -> None:
        offset = micros - origin
        on_boundary = offset % ptu == 0
        row = np.searchsorted(ids, assets[on_boundary])
        column = offset[on_boundary] // ptu
        values[row, column] = kw[on_boundary]
        versions[row, column] = version[on_boundary]

    if connection.vendor == "postgresql":
        _read_copy(asset_ids, start, end, sink=scatter)
    else:
        scatter(*_read_rows(asset_ids, start, end))
    return rows, values, versions


def _micros(value: datetime | timedelta) -> int:
    """Microseconds since the Unix epoch (a datetime) or in a duration."""
    if isinstance(value, datetime):
        value = value - _UNIX_EPOCH
    return value // timedelta(microseconds=1)


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=ptus.UTC)


def _read_rows(asset_ids, start, end):
    first, last = meterdays.days_spanning(start, end)
    rows = list(
        MeterDay.objects.filter(
            asset_id__in=asset_ids,
            source=MeterDay.Source.ESP,
            superseded_at__isnull=True,
            day__gte=first,
            day__lte=last,
        ).values_list("asset_id", "day", "version", "watts")
    )
    watts = np.array([meterdays.unpack(r[3]) for r in rows], dtype=np.int64).reshape(
        len(rows), meterdays.PTUS_PER_DAY
    )
    row, micros, kw, version = meterdays.expand(
        np.array([meterdays.epoch_day(r[1]) for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.int64),
        watts,
        _micros(start),
        _micros(end),
    )
    return np.array([r[0] for r in rows], dtype=np.int64)[row], micros, kw, version


_DAY_ROW = np.dtype([("day", ">i4"), ("version", ">i4"), ("watts", "<i8", (meterdays.PTUS_PER_DAY,))])
_COPY_HEADER = 19  # binary COPY: signature, flags, header extension length


def _read_copy(asset_ids, start, end, sink=None):
    """The same readings through PostgreSQL's binary COPY: one row per asset whose current day rows the server
    concatenates into one bytea (day since the Unix epoch, version, the 768 packed bytes as stored), parsed and
    expanded by numpy without a Python object per reading or per day, and handed to `sink(assets, micros, kw,
    version)` a few MiB at a time (None: returned as four arrays)."""
    table = MeterDay._meta.db_table
    first, last = meterdays.days_spanning(start, end)
    sql = (
        "COPY (SELECT asset_id::int8, string_agg(int4send((day - DATE '1970-01-01')::int4)"
        " || int4send(version::int4) || watts, ''::bytea)"
        f" FROM {table} WHERE source = %s AND superseded_at IS NULL AND day >= %s AND day <= %s"
        " AND asset_id = ANY(%s) GROUP BY asset_id) TO STDOUT (FORMAT BINARY)"
    )
    params = [MeterDay.Source.ESP, first, last, list(asset_ids)]
    start_micros, end_micros = _micros(start), _micros(end)
    parts = []
    sink = sink or (lambda *arrays: parts.append(arrays))
    buffer = bytearray()
    position = _COPY_HEADER

    def consume() -> None:
        """Hand every complete row in the buffer to the sink, then drop those bytes."""
        nonlocal position
        assets, days = [], []
        while len(buffer) >= position + 2 + 12 + 4:
            if int.from_bytes(buffer[position : position + 2], "big", signed=True) == -1:  # the trailer
                break
            asset = int.from_bytes(buffer[position + 6 : position + 14], "big", signed=True)
            length = int.from_bytes(buffer[position + 14 : position + 18], "big", signed=True)
            if len(buffer) < position + 18 + length:
                break
            packed = np.frombuffer(
                buffer, dtype=_DAY_ROW, count=length // _DAY_ROW.itemsize, offset=position + 18
            )
            assets.append(np.full(packed.size, asset, dtype=np.int64))
            days.append(packed.copy())
            position += 18 + length
        if days:
            packed = np.concatenate(days)
            row, micros, kw, version = meterdays.expand(
                packed["day"].astype(np.int64),
                packed["version"].astype(np.int64),
                packed["watts"].astype(np.int64),
                start_micros,
                end_micros,
            )
            sink(np.concatenate(assets)[row], micros, kw, version)
        if position <= len(buffer):
            del buffer[:position]
            position = 0

    with connection.cursor() as cursor:
        # Logged like any query (DEBUG, django_assert_num_queries) though it bypasses cursor.execute.
        logged = cursor.debug_sql(sql, params) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
        with logged, cursor.cursor.copy(sql, params) as copy:
            for block in copy:
                buffer.extend(block)
                if len(buffer) >= 1 << 22:
                    consume()
    consume()
    if parts:
        return tuple(np.concatenate([part[i] for part in parts]) for i in range(4))
    return tuple(np.zeros(0, dtype=dtype) for dtype in (np.int64, np.int64, float, np.int64))
