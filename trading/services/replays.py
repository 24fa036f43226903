"""What-if replays of cleared sessions (FLEXGRID AFAT-RQT_05): re-clear in a sandbox, compare side by side.

A replay re-clears the gate-closure orders of a cleared auction session twice on a worker: once as the stored
run cleared them (the baseline, which must reproduce the stored run: `reproduced`) and once with the changes
asked for (pricing rule, zones removed, a price cap on offers). It writes no contracts and changes no order;
its summaries (welfare, volume, buyers' cost, prices per zone and PTU) are stored on the replay.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np
from django.db import transaction

from accounts.context import Actor
from accounts.models import Role
from accounts.services import audit_record
from flexmarket import runs
from flexmarket.errors import DomainError
from grid.models import GridLocation
from trading.clearing.auction import AuctionResult, Trades, clear_auction
from trading.clearing.replay import CENT, ReplayChanges, apply_changes, summarise
from trading.errors import TradingErrorCode as Code
from trading.models import ClearingReplay, ClearingRun, FlexOffer, FlexRequest, MarketSession, Product
from trading.services.auction import _load
from trading.services.grid_safety import auction_grid_check
from trading.services.limits import max_price

PRICING_RULES = ("uniform", "pay_as_bid")
REPLAYABLE = (MarketSession.State.CLEARED, MarketSession.State.SETTLED)


def _session_zone_ids(session: MarketSession) -> set[int]:
    ids = set(FlexOffer.objects.filter(session=session).values_list("grid_location_id", flat=True))
    return ids | set(FlexRequest.objects.filter(session=session).values_list("grid_location_id", flat=True))


def _clean_price_cap(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        cap = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DomainError(Code.INVALID_PRICE, "The price cap must be a number (EUR/MWh).", field="price_cap")
    if not cap.is_finite() or cap < 0 or cap > max_price():
        raise DomainError(
            Code.INVALID_PRICE,
            f"The price cap must be between 0 and {max_price()} EUR/MWh.",
            field="price_cap",
        )
    return cap.quantize(Decimal("0.0001"))


@transaction.atomic
def replay_request(
    *,
    actor: Actor,
    session: MarketSession,
    pricing_rule: str | None = None,
    removed_zone_ids: list[int] | None = None,
    price_cap=None,
    network: str | None = None,
) -> ClearingReplay:
    """Queue a replay of a cleared auction session (the market operator or a DSO). Bad input writes nothing.

    network: "as_cleared" (default), "on" (clear on the DSO's network, priced at the D-LMP) or "off" (zone by
    zone, without the network). On the network, the pricing rule is the D-LMP and no price cap applies."""
    if not ((actor.is_fmo and not actor.on_behalf) or actor.has_role(Role.DSO)):
        raise DomainError(Code.ROLE, "Only the market operator or a DSO replays a clearing.")
    if session.product.clearing_rule == Product.ClearingRule.CONTINUOUS:
        raise DomainError(Code.INVALID_STATE, "A continuous session has no gate-closure clearing to replay.")
    network = network or ClearingReplay.Network.AS_CLEARED
    if network not in ClearingReplay.Network.values:
        raise DomainError(
            Code.INVALID_STATE,
            f"Network must be one of {', '.join(ClearingReplay.Network.values)}.",
            field="network",
        )
    on_network = network == ClearingReplay.Network.ON or (
        network == ClearingReplay.Network.AS_CLEARED and session.product.network_aware
    )
    if on_network and price_cap not in (None, ""):
        raise DomainError(
            Code.INVALID_STATE,
            "A replay on the network prices at the D-LMP: a price cap does not apply (choose network off).",
            field="price_cap",
        )
    if on_network and pricing_rule not in (None, "", "dlmp"):
        raise DomainError(
            Code.INVALID_STATE,
            "A replay on the network prices at the D-LMP: choose network off for another pricing rule.",
            field="pricing_rule",
        )
    base = ClearingRun.objects.filter(
        session=session, is_current=True, state=ClearingRun.State.SUCCEEDED
    ).first()
    if session.state not in REPLAYABLE or base is None:
        raise DomainError(
            Code.INVALID_STATE,
            f"The session is {session.get_state_display().lower()}; only a cleared session can be replayed.",
        )
    if on_network:
        pricing_rule = "dlmp"
    elif not pricing_rule:
        pricing_rule = base.pricing_rule if base.pricing_rule in PRICING_RULES else "uniform"
    if pricing_rule not in PRICING_RULES and not on_network:
        raise DomainError(
            Code.INVALID_STATE,
            f"Pricing rule must be one of {', '.join(PRICING_RULES)}.",
            field="pricing_rule",
        )
    removed = sorted({int(z) for z in removed_zone_ids or []})
    unknown = set(removed) - _session_zone_ids(session)
    if unknown:
        raise DomainError(
            Code.WRONG_ZONE,
            f"Zone(s) {', '.join(map(str, sorted(unknown)))} have no orders in this session.",
            field="removed_zones",
        )
    replay = ClearingReplay.objects.create(
        session=session,
        base_run=base,
        organisation=actor.organisation,
        requested_by=actor.user,
        pricing_rule=pricing_rule,
        network=network,
        price_cap=_clean_price_cap(price_cap),
    )
    replay.removed_zones.set(GridLocation.objects.filter(pk__in=removed))
    audit_record(
        actor=actor,
        action="session.replay_request",
        target=session,
        after={
            "replay": replay.pk,
            "pricing_rule": pricing_rule,
            "network": network,
            "removed_zones": removed,
            "price_cap": str(replay.price_cap) if replay.price_cap is not None else None,
        },
    )
    from trading.tasks import clearing_replay_task

    runs.run_enqueue_on_commit(replay, task=clearing_replay_task, refuse_when_unavailable=True)
    return replay


def replay_execute(*, run_id: int) -> ClearingReplay | None:
    """Compute a queued replay under a lease; a failure is recorded on the replay. Idempotent."""
    return runs.run_execute(ClearingReplay, pk=run_id, work=_replay_compute)


def replays_sweep() -> runs.SweepReport:
    """Re-send or fail replays that lost their worker or their message (beat, every minute)."""
    from trading.tasks import clearing_replay_task

    return runs.run_sweep(ClearingReplay, task=clearing_replay_task)


def _reproduces(summary: dict, run: ClearingRun) -> bool:
    """The unchanged re-clearing equals the stored run: welfare to the cent, volume to the Wh, prices."""
    if (
        run.objective is not None
        and abs(Decimal(summary["welfare_eur"]) - Decimal(repr(run.objective))) > CENT
    ):
        return False
    if abs(Decimal(repr(summary["volume_kwh"])) - run.cleared_volume_kwh) > Decimal("0.001"):
        return False
    return all(
        summary["zones"].get(zone, {}).get("prices") == prices for zone, prices in (run.prices or {}).items()
    )


def _network_result(session, orders, offers, requests, zones, removed: set[int]) -> AuctionResult:
    """The session's orders (those of removed zones left out) cleared on the DSO's network, shaped as the auction
    engine's result over `orders` so one summary reads both: trades priced at their offer's bus D-LMP, a zone's
    price per PTU the average its trades paid there (None where it has none)."""
    from trading.services.network_clearing import NetworkClearingError, network_clear

    kept_offers = [o for o in offers if zones.index(o.grid_location_id) not in removed]
    kept_requests = [r for r in requests if zones.index(r.grid_location_id) not in removed]
    try:
        outcome = network_clear(session=session, offers=kept_offers, requests=kept_requests, excluded=[])
    except NetworkClearingError as error:
        raise RuntimeError(f"The network clearing cannot run: {error}") from error
    trades = outcome.result.trades
    offer_index = {o.pk: i for i, o in enumerate(offers)}
    request_index = {r.pk: i for i, r in enumerate(requests)}
    mapped = Trades(
        request_idx=np.array(
            [request_index[outcome.requests[i].pk] for i in trades.request_idx.tolist()], int
        ),
        offer_idx=np.array([offer_index[outcome.offers[i].pk] for i in trades.offer_idx.tolist()], int),
        ptu=np.asarray(trades.ptu, int),
        kw=np.asarray(trades.kw, float),
        price=np.asarray(trades.price, float),
    )
    paid = np.zeros((len(zones), orders.n_ptus))
    volume = np.zeros((len(zones), orders.n_ptus))
    zone_of_trade = orders.offer_zone[mapped.offer_idx] if len(mapped.kw) else np.zeros(0, int)
    np.add.at(paid, (zone_of_trade, mapped.ptu), mapped.kw * mapped.price)
    np.add.at(volume, (zone_of_trade, mapped.ptu), mapped.kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        zone_price = np.where(volume > 1e-9, paid / np.where(volume > 1e-9, volume, 1), np.nan)
    offer_alloc = np.zeros((orders.n_offers, orders.n_ptus))
    np.add.at(offer_alloc, (mapped.offer_idx, mapped.ptu), mapped.kw)
    request_alloc = np.zeros((orders.n_requests, orders.n_ptus))
    np.add.at(request_alloc, (mapped.request_idx, mapped.ptu), mapped.kw)
    return AuctionResult(
        status=outcome.result.status,
        objective=float(outcome.result.welfare),
        offer_alloc=offer_alloc,
        request_alloc=request_alloc,
        zone_price=zone_price,
        trades=mapped,
    )


def _replay_compute(replay: ClearingReplay) -> dict:
    session = MarketSession.objects.select_related("product__market").get(pk=replay.session_id)
    base = replay.base_run
    product = session.product
    # A scratch run object: _load notes exclusions on it, and the base run must stay as stored.
    orders, offers, requests, zones = _load(
        session, ClearingRun(), exclusions={entry["order"] for entry in base.excluded}
    )
    limits = {
        "time_limit": float(product.solver_time_limit_seconds),
        "mip_gap": float(product.solver_mip_gap),
    }
    removed = {zones.index(z) for z in replay.removed_zones.values_list("pk", flat=True) if z in zones}
    on_network = replay.network == ClearingReplay.Network.ON or (
        replay.network == ClearingReplay.Network.AS_CLEARED and product.network_aware
    )
    if product.network_aware:
        baseline = _network_result(session, orders, offers, requests, zones, set())
    else:
        baseline = clear_auction(orders, pricing=base.pricing_rule or "uniform", **limits)
        if base.grid_safety:  # as it was cleared: with the grid-safety check of plain auctions
            baseline, _ = auction_grid_check(
                session=session, offers=offers, requests=requests, result=baseline
            )
    changed_orders = orders
    if on_network:
        result = _network_result(session, orders, offers, requests, zones, removed)
    else:
        changes = ReplayChanges(
            pricing=replay.pricing_rule,
            removed_zones=frozenset(removed),
            price_cap=float(replay.price_cap) if replay.price_cap is not None else None,
        )
        changed = apply_changes(orders, changes)
        changed_orders = changed.orders
        result = clear_auction(changed.orders, pricing=changes.pricing, **limits)
    for outcome in (baseline, result):
        if outcome.status not in ("optimal", "time_limit"):
            raise RuntimeError(f"Solver status {outcome.status}")
    baseline_summary = summarise(orders, baseline, zones)
    result_summary = summarise(changed_orders, result, zones)
    result_summary["network"] = on_network
    baseline_summary["network"] = bool(product.network_aware)
    for zone in removed:
        result_summary["zones"][str(zones[zone])]["removed"] = True
    result_summary["offers_left_out"] = int(orders.n_offers - changed_orders.n_offers)
    result_summary["requests_left_out"] = int(orders.n_requests - changed_orders.n_requests)
    return {
        "baseline": baseline_summary,
        "result": result_summary,
        "reproduced": _reproduces(baseline_summary, base),
    }


def replay_zone_rows(replay: ClearingReplay, names: dict[int, str]) -> list[dict]:
    """Per zone, the baseline and the replay side by side, for pages (zones known to the viewer by name)."""
    rows = []
    base_zones = (replay.baseline or {}).get("zones", {})
    for zone, after in sorted((replay.result or {}).get("zones", {}).items(), key=lambda item: int(item[0])):
        before = base_zones.get(zone, {})
        rows.append(
            {
                "zone": names.get(int(zone), f"Zone {zone}"),
                "removed": after.get("removed", False),
                "before": before,
                "after": after,
                "volume_change": round(after["volume_kwh"] - before.get("volume_kwh", 0.0), 3),
                "prices_differ": not np.array_equal(
                    np.array(before.get("prices", []), dtype=float),
                    np.array(after["prices"], dtype=float),
                    equal_nan=True,
                ),
            }
        )
    return rows
