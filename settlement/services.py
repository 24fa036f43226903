"""Meter data, D-prognoses, delivery verification, disputes, baseline accuracy, settlement and invoices."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Organisation, Role
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError, ValidationErrors
from grid.models import FlexAsset, Portfolio
from settlement import baselines
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Dispute,
    Invoice,
    InvoiceSequence,
    MeterReading,
    MeterUpload,
    Prognosis,
    SettlementPeriod,
    SettlementStatement,
    StatementLine,
)
from settlement.selectors import readings_fingerprint, readings_series
from trading.models import Contract, MarketSession

METER_CSV_COLUMNS = ["asset_ean", "ptu_start", "kw"]
BATCH = 5000
ABSURD_FACTOR = 10  # |kW| above 10 x the asset's larger capability (at least 1 kW) is refused
HISTORY_DAYS = 30
CENT = Decimal("0.01")


# --- meter data -------------------------------------------------------------------------------------


class _Seen:
    """PTUs seen per asset, as a compact bitmap (a year for 1,000 assets is ~35 MB, not 35 M Python objects)."""

    def __init__(self):
        self.first: dict[int, int] = {}
        self.bits: dict[int, bytearray] = {}

    def add(self, asset_id: int, index: int) -> bool:
        """Mark a PTU; False if it was already there (a duplicate)."""
        base = self.first.setdefault(asset_id, index - 200_000)
        bits = self.bits.setdefault(asset_id, bytearray())
        offset = index - base
        if offset < 0:
            raise ValueError("reading too far before the file's first reading for this asset")
        if offset >= len(bits):
            bits.extend(b"\x00" * (offset - len(bits) + 4096))
        if bits[offset]:
            return False
        bits[offset] = 1
        return True

    def gaps(self) -> dict[int, int]:
        result = {}
        for asset_id, bits in self.bits.items():
            marked = [i for i in (bits.find(b"\x01"), bits.rfind(b"\x01")) if i >= 0]
            if marked:
                span = bits[marked[0] : marked[1] + 1]
                missing = span.count(0)
                if missing:
                    result[asset_id] = missing
        return result


def _parse_row(
    row: list[str], number: int, assets: dict[str, FlexAsset]
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
        return error("ptu_start", f"'{stamp}' is not an ISO 8601 time.")
    if moment.tzinfo is None:
        return error(
            "ptu_start", "Give a UTC offset (e.g. +01:00 or Z): local times are ambiguous on DST days."
        )
    if not ptus.is_ptu_boundary(moment):
        return error("ptu_start", f"{stamp} is not on a 15-minute PTU boundary.")
    try:
        kw = Decimal(value)
    except InvalidOperation:
        return error("kw", f"'{value}' is not a number.")
    limit = ABSURD_FACTOR * max(float(asset.max_up_kw), float(asset.max_down_kw), 1.0)
    if not kw.is_finite() or abs(float(kw)) > limit:
        return error("kw", f"{value} kW is beyond {asset.name}'s plausible range (±{limit:g} kW).")
    return asset, moment.astimezone(ptus.UTC), kw.quantize(Decimal("0.001"))


def _uploadable_assets(actor: Actor) -> tuple[dict[str, FlexAsset], str]:
    if actor.has_role(Role.ESP):
        return {
            a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)
        }, MeterReading.Source.ESP
    if actor.has_role(Role.DSO):
        return {
            a.connection_ean: a for a in FlexAsset.objects.filter(grid_location__dso=actor.organisation)
        }, MeterReading.Source.DSO
    raise DomainError(
        Code.ROLE, "Only ESPs (their assets) and DSOs (connection points in their zones) upload meter data."
    )


def meter_upload_csv(*, actor: Actor, file, filename: str = "") -> MeterUpload:
    """Validate a whole CSV (streamed), then write it in batches in one transaction.

    Any row error → nothing is written and the rejected upload lists the errors. The same file again changes
    nothing. A changed value supersedes the current reading (its history is kept).
    """
    assets, source = _uploadable_assets(actor)
    digest = hashlib.sha256()
    seen = _Seen()
    errors: list[dict] = []
    rows = 0
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:3]] != METER_CSV_COLUMNS:
        raise DomainError(
            Code.INVALID_FILE, f"The first line must be: {','.join(METER_CSV_COLUMNS)}.", field="file"
        )
    for number, row in enumerate(reader, start=2):
        digest.update(",".join(row).encode())
        rows += 1
        parsed = _parse_row(row, number, assets)
        if isinstance(parsed, dict):
            if len(errors) < 1000:
                errors.append(parsed)
            continue
        asset, moment, _ = parsed
        if not seen.add(asset.pk, int(moment.timestamp()) // 900):
            errors.append(
                {
                    "row": number,
                    "field": "ptu_start",
                    "message": f"Duplicate reading for {asset.connection_ean} at {moment.isoformat()}.",
                }
            )
    text.detach()  # keep the upload open for the second pass
    sha = digest.hexdigest()
    id_to_ean = {a.pk: ean for ean, a in assets.items()}
    warnings = [
        {"asset": id_to_ean[asset_id], "missing_ptus": missing} for asset_id, missing in seen.gaps().items()
    ]
    if errors or rows == 0:
        upload = MeterUpload.objects.create(
            owner=actor.organisation,
            uploaded_by=actor.user,
            filename=filename[:200],
            sha256=sha,
            state=MeterUpload.State.REJECTED,
            row_count=rows,
            errors=errors or [{"row": 1, "field": "file", "message": "The file has no readings."}],
            warnings=warnings,
        )
        raise ValidationErrors(
            Code.INVALID_FILE, f"{len(errors) or 1} problem(s) found; nothing was imported.", upload.errors
        )
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    next(reader)
    with transaction.atomic():
        upload = MeterUpload.objects.create(
            owner=actor.organisation,
            uploaded_by=actor.user,
            filename=filename[:200],
            sha256=sha,
            state=MeterUpload.State.ACCEPTED,
            row_count=rows,
            warnings=warnings,
        )
        changed, touched = 0, defaultdict(set)
        batch: list[tuple[FlexAsset, datetime, Decimal]] = []
        for number, row in enumerate(reader, start=2):
            batch.append(_parse_row(row, number, assets))
            if len(batch) >= BATCH:
                changed += _write_batch(batch, upload, source, touched)
                batch = []
        changed += _write_batch(batch, upload, source, touched)
        text.detach()
        upload.changed_count = changed
        upload.save(update_fields=["changed_count"])
        audit_record(
            actor=actor,
            action="meter.upload",
            target=upload,
            after={"rows": rows, "changed": changed, "sha256": sha},
        )
        if changed:
            days = {(asset_id, d) for asset_id, ds in touched.items() for d in ds}
            transaction.on_commit(lambda: _queue_verifications(days))
    return upload


def _write_batch(batch, upload: MeterUpload, source: str, touched) -> int:
    if not batch:
        return 0
    keys = {(asset.pk, moment) for asset, moment, _ in batch}
    current = {
        (r.asset_id, r.ptu_start): r
        for r in MeterReading.objects.filter(
            source=source,
            superseded_at__isnull=True,
            asset_id__in={k[0] for k in keys},
            ptu_start__gte=min(k[1] for k in keys),
            ptu_start__lte=max(k[1] for k in keys),
        )
    }
    now = timezone.now()
    new, superseded = [], []
    for asset, moment, kw in batch:
        existing = current.get((asset.pk, moment))
        if existing is not None and existing.kw == kw:
            continue
        if existing is not None:
            superseded.append(existing.pk)
        new.append(
            MeterReading(
                asset=asset,
                ptu_start=moment,
                kw=kw,
                source=source,
                upload=upload,
                version=existing.version + 1 if existing else 1,
                created_at=now,
            )
        )
        touched[asset.pk].add(moment.date())
    MeterReading.objects.filter(pk__in=superseded).update(superseded_at=now)
    MeterReading.objects.bulk_create(new, batch_size=BATCH)
    return len(new)


def readings_submit(*, actor: Actor, readings: list[dict]) -> MeterUpload:
    """API bulk submission: [{"asset_ean", "ptu_start", "kw"}, ...], validated like a CSV upload."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(METER_CSV_COLUMNS)
    for item in readings:
        writer.writerow([item.get("asset_ean", ""), item.get("ptu_start", ""), item.get("kw", "")])
    return meter_upload_csv(actor=actor, file=io.BytesIO(buffer.getvalue().encode()), filename="api")


def _queue_verifications(days) -> None:
    from settlement.tasks import verification_run_contract_task

    asset_ids = {asset_id for asset_id, _ in days}
    contracts = (
        Contract.objects.filter(state=Contract.State.ACTIVE)
        .filter(Q(offer__asset_id__in=asset_ids) | Q(offer__portfolio__assets__in=asset_ids))
        .values_list("pk", flat=True)
        .distinct()
    )
    for contract_id in contracts:
        verification_run_contract_task.delay(contract_id)


# --- D-prognosis ------------------------------------------------------------------------------------


@transaction.atomic
def prognosis_submit(
    *,
    actor: Actor,
    delivery_day: date,
    values_kw: list,
    asset: FlexAsset | None = None,
    portfolio: Portfolio | None = None,
    time_zone: str = "Europe/Amsterdam",
    now: datetime | None = None,
) -> Prognosis:
    """Nominate a baseline for a delivery day; frozen once the first gate closure of that day has passed."""
    now = now or timezone.now()
    backing = asset or portfolio
    if backing is None or backing.owner_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Submit prognoses for your own asset or portfolio.", field="asset")
    n = ptus.ptu_count(delivery_day, time_zone)
    try:
        values = [float(v) for v in values_kw]
    except (TypeError, ValueError):
        raise DomainError(Code.INVALID_PROGNOSIS, "Values must be numbers (kW).", field="values_kw")
    if len(values) != n or not all(np.isfinite(values)):
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"{delivery_day} has {n} PTUs: give {n} kW values.", field="values_kw"
        )
    first_gate = (
        MarketSession.objects.filter(delivery_day=delivery_day)
        .order_by("gate_closure")
        .values_list("gate_closure", flat=True)
        .first()
    )
    if first_gate is not None and first_gate <= now:
        local = first_gate.astimezone(ZoneInfo(time_zone))
        raise DomainError(
            Code.PROGNOSIS_FROZEN,
            f"Prognoses for {delivery_day} froze at gate closure ({local:%Y-%m-%d %H:%M %Z}).",
            field="delivery_day",
        )
    start, _ = ptus.day_bounds_utc(delivery_day, time_zone)
    lookup = {"asset": asset} if asset else {"portfolio": portfolio}
    prognosis, created = Prognosis.objects.update_or_create(
        delivery_day=delivery_day,
        **lookup,
        defaults={
            "owner": actor.organisation,
            "ptu_start": start,
            "values_kw": values,
            "submitted_by": actor.user,
            "submitted_at": now,
        },
    )
    audit_record(
        actor=actor,
        action="prognosis.submit" if created else "prognosis.replace",
        target=prognosis,
        after={"day": str(delivery_day)},
    )
    return prognosis


# --- delivery verification --------------------------------------------------------------------------


def _day_profile(series: dict[datetime, float], day: date, tz: str, *, event: bool) -> baselines.DayProfile:
    zone = ZoneInfo(tz)
    starts = ptus.ptu_starts(day, tz)
    values = np.array([series.get(s, np.nan) for s in starts])
    slots = np.array([s.astimezone(zone).hour * 60 + s.astimezone(zone).minute for s in starts])
    return baselines.DayProfile(day, values, slots, event, day.weekday() >= 5)


def _contract_assets(contract: Contract) -> list[FlexAsset]:
    offer = contract.offer
    return [offer.asset] if offer.asset_id else list(offer.portfolio.assets.all())


def verification_run(*, contract: Contract) -> DeliveryVerification:
    """Verify one contract (idempotent: unchanged inputs leave the stored result untouched)."""
    contract = Contract.objects.select_related(
        "product__market", "offer__asset", "offer__portfolio", "session"
    ).get(pk=contract.pk)
    product = contract.product
    tz = product.market.time_zone
    day = contract.session.delivery_day if contract.session else ptus.local_day_of(contract.ptu_start, tz)
    start, end = ptus.day_bounds_utc(day, tz)
    history_start = start - timedelta(days=HISTORY_DAYS)
    assets = _contract_assets(contract)
    asset_ids = [a.pk for a in assets]
    existing = DeliveryVerification.objects.filter(contract=contract).first()
    if existing is not None and existing.disputes.filter(state=Dispute.State.OPEN).exists():
        return existing
    fingerprint = hashlib.sha256(
        json.dumps(
            [str(x) for x in readings_fingerprint(asset_ids=asset_ids, start=history_start, end=end)]
            + [
                product.baseline_method,
                product.baseline_params,
                str(product.delivery_tolerance),
                contract.quantities_kw,
            ]
        ).encode()
    ).hexdigest()
    if existing is not None and existing.inputs_hash == fingerprint:
        return existing
    series = readings_series(asset_ids=asset_ids, start=history_start, end=end)
    event_days = _event_days(asset_ids, history_start, start, tz)
    n = int((end - start) / ptus.PTU)
    offset = int((contract.ptu_start - start) / ptus.PTU)
    contracted = np.zeros(n)
    contracted[offset : offset + len(contract.quantities_kw)] = contract.quantities_kw[: n - offset]
    event_mask = contracted > 0
    baseline_sum, metered_sum, complete, days_used, notes = np.zeros(n), np.zeros(n), True, set(), []
    for asset in assets:
        history = [
            _day_profile(
                series[asset.pk],
                day - timedelta(days=k),
                tz,
                event=(asset.pk, day - timedelta(days=k)) in event_days,
            )
            for k in range(1, HISTORY_DAYS + 1)
        ]
        target = _day_profile(series[asset.pk], day, tz, event=True)
        prognosis = (
            Prognosis.objects.filter(asset=asset, delivery_day=day)
            .values_list("values_kw", flat=True)
            .first()
        )
        result = baselines.compute_baseline(
            product.baseline_method,
            product.baseline_params,
            target=target,
            history=history,
            event_mask=event_mask,
            nominated=np.array(prognosis) if prognosis else None,
        )
        baseline_sum += result.values
        metered_sum += target.values
        complete &= result.complete
        days_used.update(str(d) for d in result.days_used)
        if result.note:
            notes.append(f"{asset.name}: {result.note}")
    outcome = baselines.verify_delivery(
        contract.direction, baseline_sum, metered_sum, contracted, tolerance=float(product.delivery_tolerance)
    )
    awaiting = (outcome.status == "awaiting_data").any() or not complete
    delivered_kwh = float(np.nansum(np.clip(outcome.delivered[event_mask], 0, None))) / 4
    to_list = lambda a: [None if not np.isfinite(v) else round(float(v), 3) for v in a]  # noqa: E731
    fields = {
        "state": DeliveryVerification.State.AWAITING_DATA
        if awaiting
        else DeliveryVerification.State.VERIFIED,
        "method": product.baseline_method,
        "params": product.baseline_params,
        "days_used": sorted(days_used),
        "baseline_kw": to_list(outcome.baseline),
        "metered_kw": to_list(outcome.metered),
        "delivered_kw": to_list(outcome.delivered),
        "ratio": to_list(outcome.ratio),
        "status": outcome.status.tolist(),
        "contracted_kwh": Decimal(str(round(float(contracted.sum()) / 4, 3))),
        "delivered_kwh": Decimal(str(round(delivered_kwh, 3))),
        "note": "; ".join(notes)[:300],
        "inputs_hash": fingerprint,
        "computed_at": timezone.now(),
    }
    verification, _ = DeliveryVerification.objects.update_or_create(contract=contract, defaults=fields)
    return verification


def _event_days(asset_ids, start, end, tz) -> set[tuple[int, date]]:
    days = set()
    for asset_id, portfolio_assets, ptu_start in Contract.objects.filter(
        Q(offer__asset_id__in=asset_ids) | Q(offer__portfolio__assets__in=asset_ids),
        ptu_start__gte=start,
        ptu_start__lt=end,
        state=Contract.State.ACTIVE,
    ).values_list("offer__asset_id", "offer__portfolio__assets", "ptu_start"):
        for asset in (asset_id, portfolio_assets):
            if asset:
                days.add((asset, ptus.local_day_of(ptu_start, tz)))
    return days


def verifications_run_due(*, now: datetime | None = None) -> int:
    """Safety net: verify active contracts of the last 7 days that are missing or awaiting data."""
    now = now or timezone.now()
    count = 0
    for contract in Contract.objects.filter(
        state=Contract.State.ACTIVE, ptu_start__lt=now, ptu_start__gte=now - timedelta(days=7)
    ).exclude(verification__state=DeliveryVerification.State.VERIFIED):
        verification_run(contract=contract)
        count += 1
    return count


@transaction.atomic
def dispute_open(*, actor: Actor, verification: DeliveryVerification, comment: str) -> Dispute:
    if verification.contract.seller_id != actor.organisation.pk:
        raise DomainError(Code.DISPUTE, "Only the seller disputes a verification result.")
    if not comment.strip():
        raise DomainError(Code.DISPUTE, "Explain what is wrong.", field="comment")
    if verification.disputes.filter(state=Dispute.State.OPEN).exists():
        raise DomainError(Code.DISPUTE, "A dispute is already open.")
    dispute = Dispute.objects.create(verification=verification, opened_by=actor.user, comment=comment.strip())
    DeliveryVerification.objects.filter(pk=verification.pk).update(state=DeliveryVerification.State.DISPUTED)
    audit_record(actor=actor, action="dispute.open", target=dispute, after={"comment": comment.strip()[:200]})
    return dispute


@transaction.atomic
def dispute_resolve(
    *, actor: Actor, dispute: Dispute, uphold: bool, resolution: str, accepted_delivered_kwh=None
) -> Dispute:
    """The FMO upholds (optionally with a corrected delivered energy) or rejects a dispute; audited."""
    if not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator resolves disputes.")
    if dispute.state != Dispute.State.OPEN:
        raise DomainError(Code.INVALID_STATE, "The dispute is already resolved.")
    if not resolution.strip():
        raise DomainError(Code.DISPUTE, "Give the resolution.", field="resolution")
    before = {"state": dispute.state, "delivered_kwh": str(dispute.verification.delivered_kwh)}
    dispute.state = Dispute.State.UPHELD if uphold else Dispute.State.REJECTED
    dispute.resolution, dispute.resolved_by, dispute.resolved_at = (
        resolution.strip(),
        actor.user,
        timezone.now(),
    )
    verification = dispute.verification
    if uphold and accepted_delivered_kwh is not None:
        dispute.accepted_delivered_kwh = Decimal(str(accepted_delivered_kwh))
        verification.delivered_kwh = dispute.accepted_delivered_kwh
    verification.state = DeliveryVerification.State.VERIFIED
    verification.save(update_fields=["state", "delivered_kwh"])
    dispute.save()
    audit_record(
        actor=actor,
        action="dispute.resolve",
        target=dispute,
        before=before,
        after={"state": dispute.state, "delivered_kwh": str(verification.delivered_kwh)},
        reason=resolution,
    )
    notify_organisation(
        organisation=verification.contract.seller,
        title=f"Dispute on {verification.contract.reference}: {dispute.get_state_display()}",
        body=resolution,
    )
    return dispute


# --- baseline accuracy ------------------------------------------------------------------------------

ACCURACY_METHODS = {
    "high_x_of_y": {"x": 5, "y": 10},
    "mid_x_of_y": {"x": 4, "y": 6},
    "high_x_of_y+additive": {"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
    "regression": {"y": 20},
}


def accuracy_compute(
    *, asset: FlexAsset, until: date, tz: str = "Europe/Amsterdam"
) -> list[BaselineAccuracy]:
    """Score each method on the asset's last 30 days without activation (an evening window is pretended)."""
    start, _ = ptus.day_bounds_utc(until - timedelta(days=HISTORY_DAYS + 20), tz)
    end, _ = ptus.day_bounds_utc(until, tz)
    series = readings_series(asset_ids=[asset.pk], start=start, end=end)[asset.pk]
    events = _event_days([asset.pk], start, end, tz)
    days = [
        _day_profile(
            series, until - timedelta(days=k), tz, event=(asset.pk, until - timedelta(days=k)) in events
        )
        for k in range(1, HISTORY_DAYS + 21)
    ]
    scores = baselines.score_methods(
        days, {name.split("+")[0]: params for name, params in ACCURACY_METHODS.items() if "+" not in name}
    )
    adjusted = baselines.score_methods(days, {"high_x_of_y": ACCURACY_METHODS["high_x_of_y+additive"]})[
        "high_x_of_y"
    ]
    scores["high_x_of_y+additive"] = adjusted
    rows = []
    for method, score in scores.items():
        row, _ = BaselineAccuracy.objects.update_or_create(
            asset=asset,
            method=method,
            defaults={
                "bias": score["bias"],
                "nmae": score["nmae"],
                "samples": score["n"],
                "computed_at": timezone.now(),
            },
        )
        rows.append(row)
    return rows


# --- settlement -------------------------------------------------------------------------------------


def _require_fmo(actor: Actor) -> None:
    if not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator runs settlement.")


@transaction.atomic
def period_create(*, actor: Actor, name: str, start: date, end: date) -> SettlementPeriod:
    _require_fmo(actor)
    if end < start:
        raise DomainError(Code.INVALID_PERIOD, "The period ends before it starts.", field="end")
    if SettlementPeriod.objects.filter(start__lte=end, end__gte=start).exists():
        raise DomainError(Code.INVALID_PERIOD, "The period overlaps another period.", field="start")
    period = SettlementPeriod.objects.create(name=name.strip() or f"{start}–{end}", start=start, end=end)
    audit_record(
        actor=actor,
        action="settlement.period_create",
        target=period,
        after={"start": str(start), "end": str(end)},
    )
    return period


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def settlement_lines(contract: Contract, verification: DeliveryVerification) -> dict[int, list[dict]]:
    """Statement lines per organisation for one verified contract (+ receives, − pays).

    Activation: each PTU pays price × min(delivered, contracted) energy; a PTU delivered within the product's
    tolerance pays the full contracted energy. Under-delivery below tolerance costs the seller
    price × penalty factor × undelivered energy, paid to the buyer. Availability products pay contracted MW ×
    0.25 h × price per PTU regardless of activation. The platform fee (EUR/MWh of contracted energy) is charged to
    buyer and seller each and credited to the FMO.
    """
    product = contract.product
    tolerance = float(product.delivery_tolerance)
    contracted = np.array(contract.quantities_kw, dtype=float)
    prices = np.array([float(p) for p in contract.prices])
    n = contracted.size
    start_index = int(
        (contract.ptu_start - (contract.session.delivery_start if contract.session else contract.ptu_start))
        / ptus.PTU
    )
    delivered = np.nan_to_num(
        np.array([np.nan if v is None else v for v in verification.delivered_kw], dtype=float)
    )[start_index : start_index + n]
    lines: dict[int, list[dict]] = defaultdict(list)
    energy_mwh = contracted / 4 / 1000
    if product.kind == product.Kind.AVAILABILITY:
        payment = float(np.sum(contracted / 1000 * 0.25 * prices))
        quantity = float(np.sum(contracted / 1000 * 0.25))
        lines[contract.seller_id].append(
            {
                "kind": "availability",
                "quantity": quantity,
                "unit_price": payment / quantity if quantity else 0,
                "amount": payment,
            }
        )
        lines[contract.buyer_id].append(
            {
                "kind": "availability",
                "quantity": quantity,
                "unit_price": payment / quantity if quantity else 0,
                "amount": -payment,
            }
        )
    else:
        ratio = np.where(contracted > 0, delivered / np.where(contracted > 0, contracted, 1), 0)
        within = ratio >= 1 - tolerance
        paid_kw = np.where(within, contracted, np.clip(delivered, 0, contracted))
        paid_mwh = paid_kw / 4 / 1000
        payment = float(np.sum(paid_mwh * prices))
        undelivered_mwh = np.where(
            within | (contracted == 0), 0, (contracted - np.clip(delivered, 0, contracted)) / 4 / 1000
        )
        penalty = float(np.sum(undelivered_mwh * prices)) * float(product.penalty_factor)
        quantity = float(paid_mwh.sum())
        unit = payment / quantity if quantity else 0
        lines[contract.seller_id].append(
            {"kind": "activation", "quantity": quantity, "unit_price": unit, "amount": payment}
        )
        lines[contract.buyer_id].append(
            {"kind": "activation", "quantity": quantity, "unit_price": unit, "amount": -payment}
        )
        if penalty > 0:
            under = float(undelivered_mwh.sum())
            lines[contract.seller_id].append(
                {"kind": "penalty", "quantity": under, "unit_price": penalty / under, "amount": -penalty}
            )
            lines[contract.buyer_id].append(
                {"kind": "penalty", "quantity": under, "unit_price": penalty / under, "amount": penalty}
            )
    fee_rate = float(product.fee_eur_per_mwh)
    fee = float(energy_mwh.sum()) * fee_rate
    if fee > 0:
        for organisation_id in (contract.seller_id, contract.buyer_id):
            lines[organisation_id].append(
                {"kind": "fee", "quantity": float(energy_mwh.sum()), "unit_price": fee_rate, "amount": -fee}
            )
        fmo = (
            Organisation.objects.filter(role_grants__role=Role.FMO, status=Organisation.Status.APPROVED)
            .order_by("pk")
            .first()
        )
        if fmo is not None:
            lines[fmo.pk].append(
                {
                    "kind": "fee",
                    "quantity": 2 * float(energy_mwh.sum()),
                    "unit_price": fee_rate,
                    "amount": 2 * fee,
                }
            )
    return lines


def _period_contracts(period: SettlementPeriod):
    return Contract.objects.filter(
        state__in=[Contract.State.ACTIVE, Contract.State.SETTLED],
        session__delivery_day__gte=period.start,
        session__delivery_day__lte=period.end,
    ).select_related("product", "session", "verification")


def _compute_totals(period: SettlementPeriod) -> tuple[dict[int, list[tuple]], int]:
    by_org: dict[int, list[tuple]] = defaultdict(list)
    pending = 0
    for contract in _period_contracts(period):
        verification = getattr(contract, "verification", None)
        if verification is None or verification.state != DeliveryVerification.State.VERIFIED:
            pending += 1
            continue
        if verification.disputes.filter(
            state=Dispute.State.UPHELD, accepted_delivered_kwh__isnull=False
        ).exists():
            # An upheld dispute fixes the delivered energy: spread it over the contracted PTUs pro rata.
            scale = float(verification.delivered_kwh) / float(verification.contracted_kwh or 1)
            verification.delivered_kw = [c * scale for c in _contracted_day(contract, verification)]
        for organisation_id, lines in settlement_lines(contract, verification).items():
            for line in lines:
                by_org[organisation_id].append((contract, line))
    return by_org, pending


def _contracted_day(contract: Contract, verification: DeliveryVerification) -> list[float]:
    n = len(verification.delivered_kw)
    values = [0.0] * n
    start_index = (
        int((contract.ptu_start - contract.session.delivery_start) / ptus.PTU) if contract.session else 0
    )
    for i, kw in enumerate(contract.quantities_kw):
        if 0 <= start_index + i < n:
            values[start_index + i] = kw
    return values


def _write_statement(period, organisation_id, entries, kind) -> SettlementStatement:
    statement = SettlementStatement.objects.create(period=period, organisation_id=organisation_id, kind=kind)
    total = Decimal("0")
    for contract, line in entries:
        amount = _money(line["amount"])
        StatementLine.objects.create(
            statement=statement,
            contract=contract,
            kind=line["kind"],
            description=f"{contract.reference} {line['kind']}" if contract else line["kind"],
            quantity=Decimal(str(round(line["quantity"], 4))),
            unit_price=Decimal(str(round(line["unit_price"], 4))),
            amount_eur=amount,
        )
        total += amount
    statement.total_eur = total
    statement.save(update_fields=["total_eur"])
    return statement


@transaction.atomic
def period_compute(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    """(Re)compute the regular statements of an unlocked period from the current verifications."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state == SettlementPeriod.State.LOCKED:
        raise DomainError(
            Code.PERIOD_LOCKED, f"{period} is locked; corrections go into an adjustment statement."
        )
    SettlementStatement.objects.filter(period=period).delete()
    by_org, pending = _compute_totals(period)
    for organisation_id, entries in by_org.items():
        _write_statement(period, organisation_id, entries, SettlementStatement.Kind.REGULAR)
    period.state, period.computed_at, period.pending_contracts = (
        SettlementPeriod.State.COMPUTED,
        timezone.now(),
        pending,
    )
    period.save(update_fields=["state", "computed_at", "pending_contracts"])
    audit_record(
        actor=actor,
        action="settlement.compute",
        target=period,
        after={"statements": len(by_org), "pending": pending},
    )
    return period


@transaction.atomic
def period_approve(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.COMPUTED:
        raise DomainError(Code.INVALID_STATE, "Compute the period before approving it.")
    period.state, period.approved_by, period.approved_at = (
        SettlementPeriod.State.APPROVED,
        actor.user,
        timezone.now(),
    )
    period.save(update_fields=["state", "approved_by", "approved_at"])
    audit_record(actor=actor, action="settlement.approve", target=period)
    return period


def _next_invoice_number(year: int) -> str:
    sequence, _ = InvoiceSequence.objects.select_for_update().get_or_create(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"FM-INV-{year}-{sequence.last:06d}"


@transaction.atomic
def period_lock(*, actor: Actor, period: SettlementPeriod) -> SettlementPeriod:
    """Lock an approved period and number its invoices (gapless per year); contracts become settled."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.APPROVED:
        raise DomainError(Code.INVALID_STATE, "Approve the period before locking it.")
    now = timezone.now()
    for statement in period.statements.filter(invoice__isnull=True).order_by("organisation__legal_name"):
        Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
        notify_organisation(
            organisation=statement.organisation,
            title=f"Settlement {period}: statement and invoice ready",
            link=f"/settlement/statements/{statement.pk}/",
            email=True,
        )
    _period_contracts(period).filter(verification__state=DeliveryVerification.State.VERIFIED).update(
        state=Contract.State.SETTLED
    )
    period.state, period.locked_at = SettlementPeriod.State.LOCKED, now
    period.save(update_fields=["state", "locked_at"])
    audit_record(actor=actor, action="settlement.lock", target=period)
    return period


@transaction.atomic
def period_adjust(*, actor: Actor, period: SettlementPeriod) -> list[SettlementStatement]:
    """Correct a locked period: per organisation, an adjustment statement with the difference to what was invoiced."""
    _require_fmo(actor)
    period = SettlementPeriod.objects.select_for_update().get(pk=period.pk)
    if period.state != SettlementPeriod.State.LOCKED:
        raise DomainError(Code.INVALID_STATE, "Only locked periods are adjusted; recompute an unlocked one.")
    by_org, _ = _compute_totals(period)
    invoiced = defaultdict(Decimal)
    for statement in period.statements.all():
        invoiced[statement.organisation_id] += statement.total_eur
    adjustments = []
    now = timezone.now()
    for organisation_id in set(by_org) | set(invoiced):
        fresh = sum((_money(line["amount"]) for _, line in by_org.get(organisation_id, [])), Decimal("0"))
        difference = fresh - invoiced[organisation_id]
        if difference:
            statement = SettlementStatement.objects.create(
                period=period,
                organisation_id=organisation_id,
                kind=SettlementStatement.Kind.ADJUSTMENT,
                total_eur=difference,
            )
            StatementLine.objects.create(
                statement=statement,
                kind=StatementLine.Kind.ACTIVATION,
                description="Correction after updated meter data or disputes",
                quantity=Decimal("1"),
                unit_price=difference,
                amount_eur=difference,
            )
            Invoice.objects.create(statement=statement, number=_next_invoice_number(now.year), issued_at=now)
            adjustments.append(statement)
    audit_record(
        actor=actor, action="settlement.adjust", target=period, after={"adjustments": len(adjustments)}
    )
    return adjustments


def prognoses_import_csv(*, actor: Actor, file, time_zone: str = "Europe/Amsterdam") -> list[Prognosis]:
    """CSV `asset_ean,delivery_day,values_kw` (values separated by spaces or semicolons); all or nothing."""
    reader = csv.DictReader(io.TextIOWrapper(file, encoding="utf-8-sig", newline=""))
    if not {"asset_ean", "delivery_day", "values_kw"} <= set(reader.fieldnames or []):
        raise DomainError(
            Code.INVALID_FILE, "The first line must be: asset_ean,delivery_day,values_kw.", field="file"
        )
    assets = {a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)}
    created, errors = [], []
    with transaction.atomic():
        for number, row in enumerate(reader, start=2):
            asset = assets.get((row.get("asset_ean") or "").strip())
            try:
                if asset is None:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "Unknown asset, or not yours.", field="asset_ean"
                    )
                try:
                    day = date.fromisoformat((row.get("delivery_day") or "").strip())
                except ValueError:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "delivery_day is YYYY-MM-DD.", field="delivery_day"
                    )
                values = (row.get("values_kw") or "").replace(";", " ").split()
                with transaction.atomic():
                    created.append(
                        prognosis_submit(
                            actor=actor, asset=asset, delivery_day=day, values_kw=values, time_zone=time_zone
                        )
                    )
            except DomainError as error:
                errors.append({"row": number, "field": error.field, "message": error.message})
        if errors:
            transaction.set_rollback(True)
    if errors:
        raise ValidationErrors(
            Code.INVALID_PROGNOSIS, f"{len(errors)} row(s) are invalid; nothing was saved.", errors
        )
    return created
