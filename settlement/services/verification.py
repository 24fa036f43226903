"""Delivery verification per contract against the product's baseline, disputes, baseline accuracy."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import holidays
import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.models import Notification
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from grid.models import FlexAsset
from settlement import baselines
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Dispute,
    Prognosis,
)
from settlement.selectors import (
    readings_fingerprint,
    readings_series,
    temperatures_fingerprint,
    temperatures_series,
)
from trading.models import Contract, Market

HISTORY_DAYS = 30  # local calendar days before the delivery day
RESOLUTION_KW = 3  # decimals kept for baseline, metered and delivered kW (the meter's resolution)
# Contracts whose results settlement pays; a correction re-verifies them whatever the period's state.
VERIFIABLE_STATES = [Contract.State.ACTIVE, Contract.State.SETTLED]


# --- delivery verification --------------------------------------------------------------------------


def non_working_days(market: Market | None, first: date, last: date) -> set[date]:
    """Public holidays of the market's calendar (the `holidays` package) between `first` and `last`."""
    if market is None or not market.holiday_country:
        return set()
    calendar = holidays.country_holidays(
        market.holiday_country,
        subdiv=market.holiday_subdivision or None,
        years=range(first.year, last.year + 1),
    )
    return {day for day in calendar if first <= day <= last}


def _day_values(series: dict[datetime, float], day: date, tz: str) -> tuple[np.ndarray, np.ndarray]:
    starts = ptus.ptu_starts(day, tz)
    return np.array([series.get(s, np.nan) for s in starts]), baselines.day_slot_minutes(day, tz)


def _profiles(
    series: dict[datetime, float],
    days: list[date],
    tz: str,
    *,
    event_days: set[date],
    non_working: set[date],
    temperatures: dict[datetime, float] | None = None,
) -> dict[date, baselines.DayProfile]:
    """One profile per local day, each with the previous and the next day's values (midnight windows) and, when
    given, the zone's temperature per PTU (NaN where none)."""
    values = {}
    for day in [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]:
        values[day] = _day_values(series, day, tz)
    per_day = None if temperatures is None else {day: _day_values(temperatures, day, tz)[0] for day in days}
    return profiles_from_values(
        values, days, event_days=event_days, non_working=non_working, temperatures=per_day
    )


def profiles_from_values(
    values: dict[date, tuple[np.ndarray, np.ndarray]],
    days: list[date],
    *,
    event_days: set[date],
    non_working: set[date],
    temperatures: dict[date, np.ndarray] | None = None,
) -> dict[date, baselines.DayProfile]:
    """Profiles of `days` from each day's (values, slot minutes), `values` holding one day more on each side,
    and each day's zone temperature per PTU when given."""
    profiles = {}
    for day in days:
        day_values, slots = values[day]
        profiles[day] = baselines.DayProfile(
            day,
            day_values,
            slots,
            is_event_day=day in event_days,
            is_weekend=day.weekday() >= 5 or day in non_working,
            before=values[day - timedelta(days=1)][0],
            after=values[day + timedelta(days=1)][0],
            temperatures=None if temperatures is None else temperatures[day],
        )
    return profiles


def _zone_temperatures(asset: FlexAsset, days: list[date], tz: str) -> dict[datetime, float] | None:
    """The asset's zone temperatures for every PTU of `days`; None if the asset has no zone."""
    if asset.grid_location_id is None:
        return None
    starts = [start for day in days for start in ptus.ptu_starts(day, tz)]
    return temperatures_series(grid_location_id=asset.grid_location_id, starts=starts)


def _contract_assets(contract: Contract) -> list[FlexAsset]:
    offer = contract.offer
    return [offer.asset] if offer.asset_id else list(offer.portfolio.assets.order_by("pk"))


def _prognoses(contract: Contract, day: date, asset_ids: list[int]) -> tuple[list | None, dict[int, list]]:
    """The portfolio's D-prognosis (a portfolio contract), and each asset's."""
    portfolio = None
    if contract.offer.portfolio_id:
        portfolio = (
            Prognosis.objects.filter(portfolio_id=contract.offer.portfolio_id, delivery_day=day)
            .values_list("values_kw", flat=True)
            .first()
        )
    per_asset = dict(
        Prognosis.objects.filter(asset_id__in=asset_ids, delivery_day=day).values_list(
            "asset_id", "values_kw"
        )
    )
    return portfolio, per_asset


def _frozen_by_dispute(verification: DeliveryVerification | None) -> bool:
    """An open dispute holds the result; a resolved one makes it final until the FMO reopens the dispute."""
    return verification is not None and verification.disputes.exists()


@dataclass(frozen=True)
class Window:
    """What a contract's verification reads: its local delivery day and the readings in [load_start, load_end)."""

    day: date
    start: datetime  # the delivery day, UTC
    end: datetime
    first_day: date  # the oldest history day
    load_start: datetime
    load_end: datetime
    contract_end: datetime
    delivery_over: bool

    @property
    def history(self) -> list[date]:
        """The history days and the delivery day, oldest first."""
        return [self.first_day + timedelta(days=k) for k in range(HISTORY_DAYS + 1)]


def contract_window(contract: Contract, tz: str, now: datetime) -> Window:
    """The local delivery day, the readings the verification reads (30 history days, one day more on each side
    for midnight windows, only PTUs that have passed), and whether the delivery is over."""
    day = contract.session.delivery_day if contract.session else ptus.local_day_of(contract.ptu_start, tz)
    start, end = ptus.day_bounds_utc(day, tz)
    first_day = day - timedelta(days=HISTORY_DAYS)
    load_start = ptus.day_bounds_utc(first_day - timedelta(days=1), tz)[0]
    load_end = min(ptus.day_bounds_utc(day + timedelta(days=1), tz)[1], ptus.floor_to_ptu(now))
    delivered_ptus = [i for i, kw in enumerate(contract.quantities_kw) if kw]
    contract_end = contract.ptu_start + (delivered_ptus[-1] + 1 if delivered_ptus else 0) * ptus.PTU
    return Window(day, start, end, first_day, load_start, load_end, contract_end, now >= contract_end)


def readings_digest(versions: np.ndarray) -> str:
    """Digest of an asset's readings over a contract's window: the version of the current reading of each PTU
    (0 = none), so a new or corrected reading changes it."""
    return hashlib.sha256(np.ascontiguousarray(versions, dtype="<i4").tobytes()).hexdigest()


def inputs_fingerprint(
    *,
    contract: Contract,
    window: Window,
    asset_ids: list[int],
    digests: list[str],
    event_days: set[tuple[int, date]],
    non_working: set[date],
    portfolio_prognosis,
    asset_prognoses: dict[int, list],
    weather: list | None = None,
) -> str:
    """What a result depends on; `weather` (the zone temperatures' versions) only for the temperature method."""
    product = contract.product
    return hashlib.sha256(
        json.dumps(
            [
                window.load_start.isoformat(),
                window.load_end.isoformat(),
                digests,
                asset_ids,
                product.baseline_method,
                product.baseline_params,
                str(product.delivery_tolerance),
                contract.quantities_kw,
                sorted(f"{a}:{d}" for a, d in event_days),
                sorted(str(d) for d in non_working),
                portfolio_prognosis,
                sorted(asset_prognoses.items()),
                window.delivery_over,
            ]
            + ([] if weather is None else [weather])
        ).encode()
    ).hexdigest()


def _weather_fingerprint(assets: list[FlexAsset], window: Window) -> list:
    zone_ids = sorted({a.grid_location_id for a in assets if a.grid_location_id})
    return [
        [
            zone_id,
            *(
                str(x)
                for x in temperatures_fingerprint(
                    grid_location_id=zone_id, start=window.load_start, end=window.load_end
                )
            ),
        ]
        for zone_id in zone_ids
    ]


def contracted_profile(contract: Contract, window: Window) -> np.ndarray:
    n = int((window.end - window.start) / ptus.PTU)
    offset = int((contract.ptu_start - window.start) / ptus.PTU)
    contracted = np.zeros(n)
    contracted[offset : offset + len(contract.quantities_kw)] = contract.quantities_kw[: n - offset]
    return contracted


def verification_fields(
    *,
    contract: Contract,
    window: Window,
    contracted: np.ndarray,
    asset_names: list[str],
    metered: list[np.ndarray],
    results: list[baselines.BaselineResult | None],
    portfolio_prognosis,
    fingerprint: str,
    computed_at: datetime,
) -> dict:
    """The stored result of a contract from each asset's metered day and baseline (None: the portfolio's own
    D-prognosis is the baseline). Shared by the per-contract and the batch path, so both store the same."""
    product = contract.product
    n = contracted.size
    event_mask = contracted > 0
    nominated_whole = product.baseline_method == "nominated" and portfolio_prognosis is not None
    baseline_sum, metered_sum, complete, days_used, notes = np.zeros(n), np.zeros(n), True, set(), []
    for name, values, result in zip(asset_names, metered, results, strict=True):
        metered_sum += values
        if nominated_whole:
            continue
        baseline_sum += result.values
        complete &= result.complete
        days_used.update(str(d) for d in result.days_used)
        if result.note:
            notes.append(f"{name}: {result.note}")
    if nominated_whole:
        # A portfolio's own D-prognosis is the baseline of the whole portfolio (UFTP D-prognosis per congestion
        # point); the members' individual prognoses are then not used.
        values = np.array(portfolio_prognosis, dtype=float)
        if values.size == n:
            baseline_sum = values
            complete = bool(np.isfinite(values).all())
        else:
            baseline_sum, complete = np.full(n, np.nan), False
            notes.append("the portfolio's D-prognosis does not have one value per PTU")
    if not window.delivery_over:
        notes.insert(0, f"the delivery is not over until {window.contract_end.isoformat()}")
    outcome = baselines.verify_delivery(
        contract.direction,
        np.round(baseline_sum, RESOLUTION_KW),
        np.round(metered_sum, RESOLUTION_KW),
        contracted,
        tolerance=float(product.delivery_tolerance),
    )
    awaiting = (outcome.status == "awaiting_data").any() or not complete or not window.delivery_over
    delivered_kw = _to_list(outcome.delivered)
    delivered_kwh = None
    if not awaiting:
        energy = sum(
            (max(Decimal(str(delivered_kw[i])), Decimal(0)) for i in np.flatnonzero(event_mask)), Decimal(0)
        )
        delivered_kwh = (energy / 4).quantize(Decimal("0.001"))
    return {
        "state": DeliveryVerification.State.AWAITING_DATA
        if awaiting
        else DeliveryVerification.State.VERIFIED,
        "method": product.baseline_method,
        "params": product.baseline_params,
        "days_used": sorted(days_used),
        "baseline_kw": _to_list(outcome.baseline),
        "metered_kw": _to_list(outcome.metered),
        "delivered_kw": delivered_kw,
        "ratio": _to_list(outcome.ratio),
        "status": outcome.status.tolist(),
        "contracted_kwh": (sum((Decimal(str(q)) for q in contract.quantities_kw), Decimal(0)) / 4).quantize(
            Decimal("0.001")
        ),
        "delivered_kwh": delivered_kwh,
        "note": "; ".join(notes)[:300],
        "inputs_hash": fingerprint,
        "computed_at": computed_at,
    }


def _to_list(values: np.ndarray) -> list:
    """kW to three decimals (Python's correctly rounded `round`), None where not a number; on plain floats,
    not numpy scalars (a tenth of a batch's time went to per-element numpy calls)."""
    return [round(v, 3) if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


def verification_run(
    *, contract: Contract, now: datetime | None = None, force: bool = False
) -> DeliveryVerification:
    """Verify one contract (idempotent: unchanged inputs leave the stored result untouched).

    Readings count only once their PTU has passed (`now`), so a delivery that has not happened yet is never
    verified. A result with a dispute is not recomputed (`force` is for the FMO's ruling). Runs and uploads verify
    in batches (`verifications_compute`), which store exactly what this function stores.
    """
    now = now or timezone.now()
    contract = Contract.objects.select_related(
        "product__market", "offer__asset", "offer__portfolio", "session"
    ).get(pk=contract.pk)
    existing = DeliveryVerification.objects.filter(contract=contract).first()
    if not force and _frozen_by_dispute(existing):
        return existing
    product = contract.product
    market = product.market
    tz = market.time_zone
    window = contract_window(contract, tz, now)
    day = window.day
    assets = _contract_assets(contract)
    asset_ids = [a.pk for a in assets]
    event_days = _event_days(asset_ids, window.load_start, window.start, tz)
    non_working = non_working_days(market, window.first_day - timedelta(days=1), day + timedelta(days=1))
    portfolio_prognosis, asset_prognoses = _prognoses(contract, day, asset_ids)
    uses_temperatures = product.baseline_method == "temperature"
    width = int((window.load_end - window.load_start) / ptus.PTU)
    versions = {asset_id: np.zeros(max(width, 0), dtype=np.int32) for asset_id in asset_ids}
    for asset_id, moment, version in readings_fingerprint(
        asset_ids=asset_ids, start=window.load_start, end=window.load_end
    ):
        offset = (moment - window.load_start) / ptus.PTU
        if offset == int(offset):
            versions[asset_id][int(offset)] = version
    fingerprint = inputs_fingerprint(
        contract=contract,
        window=window,
        asset_ids=asset_ids,
        digests=[readings_digest(versions[a]) for a in asset_ids],
        event_days=event_days,
        non_working=non_working,
        portfolio_prognosis=portfolio_prognosis,
        asset_prognoses=asset_prognoses,
        weather=_weather_fingerprint(assets, window) if uses_temperatures else None,
    )
    if existing is not None and existing.inputs_hash == fingerprint and not force:
        return existing
    series = readings_series(asset_ids=asset_ids, start=window.load_start, end=window.load_end)
    days = window.history
    contracted = contracted_profile(contract, window)
    nominated_whole = product.baseline_method == "nominated" and portfolio_prognosis is not None
    metered, results = [], []
    for asset in assets:
        profiles = _profiles(
            series[asset.pk],
            days,
            tz,
            event_days={d for a, d in event_days if a == asset.pk},
            non_working=non_working,
            temperatures=_zone_temperatures(asset, days, tz) if uses_temperatures else None,
        )
        target = profiles[day]
        metered.append(target.values)
        if nominated_whole:
            results.append(None)
            continue
        prognosis = asset_prognoses.get(asset.pk)
        results.append(
            baselines.compute_baseline(
                product.baseline_method,
                product.baseline_params,
                target=target,
                history=[profiles[d] for d in days[:-1]],
                event_mask=contracted > 0,
                nominated=np.array(prognosis, dtype=float) if prognosis else None,
            )
        )
    fields = verification_fields(
        contract=contract,
        window=window,
        contracted=contracted,
        asset_names=[a.name for a in assets],
        metered=metered,
        results=results,
        portfolio_prognosis=portfolio_prognosis,
        fingerprint=fingerprint,
        computed_at=timezone.now(),
    )
    verification, _ = DeliveryVerification.objects.update_or_create(contract=contract, defaults=fields)
    return verification


def _event_days(asset_ids, start, end, tz) -> set[tuple[int, date]]:
    """(asset, local day) of every contract on the assets, whatever the contract's state: once a contract was
    made for a day, that day may hold an activation and never returns to the baseline history."""
    days = set()
    for asset_id, portfolio_assets, ptu_start in Contract.objects.filter(
        Q(offer__asset_id__in=asset_ids) | Q(offer__portfolio__assets__in=asset_ids),
        ptu_start__gte=start,
        ptu_start__lt=end,
    ).values_list("offer__asset_id", "offer__portfolio__assets", "ptu_start"):
        for asset in (asset_id, portfolio_assets):
            if asset:
                days.add((asset, ptus.local_day_of(ptu_start, tz)))
    return days


@transaction.atomic
def dispute_open(*, actor: Actor, verification: DeliveryVerification, comment: str) -> Dispute:
    """The seller disputes a verified result; once a dispute was resolved only the FMO reopens it."""
    verification = DeliveryVerification.objects.select_for_update().get(pk=verification.pk)
    if verification.contract.seller_id != actor.organisation.pk:
        raise DomainError(Code.DISPUTE, "Only the seller disputes a verification result.")
    if not comment.strip():
        raise DomainError(Code.DISPUTE, "Explain what is wrong.", field="comment")
    if verification.disputes.filter(state=Dispute.State.OPEN).exists():
        raise DomainError(Code.DISPUTE, "A dispute is already open.")
    if verification.disputes.exists():
        raise DomainError(
            Code.DISPUTE, "The dispute on this result was resolved; only the market operator can reopen it."
        )
    if verification.state != DeliveryVerification.State.VERIFIED:
        raise DomainError(Code.DISPUTE, "Only a verified result can be disputed; this one awaits data.")
    dispute = Dispute.objects.create(verification=verification, opened_by=actor.user, comment=comment.strip())
    DeliveryVerification.objects.filter(pk=verification.pk).update(state=DeliveryVerification.State.DISPUTED)
    audit_record(actor=actor, action="dispute.open", target=dispute, after={"comment": comment.strip()[:200]})
    return dispute


def _require_operator(actor: Actor, what: str) -> None:
    if not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, f"Only the market operator {what}.")


@transaction.atomic
def dispute_resolve(
    *,
    actor: Actor,
    dispute: Dispute,
    uphold: bool,
    resolution: str,
    accepted_delivered_kwh=None,
    now: datetime | None = None,
) -> Dispute:
    """The FMO rules on an open dispute (audited): the result is recomputed from the current data, and an upheld
    dispute may set the accepted delivered energy. The ruling is final unless the FMO reopens the dispute."""
    _require_operator(actor, "resolves disputes")
    dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if dispute.state != Dispute.State.OPEN:
        raise DomainError(Code.INVALID_STATE, "The dispute is already resolved.")
    if not resolution.strip():
        raise DomainError(Code.DISPUTE, "Give the resolution.", field="resolution")
    accepted = None
    if uphold and accepted_delivered_kwh not in (None, ""):
        try:
            accepted = Decimal(str(accepted_delivered_kwh)).quantize(Decimal("0.001"))
        except ArithmeticError:
            raise DomainError(
                Code.DISPUTE, "Give the accepted energy in kWh.", field="accepted_delivered_kwh"
            )
        if not accepted.is_finite() or accepted < 0 or accepted >= Decimal("1e11"):
            raise DomainError(
                Code.DISPUTE, "The accepted energy is a non-negative kWh.", field="accepted_delivered_kwh"
            )
    verification = dispute.verification
    before = {
        "state": dispute.state,
        "delivered_kwh": None if verification.delivered_kwh is None else str(verification.delivered_kwh),
    }
    verification = verification_run(contract=verification.contract, now=now, force=True)
    dispute.state = Dispute.State.UPHELD if uphold else Dispute.State.REJECTED
    dispute.resolution, dispute.resolved_by, dispute.resolved_at = (
        resolution.strip(),
        actor.user,
        timezone.now(),
    )
    dispute.accepted_delivered_kwh = accepted
    if accepted is not None:
        verification.delivered_kwh = accepted
        verification.state = DeliveryVerification.State.VERIFIED
        verification.save(update_fields=["state", "delivered_kwh"])
    dispute.save()
    audit_record(
        actor=actor,
        action="dispute.resolve",
        target=dispute,
        before=before,
        after={
            "state": dispute.state,
            "delivered_kwh": None if verification.delivered_kwh is None else str(verification.delivered_kwh),
        },
        reason=resolution,
    )
    notify_organisation(
        category=Notification.Category.SETTLEMENT,
        organisation=verification.contract.seller,
        title=f"Dispute on {verification.contract.reference}: {dispute.get_state_display()}",
        body=resolution,
    )
    return dispute


@transaction.atomic
def dispute_reopen(*, actor: Actor, dispute: Dispute, reason: str) -> Dispute:
    """The FMO reopens a resolved dispute (audited): the result is held again until a new ruling."""
    _require_operator(actor, "reopens disputes")
    dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if dispute.state == Dispute.State.OPEN:
        raise DomainError(Code.INVALID_STATE, "The dispute is open.")
    if not reason.strip():
        raise DomainError(Code.DISPUTE, "Give the reason for reopening.", field="reason")
    before = {
        "state": dispute.state,
        "resolution": dispute.resolution,
        "accepted_delivered_kwh": None
        if dispute.accepted_delivered_kwh is None
        else str(dispute.accepted_delivered_kwh),
    }
    dispute.state = Dispute.State.OPEN
    dispute.save(update_fields=["state"])
    DeliveryVerification.objects.filter(pk=dispute.verification_id).update(
        state=DeliveryVerification.State.DISPUTED
    )
    audit_record(
        actor=actor,
        action="dispute.reopen",
        target=dispute,
        before=before,
        after={"state": dispute.state},
        reason=reason.strip(),
    )
    notify_organisation(
        category=Notification.Category.SETTLEMENT,
        organisation=dispute.verification.contract.seller,
        title=f"Dispute on {dispute.verification.contract.reference} reopened",
        body=reason.strip(),
    )
    return dispute


# --- baseline accuracy ------------------------------------------------------------------------------

ACCURACY_METHODS = {
    "high_x_of_y": {"x": 5, "y": 10},
    "mid_x_of_y": {"x": 4, "y": 6},
    "high_x_of_y+additive": {"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2},
    "regression": {"y": 20},
    "temperature": {"y": 30},  # scored only for assets whose zone has temperatures
}


def accuracy_compute(
    *, asset: FlexAsset, until: date, tz: str = "Europe/Amsterdam"
) -> list[BaselineAccuracy]:
    """Score each method on the asset's last 30 days without activation (an evening window is pretended)."""
    first = until - timedelta(days=HISTORY_DAYS + 20)
    start, _ = ptus.day_bounds_utc(first - timedelta(days=1), tz)
    end, _ = ptus.day_bounds_utc(until + timedelta(days=1), tz)
    series = readings_series(asset_ids=[asset.pk], start=start, end=end)[asset.pk]
    events = {d for _, d in _event_days([asset.pk], start, end, tz)}
    days = [until - timedelta(days=k) for k in range(HISTORY_DAYS + 20, 0, -1)]
    temperatures = _zone_temperatures(asset, days, tz)
    profiles = _profiles(
        series, days, tz, event_days=events, non_working=set(), temperatures=temperatures or None
    )
    scored = [profiles[d] for d in reversed(days)]
    methods = {name: params for name, params in ACCURACY_METHODS.items() if "+" not in name}
    if not temperatures:
        methods.pop("temperature")
        BaselineAccuracy.objects.filter(asset=asset, method="temperature").delete()
    scores = baselines.score_methods(scored, methods)
    adjusted = baselines.score_methods(scored, {"high_x_of_y": ACCURACY_METHODS["high_x_of_y+additive"]})[
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


ACCURACY_TIME_ZONE = "Europe/Amsterdam"  # the demo market's; assets carry no time zone of their own


def accuracy_compute_due(*, now: datetime | None = None, tz: str = ACCURACY_TIME_ZONE) -> list[int]:
    """Scheduled scoring (beat, daily): every active asset with readings in the scoring window whose scores were
    not yet computed since local midnight is scored up to yesterday. Idempotent: a second run the same day
    scores nothing; the scores are upserts either way. Returns the ids of the assets scored."""
    now = now or timezone.now()
    today = ptus.local_day_of(now, tz)
    midnight, _ = ptus.day_bounds_utc(today, tz)
    window_start, _ = ptus.day_bounds_utc(today - timedelta(days=HISTORY_DAYS + 20), tz)
    with_readings = (
        FlexAsset.objects.filter(
            archived_at__isnull=True,
            # Day rows of the UTC days the window touches: an asset whose only readings lie just outside the
            # window on its first or last UTC day is scored too (on the readings it has).
            meter_days__superseded_at__isnull=True,
            meter_days__day__gte=window_start.astimezone(ptus.UTC).date(),
            meter_days__day__lte=(midnight - timedelta(microseconds=1)).astimezone(ptus.UTC).date(),
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    done_today = BaselineAccuracy.objects.filter(computed_at__gte=midnight).values_list("asset_id", flat=True)
    scored = []
    for asset in FlexAsset.objects.filter(pk__in=with_readings).exclude(pk__in=done_today).order_by("pk"):
        with transaction.atomic():
            accuracy_compute(asset=asset, until=today, tz=tz)
        scored.append(asset.pk)
    return scored
