"""Meter data: streamed CSV and API uploads, corrections with history."""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record
from flexmarket import ptu as ptus
from flexmarket import validation
from flexmarket.csvio import CsvReader, FileRejected, ImportErrors
from flexmarket.errors import DomainError
from flexmarket.imports import import_job_create
from flexmarket.models import ImportJob
from grid.models import FlexAsset
from settlement import meterdays
from settlement.errors import SettlementErrorCode as Code
from settlement.models import MeterDay, MeterUpload
from trading.models import Contract

METER_CSV_COLUMNS = ["asset_ean", "ptu_start", "kw"]
BATCH = 5000
ABSURD_FACTOR = 10  # |kW| above 10 x the asset's larger capability (at least 1 kW) is refused


# --- meter data -------------------------------------------------------------------------------------


class _Seen:
    """Which PTUs each asset has in the file, to find duplicates and count gaps.

    Memory grows with the readings in the file, never with the span of time they cover: one bitmask per asset
    and day of PTUs present (a year for 1,000 assets is ~365,000 small integers), plus first, last and count per
    asset; gaps are then (last − first + 1) − count.
    """

    DAY = 96  # PTUs per mask; any fixed size works, a day keeps masks small

    def __init__(self):
        self.masks: dict[tuple[int, int], int] = {}
        self.extent: dict[int, list[int]] = {}

    def add(self, asset_id: int, index: int) -> bool:
        """Mark a PTU; False if it was already there (a duplicate)."""
        key, bit = (asset_id, index // self.DAY), 1 << (index % self.DAY)
        mask = self.masks.get(key, 0)
        if mask & bit:
            return False
        self.masks[key] = mask | bit
        extent = self.extent.get(asset_id)
        if extent is None:
            self.extent[asset_id] = [index, index, 1]
        else:
            extent[0], extent[1], extent[2] = min(extent[0], index), max(extent[1], index), extent[2] + 1
        return True

    def gaps(self) -> dict[int, int]:
        result = {}
        for asset_id, (first, last, count) in self.extent.items():
            missing = last - first + 1 - count
            if missing:
                result[asset_id] = missing
        return result


def _parse_row(
    row: list[str], number: int, assets: dict[str, FlexAsset], now: datetime
) -> tuple[FlexAsset, datetime, Decimal] | dict:
    def error(field, message):
        return {"row": number, "field": field, "message": message}

    if len(row) < 3:
        return error(None, "Expected asset_ean, ptu_start, kw.")
    ean, stamp, value = (cell.strip() for cell in row[:3])
    asset = assets.get(ean)
    if asset is None:
        return error(
            "asset_ean", f"Asset {ean or '(empty)'} is unknown or not registered by your organisation."
        )
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return error("ptu_start", f"'{stamp[:40]}' is not an ISO 8601 time.")
    if moment.tzinfo is None:
        return error(
            "ptu_start", "Give a UTC offset (e.g. +01:00 or Z): local times are ambiguous on DST days."
        )
    try:
        validation.check_moment(moment, field="ptu_start", code=Code.INVALID_FILE)
    except DomainError as outside:
        return error("ptu_start", outside.message)
    try:
        moment = moment.astimezone(ptus.UTC)
        earliest = asset.created_at - timedelta(days=settings.METER_READINGS_DAYS_BEFORE_ASSET)
        too_early, too_late = moment < earliest, moment + ptus.PTU > now
    except OverflowError:
        return error("ptu_start", f"{stamp} is outside any sane reading window.")
    if too_early:
        return error(
            "ptu_start",
            f"{stamp} is more than {settings.METER_READINGS_DAYS_BEFORE_ASSET} days before {asset.name} was "
            f"registered ({asset.created_at:%Y-%m-%d}).",
        )
    if too_late:
        return error("ptu_start", f"{stamp}: this PTU has not ended yet; readings of the future are refused.")
    if not ptus.is_ptu_boundary(moment):
        return error("ptu_start", f"{stamp} is not on a 15-minute PTU boundary.")
    try:
        kw = Decimal(value)
    except InvalidOperation:
        return error("kw", f"'{value[:40]}' is not a number.")
    limit = ABSURD_FACTOR * max(float(asset.max_up_kw), float(asset.max_down_kw), 1.0)
    if not kw.is_finite() or abs(float(kw)) > limit:
        return error("kw", f"{value} kW is beyond {asset.name}'s plausible range (±{limit:g} kW).")
    return asset, moment, kw.quantize(Decimal("0.001"))


def _parse_accepted_row(row: list[str], assets: dict[str, FlexAsset]) -> tuple[FlexAsset, datetime, Decimal]:
    """A row of the second pass, which `_parse_row` accepted in the first: the same values, without the checks."""
    ean, stamp, value = (cell.strip() for cell in row[:3])
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ptus.UTC)
    return assets[ean], moment, Decimal(value).quantize(Decimal("0.001"))


def _uploadable_assets(actor: Actor) -> tuple[dict[str, FlexAsset], str]:
    if actor.has_role(Role.ESP):
        return {
            a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)
        }, MeterDay.Source.ESP
    if actor.has_role(Role.DSO):
        return {
            a.connection_ean: a for a in FlexAsset.objects.filter(grid_location__dso=actor.organisation)
        }, MeterDay.Source.DSO
    raise DomainError(
        Code.ROLE, "Only ESPs (their assets) and DSOs (connection points in their zones) upload meter data."
    )


class _Span:
    """First and last reading of a file: a file may span at most FLEXMARKET_METER_FILE_MAX_SPAN_DAYS."""

    def __init__(self):
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.limit = timedelta(days=settings.FLEXMARKET_METER_FILE_MAX_SPAN_DAYS)

    def add(self, moment: datetime, number: int) -> None:
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)
        if self.last - self.first > self.limit:
            raise FileRejected(
                Code.INVALID_FILE,
                f"Row {number}: the file's readings span more than {self.limit.days} days "
                f"({self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}); upload one file per period.",
                field="file",
            )


def _meter_reader(file, errors: ImportErrors, *, count_first: bool = True) -> CsvReader:
    """The shared CSV reader with the meter file's columns and row limit (decoding, NUL, sizes)."""
    return CsvReader(
        file,
        code=Code.INVALID_FILE,
        required=METER_CSV_COLUMNS,
        errors=errors,
        max_rows=settings.FLEXMARKET_METER_IMPORT_MAX_ROWS,
        count_first=count_first,
    )


def meter_upload_csv(
    *, actor: Actor, file, filename: str = "", progress=None, now: datetime | None = None
) -> MeterUpload:
    """Validate a whole CSV (streamed), then write it in batches in one transaction.

    Any row error → nothing is written and the rejected upload lists the errors. The same file again changes
    nothing. A changed value supersedes the current reading (its history is kept). Readings must fall between
    `METER_READINGS_DAYS_BEFORE_ASSET` days before the asset was registered and the end of the last PTU that has
    passed. Concurrent uploads touching the same assets are serialised on the asset rows, so identical uploads
    all succeed and only the first changes anything.
    """
    now = now or timezone.now()
    assets, source = _uploadable_assets(actor)
    digest = hashlib.sha256()
    seen = _Seen()
    errors = ImportErrors(Code.INVALID_FILE)
    rows = 0
    span = _Span()
    reader = _meter_reader(file, errors)
    for number, fields in reader:
        row = [fields.get(column, "") for column in METER_CSV_COLUMNS]
        digest.update(",".join(row).encode())
        rows += 1
        parsed = _parse_row(row, number, assets, now)
        if isinstance(parsed, dict):
            errors.add(parsed["row"], parsed["field"], parsed["message"])
            continue
        asset, moment, _ = parsed
        span.add(moment, number)
        if not seen.add(asset.pk, int(moment.timestamp()) // 900):
            errors.add(
                number, "ptu_start", f"Duplicate reading for {asset.connection_ean} at {moment.isoformat()}."
            )
        if progress is not None:
            progress(rows, errors.count)
    sha = digest.hexdigest()
    id_to_ean = {a.pk: ean for ean, a in assets.items()}
    warnings = [
        {"asset": id_to_ean[asset_id], "missing_ptus": missing} for asset_id, missing in seen.gaps().items()
    ]
    if errors or rows == 0:
        if not errors:
            errors.add(1, "file", "The file has no readings.")
        upload = MeterUpload.objects.create(
            owner=actor.organisation,
            uploaded_by=actor.user,
            filename=filename[:200],
            sha256=sha,
            state=MeterUpload.State.REJECTED,
            row_count=reader.rows_read,
            errors=errors.items,
            warnings=warnings,
        )
        raise errors.exception()
    file.seek(0)
    reader = _meter_reader(file, ImportErrors(Code.INVALID_FILE), count_first=False)
    with transaction.atomic():
        # Serialise writers of the same assets: a concurrent identical upload waits here, then finds the
        # readings current and changes nothing (no IntegrityError on one_current_reading).
        list(FlexAsset.objects.select_for_update().filter(pk__in=sorted(seen.extent)).order_by("pk"))
        upload = MeterUpload.objects.create(
            owner=actor.organisation,
            uploaded_by=actor.user,
            filename=filename[:200],
            sha256=sha,
            state=MeterUpload.State.ACCEPTED,
            row_count=rows,
            warnings=warnings,
        )
        changed, touched = 0, defaultdict(dict)
        batch: list[tuple[FlexAsset, datetime, Decimal]] = []
        for _number, fields in reader:
            batch.append(_parse_accepted_row([fields.get(c, "") for c in METER_CSV_COLUMNS], assets))
            if len(batch) >= BATCH:
                changed += _write_batch(batch, upload, source, touched)
                batch = []
        changed += _write_batch(batch, upload, source, touched)
        upload.changed_count = changed
        upload.save(update_fields=["changed_count"])
        audit_record(
            actor=actor,
            action="meter.upload",
            target=upload,
            after={"rows": rows, "changed": changed, "sha256": sha},
        )
        if changed:
            _queue_verifications(touched)
    return upload


def _write_batch(batch, upload: MeterUpload, source: str, touched) -> int:
    """Merge a batch of parsed readings into the current day rows; returns how many readings changed.

    A day row this upload already wrote is rewritten in place (a file is one version, whatever order its rows
    come in); any other changed day gets a new version and the previous one is kept, superseded.
    """
    if not batch:
        return 0
    incoming: dict[tuple[int, date], dict[int, int]] = defaultdict(dict)
    for asset, moment, kw in batch:
        day, index = meterdays.position(moment)
        incoming[(asset.pk, day)][index] = meterdays.watts_of(kw)
    current = {
        (row.asset_id, row.day): row
        for row in MeterDay.objects.filter(
            source=source,
            superseded_at__isnull=True,
            asset_id__in={asset_id for asset_id, _ in incoming},
            day__in={day for _, day in incoming},
        )
    }
    now = timezone.now()
    changed, superseded, rewritten, new = 0, [], [], []
    for (asset_id, day), values in incoming.items():
        row = current.get((asset_id, day))
        before = meterdays.unpack(row.watts) if row is not None else meterdays.empty()
        after = before.copy()
        after[list(values)] = list(values.values())
        differs = np.flatnonzero(after != before)
        if not differs.size:
            continue
        changed += int(differs.size)
        first, last = meterdays.moment_of(day, int(differs[0])), meterdays.moment_of(day, int(differs[-1]))
        span = touched[asset_id].get(day)
        touched[asset_id][day] = (first, last) if span is None else (min(span[0], first), max(span[1], last))
        packed, present = meterdays.pack(after), int((after != meterdays.MISSING).sum())
        if row is not None and row.upload_id == upload.pk:
            row.watts, row.readings = packed, present
            rewritten.append(row)
            continue
        if row is not None:
            superseded.append(row.pk)
        new.append(
            MeterDay(
                asset_id=asset_id,
                source=source,
                day=day,
                watts=packed,
                readings=present,
                version=row.version + 1 if row is not None else 1,
                upload=upload,
                created_at=now,
            )
        )
    MeterDay.objects.filter(pk__in=superseded).update(superseded_at=now)
    MeterDay.objects.bulk_update(rewritten, ["watts", "readings"], batch_size=BATCH)
    MeterDay.objects.bulk_create(new, batch_size=BATCH)
    return changed


def _readings_csv(readings: list[dict], file) -> None:
    """Write API readings as a meter CSV (the file format every upload path validates)."""
    text = io.TextIOWrapper(file, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(METER_CSV_COLUMNS)
    for item in readings:
        writer.writerow([item.get("asset_ean", ""), item.get("ptu_start", ""), item.get("kw", "")])
    text.detach()
    file.seek(0)


def readings_submit(*, actor: Actor, readings: list[dict], now: datetime | None = None) -> MeterUpload:
    """API bulk submission: [{"asset_ean", "ptu_start", "kw"}, ...], validated like a CSV upload."""
    buffer = io.BytesIO()
    _readings_csv(readings, buffer)
    return meter_upload_csv(actor=actor, file=buffer, filename="api", now=now)


def readings_submit_background(*, actor: Actor, readings: list[dict]) -> ImportJob:
    """A large API batch as a meter import job (flexmarket.imports): a worker validates and writes it exactly like
    an uploaded CSV, all or nothing, and the job shows rows done and row errors."""
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        _readings_csv(readings, spool)
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
        upload = File(spool, name="api.csv")
        upload.size = size
        return import_job_create(actor=actor, kind="meter_readings", upload=upload)


def _queue_verifications(touched: dict[int, dict]) -> None:
    """Queue verification runs (in the upload's transaction) for the payable contracts, whatever their period's
    state, whose verification reads a changed reading: its asset is one of the contract's and its PTU lies in
    the contract's window (the HISTORY_DAYS days before the delivery day, the day itself, and one day more on
    each side for midnight windows; `verification.contract_window`). `touched` holds, per asset and UTC date,
    the first and last changed PTU: the window spans more than a day, so it holds a changed PTU exactly when it
    overlaps one of these spans."""
    from settlement.services.verification import HISTORY_DAYS, VERIFIABLE_STATES
    from settlement.services.verification_runs import verification_runs_request

    spans = {asset_id: list(days.values()) for asset_id, days in touched.items()}
    if not spans:
        return
    first = min(span[0] for asset_spans in spans.values() for span in asset_spans)
    last = max(span[1] for asset_spans in spans.values() for span in asset_spans)
    candidates = (
        Contract.objects.filter(
            state__in=VERIFIABLE_STATES,
            ptu_start__gte=first - timedelta(days=2),
            ptu_start__lt=last + timedelta(days=HISTORY_DAYS + 3),
        )
        .filter(Q(offer__asset_id__in=spans) | Q(offer__portfolio__assets__in=spans))
        .values_list(
            "pk",
            "ptu_start",
            "session__delivery_day",
            "product__market__time_zone",
            "offer__asset_id",
            "offer__portfolio__assets",
        )
    )
    contract_ids: set[int] = set()
    for pk, ptu_start, delivery_day, tz, asset_id, member_id in candidates:
        if pk in contract_ids:
            continue
        day = delivery_day or ptus.local_day_of(ptu_start, tz)
        load_start = ptus.day_bounds_utc(day - timedelta(days=HISTORY_DAYS + 1), tz)[0]
        load_end = ptus.day_bounds_utc(day + timedelta(days=1), tz)[1]
        for asset in (asset_id, member_id):
            if any(low < load_end and high >= load_start for low, high in spans.get(asset, ())):
                contract_ids.add(pk)
    verification_runs_request(contract_ids=sorted(contract_ids))


def meter_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    """Background run of meter_upload_csv (flexmarket.imports)."""
    upload = meter_upload_csv(actor=actor, file=file, filename=filename, progress=progress)
    return {"count": upload.row_count, "changed": upload.changed_count, "upload": upload.pk}
