"""Gate-closure auction: claim a session under a lease, clear it with the engine, write contracts exactly once.

Life of a clearing (docs/operations.md, "Clearing runs"):
1. Claim, in one short transaction with the session row locked: the session goes closed -> clearing (or
   cleared -> clearing for the FMO's re-run) and a ClearingRun starts `running` with a lease. A running run
   whose lease has expired (its worker died) is failed visibly and the claim is taken over.
2. Load the orders as they stood at gate closure (`gate_remaining_kw`), leaving out orders that cannot be
   cleared (validity ended, asset suspended, quantities or prices outside what the market can hold), each with
   its reason, so one bad order never stops the others. Solve, outside any transaction, within the product's
   solver time limit and MIP gap.
3. Write, in one transaction with the session row locked, only if the run still holds its claim: contracts,
   order states, the capacity ledger, the run's result; the session becomes cleared. A re-run first supersedes
   the contracts of the auction it replaces and never touches trades made continuously before gate closure.
Any exception fails the run with its message and returns the session to where the claim found it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.context import SYSTEM, Actor
from accounts.models import Notification
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.bulk import insert_rows
from flexmarket.errors import DomainError
from trading.clearing.auction import AuctionOrders, clear_auction
from trading.clearing.prices import price_decimal
from trading.errors import TradingErrorCode as Code
from trading.models import (
    ClearingRun,
    ClearingRunNetwork,
    Contract,
    FlexOffer,
    FlexRequest,
    MarketSession,
    OrderState,
    Product,
)
from trading.services.capacity import LedgerChanges, ledger_resync
from trading.services.grid_safety import auction_grid_check, notify_curtailed
from trading.services.matching import rows_tradable
from trading.services.network_clearing import network_clear

# What an order may hold and still be cleared: beyond this it is left out with a reason (the door should
# already have refused it; this is the clearing's own guard).
MAX_CLEARABLE_KW = 1e7
MAX_CLEARABLE_PRICE = Decimal("1000000")


# --- claim and lease --------------------------------------------------------------------------------


def clearing_lease(product: Product) -> timedelta:
    """How long a claim holds: the solver's time limit plus a margin for loading and writing (a setting)."""
    return timedelta(seconds=product.solver_time_limit_seconds + settings.CLEARING_LEASE_MARGIN_SECONDS)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _fail_run(run: ClearingRun, error: str, *, now: datetime) -> None:
    """Fail a running run (under the session lock) and give the session back to where its claim found it."""
    ClearingRun.objects.filter(pk=run.pk, state=ClearingRun.State.RUNNING).update(
        state=ClearingRun.State.FAILED, error=error[:5000], finished_at=now, lease_expires_at=None
    )
    back = MarketSession.State.CLEARED if run.is_rerun else MarketSession.State.CLOSED
    MarketSession.objects.filter(pk=run.session_id, state=MarketSession.State.CLEARING).update(state=back)
    audit_record(
        actor=SYSTEM,
        action="session.clear_failed",
        target=run.session,
        after={"run": run.pk, "error": error[:300]},
    )


def orders_snapshot_at_gate(session: MarketSession) -> None:
    """Record what each open order holds at gate closure: the auction (and any re-run) clears exactly that."""
    for model in (FlexOffer, FlexRequest):
        model.objects.filter(
            session=session,
            state__in=[OrderState.ACTIVE, OrderState.PARTIALLY_FILLED],
            gate_remaining_kw__isnull=True,
        ).update(gate_remaining_kw=F("remaining_kw"))


def _claim(
    session: MarketSession, actor: Actor, rerun: bool, now: datetime
) -> tuple[ClearingRun | None, bool]:
    """(run, claimed): a new running run we own, or the run that stands (someone else's, or finished)."""
    with transaction.atomic():
        session = (
            MarketSession.objects.select_for_update(of=("self",))
            .select_related("product__market")
            .get(pk=session.pk)
        )
        running = ClearingRun.objects.filter(session=session, state=ClearingRun.State.RUNNING).first()
        if running is not None:
            if running.lease_expires_at and running.lease_expires_at > now:
                return running, False
            _fail_run(
                running,
                f"Lease expired at {running.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC: the worker "
                f"{running.worker or '(unknown)'} stopped before finishing; taken over.",
                now=now,
            )
            session.refresh_from_db()
        from_state = MarketSession.State.CLEARED if rerun else MarketSession.State.CLOSED
        if session.state != from_state:
            return ClearingRun.objects.filter(session=session).order_by("-created_at", "-pk").first(), False
        if (
            rerun
            and Contract.objects.filter(
                session=session, clearing_run__isnull=False, state=Contract.State.SETTLED
            ).exists()
        ):
            raise DomainError(
                Code.INVALID_STATE, "The session's auction contracts are settled; it cannot be re-run."
            )
        product = session.product
        run = ClearingRun.objects.create(
            session=session,
            state=ClearingRun.State.RUNNING,
            is_rerun=rerun,
            pricing_rule="dlmp"
            if product.network_aware
            else "pay_as_bid"
            if product.clearing_rule == Product.ClearingRule.AUCTION_PAY_AS_BID
            else "uniform",
            triggered_by=actor.user,
            claimed_at=now,
            lease_expires_at=now + clearing_lease(product),
            worker=_worker_name(),
        )
        if not rerun:
            orders_snapshot_at_gate(session)
        session.state = MarketSession.State.CLEARING
        session.save(update_fields=["state"])
        return run, True


def session_clear(
    *, session: MarketSession, actor: Actor, rerun: bool = False, now: datetime | None = None
) -> ClearingRun:
    """Clear an auction session exactly once (or re-run it: FMO only). Returns the run that stands.

    A second delivery of the task finds the claim held (lease valid) or the session cleared and returns that run.
    """
    if rerun and not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator re-runs a clearing.")
    now = now or timezone.now()
    run, claimed = _claim(session, actor, rerun, now)
    if run is None:
        raise DomainError(
            Code.INVALID_STATE,
            f"The session is {session.get_state_display().lower()}; it cannot be cleared now.",
        )
    if not claimed:
        return run
    try:
        _clear(run=run, actor=actor)
    except Exception as error:  # every failure is recorded on the run; the session can be cleared again
        with transaction.atomic():
            MarketSession.objects.select_for_update().filter(pk=run.session_id).first()
            _fail_run(run, f"{type(error).__name__}: {error}", now=timezone.now())
    run.refresh_from_db()
    return run


def clearing_runs_sweep(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Beat: fail runs whose lease expired, and list auction sessions that wait to be cleared.

    Returns {"failed": run ids, "to_clear": session ids}; the task queues the clearing of each session.
    A session waits when it is closed past its gate closure with no running run (its clearing task was lost,
    or its last run failed).
    """
    now = now or timezone.now()
    failed = []
    for run in ClearingRun.objects.filter(state=ClearingRun.State.RUNNING, lease_expires_at__lte=now):
        with transaction.atomic():
            MarketSession.objects.select_for_update().filter(pk=run.session_id).first()
            run.refresh_from_db()
            if run.state != ClearingRun.State.RUNNING or run.lease_expires_at > now:
                continue
            _fail_run(
                run,
                f"Lease expired at {run.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC: the worker {run.worker or '(unknown)'} "
                "stopped before finishing; the session is queued again.",
                now=now,
            )
            failed.append(run.pk)
    waiting = list(
        MarketSession.objects.filter(state=MarketSession.State.CLOSED, gate_closure__lte=now)
        .exclude(product__clearing_rule=Product.ClearingRule.CONTINUOUS)
        .values_list("pk", flat=True)
    )
    return {"failed": failed, "to_clear": waiting}


# --- loading the orders as they stood at gate closure -----------------------------------------------


def _clearable(values, price, n_ptus: int, offset: int) -> str:
    """Why an order cannot enter the clearing ('' when it can)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return "quantities are not numbers"
    if array.ndim != 1 or array.size == 0 or offset < 0 or offset + array.size > n_ptus:
        return "PTUs outside the delivery day"
    if not np.all(np.isfinite(array)) or (array < 0).any() or (array > MAX_CLEARABLE_KW).any():
        return f"quantities outside 0..{MAX_CLEARABLE_KW:g} kW"
    if price is None or not price.is_finite() or price < 0 or price > MAX_CLEARABLE_PRICE:
        return "price outside what the market can hold"
    return ""


# What the clearing reads of each order (requests add is_tso; offers what the ledger and tradability need).
ORDER_FIELDS = (
    "pk",
    "owner_id",
    "grid_location_id",
    "direction",
    "ptu_start",
    "price",
    "valid_until",
    "state",
    "created_at",
)
OFFER_FIELDS = (
    "min_quantity_kw",
    "all_or_nothing",
    "min_consecutive_ptus",
    "max_consecutive_ptus",
    "tso_eligible",
    "asset_id",
    "portfolio_id",
    "availability_agreement_id",
    "member_allocation",
    "q_min_kvar",
    "q_max_kvar",
    "q_price",
    "asset__prequalification",
    "asset__grid_location_id",
    "asset__archived_at",
)


# Quantities are read as text and parsed here: an order's remaining is most often its gate-closure remaining
# (parsed once), and its quantities are parsed only if read (portfolio offers and re-runs read them).
ORDER_TEXTS = {
    name: Cast(field, output_field=TextField())
    for name, field in (
        ("quantities_text", "quantities_kw"),
        ("remaining_text", "remaining_kw"),
        ("gate_text", "gate_remaining_kw"),
    )
}


class _OrderRow(SimpleNamespace):
    """An order as the clearing reads it: attribute access like a model instance, without building one."""

    def __getattr__(self, name: str):
        if name != "quantities_kw":
            raise AttributeError(name)
        self.quantities_kw = json.loads(self.quantities_text)
        return self.quantities_kw


def _row(values: dict) -> _OrderRow:
    gate_text, remaining_text = values.pop("gate_text"), values.pop("remaining_text")
    gate = json.loads(gate_text)
    remaining = list(gate) if remaining_text == gate_text else json.loads(remaining_text)
    return _OrderRow(**values, gate_remaining_kw=gate, remaining_kw=remaining)


def _offsets(orders, session: MarketSession) -> np.ndarray:
    """Each order's first PTU as an index into the session's delivery day."""
    return np.array(
        [int((order.ptu_start - session.delivery_start) / ptus.PTU) for order in orders], dtype=np.int64
    )


def _gate(order) -> list:
    return order.gate_remaining_kw


def _open_before(order) -> list[float]:
    """What the order held open just before this clearing: its remaining while still open (first run only)."""
    if order.state in (OrderState.ACTIVE, OrderState.PARTIALLY_FILLED):
        return order.remaining_kw
    return []


def _in_frame(orders, session: MarketSession, n_ptus: int, values_of) -> np.ndarray:
    """One row per order, one column per PTU of the session: `values_of(order)` placed at the order's PTUs (a
    row that does not fit the day stays zero: such orders are left out before the clearing)."""
    result = np.zeros((len(orders), n_ptus))
    for i, (order, offset) in enumerate(zip(orders, _offsets(orders, session).tolist(), strict=True)):
        values = values_of(order)
        if offset >= 0 and offset + len(values) <= n_ptus:
            result[i, offset : offset + len(values)] = values
    return result


def _load(
    session: MarketSession,
    run: ClearingRun,
    *,
    exclusions: set[str] | None = None,
    open_in_zone: int | None = None,
):
    """Orders open at gate closure, each either cleared or excluded with its reason.

    `exclusions` ("offer:12", ...): leave out exactly these instead of judging each order now (a replay
    clears what its base run cleared, even if an asset has been suspended since).
    `open_in_zone` (a grid location id): instead, the zone's orders open now, with what they hold now, as if
    the gate closed at this moment (the indicative price).
    """
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    excluded: list[dict] = []

    def keep(kind: str, order) -> bool:
        if exclusions is not None:
            return f"{kind}:{order.pk}" not in exclusions
        offset = int((order.ptu_start - session.delivery_start) / ptus.PTU)
        reason = _clearable(order.gate_remaining_kw, order.price, n_ptus, offset)
        if not reason and order.valid_until is not None and order.valid_until <= session.gate_closure:
            reason = "validity ended before gate closure"
        if not reason and kind == "offer" and order.pk not in tradable:
            reason = "the asset (or a portfolio member) is no longer approved by the DSO"
        if reason:
            excluded.append({"order": f"{kind}:{order.pk}", "reason": reason})
        return not reason

    scope, texts = Q(gate_remaining_kw__isnull=False), ORDER_TEXTS
    if open_in_zone is not None:
        scope = Q(grid_location_id=open_in_zone, state__in=[OrderState.ACTIVE, OrderState.PARTIALLY_FILLED])
        texts = {**ORDER_TEXTS, "gate_text": ORDER_TEXTS["remaining_text"]}
    # Plain rows, not model instances: at 10,000 offers building instances cost more than the solver's build.
    offer_rows = list(
        FlexOffer.objects.filter(scope, session=session)
        .order_by("created_at", "pk")
        .values(*ORDER_FIELDS, *OFFER_FIELDS, **texts)
    )
    tradable = {row["pk"] for row in rows_tradable(offer_rows)}
    offers = [o for o in map(_row, offer_rows) if keep("offer", o)]
    requests = [
        r
        for r in map(
            _row,
            FlexRequest.objects.filter(scope, session=session)
            .order_by("created_at", "pk")
            .values(*ORDER_FIELDS, "is_tso", **texts),
        )
        if keep("request", r)
    ]
    zones = sorted({o.grid_location_id for o in offers} | {r.grid_location_id for r in requests})
    zone_index = {zone: i for i, zone in enumerate(zones)}

    orders = AuctionOrders(
        n_ptus=n_ptus,
        n_zones=max(len(zones), 1),
        offer_zone=np.array([zone_index[o.grid_location_id] for o in offers], dtype=int),
        offer_qty=_in_frame(offers, session, n_ptus, _gate),
        offer_min=np.array([float(o.min_quantity_kw) for o in offers]),
        offer_price=np.array([float(o.price) for o in offers]),
        offer_block=np.array([bool(o.all_or_nothing) for o in offers], dtype=bool),
        request_zone=np.array([zone_index[r.grid_location_id] for r in requests], dtype=int),
        request_qty=_in_frame(requests, session, n_ptus, _gate),
        request_price=np.array([float(r.price) for r in requests]),
        offer_min_consecutive=np.array([o.min_consecutive_ptus or 1 for o in offers], dtype=int),
        offer_max_consecutive=np.array([o.max_consecutive_ptus or 0 for o in offers], dtype=int),
        request_tso=np.array([bool(r.is_tso) for r in requests], dtype=bool),
        offer_tso_eligible=np.array([bool(o.tso_eligible) for o in offers], dtype=bool),
    )
    run.excluded = excluded
    return orders, offers, requests, zones


# A page view waits for the indicative price: the solver gets at most this long (seconds). A result is reused
# while the zone's open orders stay as they were (count and last change per side), for at most this long: what
# the key cannot see (an asset suspended since) shows within a minute.
INDICATIVE_TIME_LIMIT = 5.0
INDICATIVE_CACHE_SECONDS = 60


def _open_orders_stamp(session: MarketSession, grid_location_id: int) -> tuple:
    """(count, last change) of the zone's open offers and requests in the session: changes with every order
    submitted, matched, cancelled or expired (each write sets updated_at)."""
    return tuple(
        tuple(
            model.objects.filter(
                session=session,
                grid_location_id=grid_location_id,
                state__in=[OrderState.ACTIVE, OrderState.PARTIALLY_FILLED],
            )
            .aggregate(n=Count("pk"), last=Max("updated_at"))
            .values()
        )
        for model in (FlexOffer, FlexRequest)
    )


def session_indicative_prices(*, session: MarketSession, grid_location_id: int) -> list[Decimal | None]:
    """The uniform price per PTU the auction would set in one zone if the gate closed now: the zone's open orders
    as they stand, loaded and cleared exactly as at gate closure, nothing written (None: nothing would clear).

    Without a network the zones clear independently (one balance per zone and PTU), so the zone's own orders
    give the zone's price; for a network-aware product this is the zonal price without the network.
    """
    stamp = hashlib.sha256(repr(_open_orders_stamp(session, grid_location_id)).encode()).hexdigest()[:24]
    key = f"indicative:{session.pk}:{session.delivery_start:%Y%m%d%H%M}:{grid_location_id}:{stamp}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    prices: list[Decimal | None] = [None] * n_ptus
    orders, _offers, _requests, zones = _load(
        session, SimpleNamespace(excluded=[]), open_in_zone=grid_location_id
    )
    if grid_location_id in zones and orders.n_offers and orders.n_requests:
        product = session.product
        result = clear_auction(
            orders,
            time_limit=min(float(product.solver_time_limit_seconds), INDICATIVE_TIME_LIMIT),
            mip_gap=float(product.solver_mip_gap),
        )
        if result.status in ("optimal", "time_limit"):
            row = result.zone_price[zones.index(grid_location_id)]
            prices = [None if np.isnan(v) else price_decimal(v) for v in row]
    cache.set(key, prices, INDICATIVE_CACHE_SECONDS)
    return prices


def _clear(*, run: ClearingRun, actor: Actor) -> None:
    session = MarketSession.objects.select_related("product__market").get(pk=run.session_id)
    product = session.product
    if product.network_aware:
        _clear_network(run=run, actor=actor, session=session)
        return
    timings: dict[str, float] = {}
    started = time.perf_counter()
    orders, offers, requests, zones = _load(session, run)
    timings["load"] = time.perf_counter() - started
    result = clear_auction(
        orders,
        pricing=run.pricing_rule,
        time_limit=float(product.solver_time_limit_seconds),
        mip_gap=float(product.solver_mip_gap),
    )
    timings["build"] = result.timings.get("build", 0.0)
    timings["solve"] = result.timings.get("solve", 0.0)
    timings["prices"] = result.timings.get("prices", 0.0) + result.timings.get("decompose", 0.0)
    if result.status not in ("optimal", "time_limit"):
        raise RuntimeError(f"Solver status {result.status}")
    # GOPACS' grid-safety check (docs/network.md): every cleared trade on its offer's DSO network, curtailed
    # where it would create or worsen congestion.
    started = time.perf_counter()
    result, run.grid_safety = auction_grid_check(
        session=session, offers=offers, requests=requests, result=result
    )
    timings["grid_safety"] = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic():
        MarketSession.objects.select_for_update().get(pk=session.pk)
        current = ClearingRun.objects.select_for_update().get(pk=run.pk)
        if current.state != ClearingRun.State.RUNNING:
            # The lease expired and the sweep (or another worker) took over: write nothing.
            return
        created = _write(run=run, session=session, result=result, offers=offers, requests=requests)
        notify_curtailed(session=session, offers=offers, requests=requests, record=run.grid_safety)
        prices = {}
        for zone, i in zip(zones, range(len(zones)), strict=True):
            row = result.zone_price[i]
            if np.isfinite(row).any():
                prices[str(zone)] = [None if np.isnan(v) else round(float(v), 4) for v in row]
        timings["write"] = time.perf_counter() - started
        _succeed(
            run=run, actor=actor, session=session, result=result, objective=result.objective, created=created,
            counts=(len(offers), len(requests)), prices=prices, timings=timings,
        )  # fmt: skip


def _succeed(*, run, actor, session, result, objective, created, counts, prices, timings, audit=None) -> None:
    """Inside the write transaction: the run becomes the session's current, succeeded run; the session is cleared,
    audited, and its parties told. One path for the plain and the network-aware clearing."""
    ClearingRun.objects.filter(session=session, is_current=True).update(is_current=False)
    run.state = ClearingRun.State.SUCCEEDED
    run.is_current = True
    run.solver = result.solver
    run.solver_status = result.status
    run.objective = objective
    run.timings = {k: round(v, 4) for k, v in timings.items()}
    run.offer_count, run.request_count = counts
    run.cleared_volume_kwh = Decimal(repr(round(float(result.offer_alloc.sum()) / 4, 3)))
    run.prices = prices
    run.finished_at = timezone.now()
    run.lease_expires_at = None
    run.save()
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARED)
    audit_record(
        actor=actor,
        action="session.rerun" if run.is_rerun else "session.clear",
        target=session,
        after={
            "run": run.pk,
            "status": result.status,
            "objective": objective,
            "contracts": len(created),
            "excluded": len(run.excluded),
            **(audit or {}),
        },
    )
    _notify(session, created)


def _clear_network(*, run: ClearingRun, actor: Actor, session: MarketSession) -> None:
    """A network-aware product's clearing (trading/services/network_clearing.py), written like `_clear`'s: the
    same contracts, order states and ledger, with the network, point, LMPs and flows stored on the run."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    _orders, offers, requests, _zones = _load(session, run)
    timings["load"] = time.perf_counter() - started
    excluded = list(run.excluded)
    outcome = network_clear(session=session, offers=offers, requests=requests, excluded=excluded)
    run.excluded = excluded
    timings.update(outcome.timings)
    result = outcome.result
    started = time.perf_counter()
    with transaction.atomic():
        MarketSession.objects.select_for_update().get(pk=session.pk)
        current = ClearingRun.objects.select_for_update().get(pk=run.pk)
        if current.state != ClearingRun.State.RUNNING:
            return
        created = _write(
            run=run, session=session, result=result, offers=outcome.offers, requests=outcome.requests
        )
        if outcome.stored is not None:
            ClearingRunNetwork.objects.create(run=run, **outcome.stored)
        timings["write"] = time.perf_counter() - started
        _succeed(
            run=run, actor=actor, session=session, result=result, objective=result.welfare, created=created,
            counts=(len(outcome.offers), len(outcome.requests)), prices={}, timings=timings,
            audit={"network_model": outcome.stored["network_model"].pk if outcome.stored else None},
        )  # fmt: skip


# --- writing the result -----------------------------------------------------------------------------


def _write(*, run, session, result, offers, requests) -> list[ContractRow]:
    ledger = LedgerChanges()
    offer_by_id = {o.pk: o for o in offers}
    if run.is_rerun:
        old = list(
            Contract.objects.filter(
                session=session, clearing_run__isnull=False, state=Contract.State.ACTIVE
            ).select_related("offer")
        )
        for contract in old:
            ledger.contract_released(contract, offer_by_id.get(contract.offer_id, contract.offer))
        Contract.objects.filter(pk__in=[c.pk for c in old]).update(state=Contract.State.SUPERSEDED)
    excluded = {entry["order"]: entry["reason"] for entry in run.excluded}
    resync = _reject_excluded(session, excluded)
    rows, pair_offer, bought = _contracts(
        run=run, session=session, result=result, offers=offers, requests=requests
    )
    # COPY on PostgreSQL from plain rows: no model instances, no ids read back (nothing below needs them).
    insert_rows(Contract, CONTRACT_COLUMNS, rows)
    n = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    # What each offer holds changes by (what its contracts bought) - (what it held open before): one net change
    # per offer and PTU in the session's frame, summed as arrays. Portfolio offers split each contract over their
    # members the way a later release of that contract will (per contract), so the ledger returns to zero exactly.
    held = -_in_frame(offers, session, n, _open_before)
    has_asset = np.array([bool(o.asset_id) for o in offers], dtype=bool)
    single = np.array([bool(o.asset_id) and not o.availability_agreement_id for o in offers], dtype=bool)
    by_asset = has_asset[pair_offer] if pair_offer.size else np.zeros(0, dtype=bool)
    np.add.at(held, pair_offer[by_asset], bought[by_asset])
    for o, quantities in zip(pair_offer[~by_asset].tolist(), bought[~by_asset], strict=True):
        ledger.offer(offers[o], quantities, start=session.delivery_start)
    for i in np.flatnonzero(~has_asset).tolist():
        ledger.offer(offers[i], held[i], start=session.delivery_start)
    ledger.add_arrays(
        asset_ids=np.array([o.asset_id or 0 for o in offers], dtype=np.int64)[single],
        directions=[o.direction for o, keep in zip(offers, single.tolist(), strict=True) if keep],
        start=session.delivery_start,
        kw=held[single],
    )
    reactive = getattr(result, "offer_reactive_kvar", None)
    for model, orders, alloc, kvar in (
        (FlexOffer, offers, result.offer_alloc, reactive),
        (FlexRequest, requests, result.request_alloc, None),
    ):
        _bulk_set_orders(model, _order_updates(orders, session, n, alloc, reactive_kvar=kvar))
    ledger.write()
    # Offers left out may hold quantities that cannot be read: their assets' rows are rebuilt from the result.
    ledger_resync(asset_ids=resync)
    return rows


def _order_updates(orders, session, n: int, alloc: np.ndarray, reactive_kvar=None) -> list[tuple]:
    """(pk, state read, remaining, new state, reason) per order after the clearing: what is left of its
    gate-closure quantities (three decimals, on the order's own PTUs), filled or expired; an offer whose reactive
    range alone cleared (`reactive_kvar`, network-aware sessions) says so."""
    gate = _in_frame(orders, session, n, _gate)
    remaining = np.round(np.maximum(gate - alloc, 0), 3)
    updates = []
    for i, (order, offset) in enumerate(zip(orders, _offsets(orders, session).tolist(), strict=True)):
        size = len(order.gate_remaining_kw)
        window = slice(offset, offset + size)
        if offset + size <= n:
            left, cleared = remaining[i, window], alloc[i, window]
        else:
            gate_kw = np.asarray(order.gate_remaining_kw, dtype=float)
            left, cleared = np.round(np.maximum(gate_kw, 0), 3), np.zeros(size)
        if left.sum() <= 1e-6:
            state, reason = OrderState.FILLED, ""
        elif cleared.sum() > 1e-6:
            state, reason = (
                OrderState.EXPIRED,
                f"Partly cleared ({cleared.sum() / 4:g} kWh); the rest expired at gate closure",
            )
        elif reactive_kvar is not None and np.abs(reactive_kvar[i]).sum() > 0:
            kvarh = float(np.abs(reactive_kvar[i]).sum()) / 4
            state, reason = (
                OrderState.EXPIRED,
                f"Only its reactive range cleared ({kvarh:g} kVArh); its kW expired",
            )
        else:
            state, reason = OrderState.EXPIRED, "Not cleared at gate closure"
        updates.append((order.pk, order.state, left.tolist(), state, reason))
    return updates


def _reject_excluded(session, excluded: dict[str, str]) -> set[int]:
    """Reject the orders the clearing left out; returns the assets whose ledger rows must be rebuilt."""
    assets: set[int] = set()
    for model, kind in ((FlexOffer, "offer"), (FlexRequest, "request")):
        ids = [int(key.split(":")[1]) for key in excluded if key.startswith(f"{kind}:")]
        if not ids:
            continue
        rows = []
        for order in model.objects.filter(pk__in=ids):
            if model is FlexOffer:
                assets |= (
                    {order.asset_id}
                    if order.asset_id
                    else set(order.portfolio.assets.values_list("pk", flat=True))
                )
            reason = f"Left out of the clearing: {excluded[f'{kind}:{order.pk}']}"
            rows.append((order.pk, order.state, order.remaining_kw, OrderState.REJECTED, reason[:300]))
        _bulk_set_orders(model, rows)
    return assets


def _bulk_set_orders(model, rows: list[tuple]) -> None:
    """Set remaining_kw, state and reason of many orders in one statement, each only if its state is still the
    one read (pk, expected state, remaining, new state, reason); any other count fails the whole write."""
    if not rows:
        return
    table = model._meta.db_table
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Five array parameters, whatever the number of rows: no statement text grows with the result.
        ids, expected, remaining, states, reasons = (list(column) for column in zip(*rows, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET remaining_kw = v.remaining::jsonb, state = v.state, "
                f"state_reason = v.reason, updated_at = %s "
                f"FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[]) "
                f"AS v(id, expected, remaining, state, reason) "
                f"WHERE t.id = v.id AND t.state = v.expected",
                [now, ids, expected, [json.dumps(r) for r in remaining], states, reasons],
            )
            if cursor.rowcount != len(rows):
                raise RuntimeError(
                    f"{len(rows) - cursor.rowcount} {table} row(s) changed during the clearing"
                )
        return
    for pk, expected, remaining, state, reason in rows:
        changed = model.objects.filter(pk=pk, state=expected).update(
            remaining_kw=remaining, state=state, state_reason=reason, updated_at=now
        )
        if changed != 1:
            raise RuntimeError(f"{model.__name__} {pk} changed during the clearing")


CONTRACT_COLUMNS = (
    "reference",
    "session_id",
    "clearing_run_id",
    "request_id",
    "offer_id",
    "buyer_id",
    "seller_id",
    "grid_location_id",
    "product_id",
    "direction",
    "ptu_start",
    "quantities_kw",
    "prices",
    "reactive_kvar",
    "reactive_prices",
    "state",
    "created_at",
)
ContractRow = tuple


def _price_texts(prices: np.ndarray) -> np.ndarray:
    """Cleared prices as stored: each float's shortest repr, to four decimals (half even), once per value."""
    values, inverse = np.unique(prices, return_inverse=True)
    texts = np.array([str(price_decimal(v)) for v in values.tolist()], dtype=object)
    return texts[inverse.reshape(-1)]


def _contracts(*, run, session, result, offers, requests) -> tuple[list[ContractRow], np.ndarray, np.ndarray]:
    """One contract row per (request, offer) pair in (request, offer) order (CONTRACT_COLUMNS order), each
    pair's offer index, and each pair's kW per PTU as stored (three decimals) in the session's frame.

    Trades are summed per pair and PTU in trade order; a pair's price on a PTU is its last trade's there."""
    trades = result.trades
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    pair_key = trades.request_idx.astype(np.int64) * max(len(offers), 1) + trades.offer_idx.astype(np.int64)
    keys, pair = np.unique(pair_key, return_inverse=True)
    pair = pair.reshape(-1)
    cell = pair * n_ptus + trades.ptu
    # bincount adds each cell's trades in trade order, as a loop over the trades would.
    quantities = np.bincount(cell, weights=trades.kw, minlength=keys.size * n_ptus).reshape(keys.size, n_ptus)
    bought = np.round(quantities, 3)
    prices = np.full((keys.size, n_ptus), "0", dtype=object)
    _, last_reversed = np.unique(cell[::-1], return_index=True)
    last = cell.size - 1 - last_reversed
    prices.reshape(-1)[cell[last]] = _price_texts(trades.price[last])
    pair_request, pair_offer = np.divmod(keys, max(len(offers), 1))
    reactive = _reactive_rows(result, pair_offer)
    now = timezone.now()
    reference = f"FM-{now:%Y%m%d}-R{run.pk}-"
    direction, state = session.product.direction, Contract.State.ACTIVE
    # References are made before insert (run id + sequence), so contracts are written in one bulk insert.
    rows = [
        (
            f"{reference}{number:05d}",
            session.pk,
            run.pk,
            request.pk,
            offer.pk,
            request.owner_id,
            offer.owner_id,
            request.grid_location_id,
            session.product_id,
            direction,
            session.delivery_start,
            kw,
            price_row,
            kvar,
            kvar_prices,
            state,
            now,
        )
        for number, request, offer, kw, price_row, (kvar, kvar_prices) in zip(
            range(1, keys.size + 1),
            (requests[r] for r in pair_request.tolist()),
            (offers[o] for o in pair_offer.tolist()),
            bought.tolist(),
            prices.tolist(),
            reactive,
            strict=True,
        )
    ]
    return rows, pair_offer, bought


def _reactive_rows(result, pair_offer: np.ndarray) -> list[tuple[list, list]]:
    """(kVAr per PTU, Q-LMP texts per PTU) per pair: an offer's cleared reactive power on its first pair (the
    oldest request's), empty lists on every other pair and wherever no reactive power cleared."""
    empty = ([], [])
    kvar = getattr(result, "offer_reactive_kvar", None)
    if kvar is None:
        return [empty] * pair_offer.size
    _, first = np.unique(pair_offer, return_index=True)
    rows = [empty] * pair_offer.size
    for pair in first.tolist():
        o = int(pair_offer[pair])
        if not (np.abs(kvar[o]) > 0).any():
            continue
        moved = kvar[o] != 0
        texts = np.full(kvar.shape[1], "0", dtype=object)
        texts[moved] = _price_texts(result.offer_reactive_price[o, moved])
        rows[pair] = ([float(v) + 0.0 for v in kvar[o]], texts.tolist())
    return rows


def _notify(session: MarketSession, created: list[ContractRow]) -> None:
    from accounts.models import Organisation

    counts: dict[int, int] = {}
    buyer, seller = CONTRACT_COLUMNS.index("buyer_id"), CONTRACT_COLUMNS.index("seller_id")
    for row in created:
        for organisation_id in {row[buyer], row[seller]}:
            counts[organisation_id] = counts.get(organisation_id, 0) + 1
    for organisation in Organisation.objects.filter(pk__in=counts):
        notify_organisation(
            category=Notification.Category.TRADING,
            organisation=organisation,
            title=f"{session}: {counts[organisation.pk]} contract(s) cleared",
            body="Activation schedules are on your contracts page.",
            link=f"/trading/sessions/{session.pk}/",
            email=True,
        )
