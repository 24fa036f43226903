"""Delivery verification per contract against the product's baseline, disputes, baseline accuracy."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from flexmarket.isolation import isolated
from grid.models import FlexAsset
from settlement import baselines
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Dispute,
    Prognosis,
)
from settlement.selectors import readings_fingerprint, readings_series
from trading.models import Contract

HISTORY_DAYS = 30


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
        # One contract that cannot be verified is recorded as a TaskFailure; the others are still verified.
        with isolated("settlement.verifications_run_due", contract) as outcome:
            verification_run(contract=contract)
        count += 0 if outcome.failed else 1
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
