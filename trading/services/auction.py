"""Gate-closure auction: claim a session, clear it with the engine, write contracts."""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record, notify_organisation
from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from trading.clearing.auction import AuctionOrders, clear_auction
from trading.errors import TradingErrorCode as Code
from trading.models import (
    ClearingRun,
    Contract,
    FlexOffer,
    FlexRequest,
    MarketSession,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES

# --- gate-closure auction ---------------------------------------------------------------------------


def session_clear(*, session: MarketSession, actor: Actor, rerun: bool = False) -> ClearingRun:
    """Clear an auction session once: claim it (closed → clearing), solve, write contracts, mark it cleared.

    A second delivery of the same task finds the session already claimed and returns its current run. The FMO's
    re-run (`rerun=True`) keeps the old run, supersedes its contracts and writes new ones.
    """
    from_state = MarketSession.State.CLEARED if rerun else MarketSession.State.CLOSED
    if rerun and not (actor.is_fmo and not actor.on_behalf):
        raise DomainError(Code.ROLE, "Only the market operator re-runs a clearing.")
    claimed = MarketSession.objects.filter(pk=session.pk, state=from_state).update(
        state=MarketSession.State.CLEARING
    )
    if not claimed:
        current = ClearingRun.objects.filter(session=session).order_by("-created_at").first()
        if current is None:
            raise DomainError(
                Code.INVALID_STATE,
                f"The session is {session.get_state_display().lower()}; it cannot be cleared now.",
            )
        return current
    product = Product.objects.select_related("market").get(pk=session.product_id)
    run = ClearingRun.objects.create(
        session=session,
        state=ClearingRun.State.RUNNING,
        pricing_rule="pay_as_bid"
        if product.clearing_rule == Product.ClearingRule.AUCTION_PAY_AS_BID
        else "uniform",
        triggered_by=actor.user,
    )
    try:
        with transaction.atomic():
            _clear_into(run=run, session=session, actor=actor, rerun=rerun)
    except Exception as error:  # the run records every failure; the session can be cleared again
        ClearingRun.objects.filter(pk=run.pk).update(
            state=ClearingRun.State.FAILED,
            error=f"{type(error).__name__}: {error}",
            finished_at=timezone.now(),
        )
        MarketSession.objects.filter(pk=session.pk).update(state=from_state)
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    return run


def _clear_into(*, run: ClearingRun, session: MarketSession, actor: Actor, rerun: bool) -> None:
    timings = {}
    started = time.perf_counter()
    if rerun:
        old = Contract.objects.filter(session=session, state=Contract.State.ACTIVE)
        for model, field in ((FlexOffer, "offer"), (FlexRequest, "request")):
            model.objects.filter(pk__in=old.values(field)).update(
                remaining_kw=F("quantities_kw"), state=OrderState.ACTIVE
            )
        old.update(state=Contract.State.SUPERSEDED)
        ClearingRun.objects.filter(session=session, is_current=True).update(is_current=False)
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    offer_rows = list(
        FlexOffer.objects.filter(session=session, state__in=OPEN_STATES)
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "grid_location_id",
            "ptu_start",
            "remaining_kw",
            "min_quantity_kw",
            "price",
            "all_or_nothing",
            "owner_id",
        )
    )
    request_rows = list(
        FlexRequest.objects.filter(session=session, state__in=OPEN_STATES)
        .order_by("created_at", "pk")
        .values_list("pk", "grid_location_id", "ptu_start", "remaining_kw", "price", "owner_id")
    )
    zones = sorted({row[1] for row in offer_rows} | {row[1] for row in request_rows})
    zone_index = {zone: i for i, zone in enumerate(zones)}

    def matrix(rows, quantity_column):
        result = np.zeros((len(rows), n_ptus))
        for i, row in enumerate(rows):
            offset = int((row[2] - session.delivery_start).total_seconds() // 900)
            values = np.asarray(row[quantity_column], dtype=float)
            result[i, offset : offset + values.size] = values
        return result

    orders = AuctionOrders(
        n_ptus=n_ptus,
        n_zones=max(len(zones), 1),
        offer_zone=np.array([zone_index[r[1]] for r in offer_rows], dtype=int),
        offer_qty=matrix(offer_rows, 3),
        offer_min=np.array([float(r[4]) for r in offer_rows]),
        offer_price=np.array([float(r[5]) for r in offer_rows]),
        offer_block=np.array([bool(r[6]) for r in offer_rows], dtype=bool),
        request_zone=np.array([zone_index[r[1]] for r in request_rows], dtype=int),
        request_qty=matrix(request_rows, 3),
        request_price=np.array([float(r[4]) for r in request_rows]),
    )
    timings["load"] = time.perf_counter() - started
    result = clear_auction(orders, pricing=run.pricing_rule)
    timings["build"] = result.timings.get("build", 0.0)
    timings["solve"] = result.timings.get("solve", 0.0)
    started = time.perf_counter()
    if result.status not in ("optimal",):
        raise RuntimeError(f"Solver status {result.status}")
    _write_contracts(
        run=run,
        session=session,
        orders=orders,
        result=result,
        offer_rows=offer_rows,
        request_rows=request_rows,
        n_ptus=n_ptus,
    )
    prices = {}
    for zone, i in zone_index.items():
        row = result.zone_price[i]
        if np.isfinite(row).any():
            prices[str(zone)] = [None if np.isnan(v) else round(float(v), 4) for v in row]
    timings["write"] = (
        time.perf_counter()
        - started
        + result.timings.get("prices", 0.0)
        + result.timings.get("decompose", 0.0)
    )
    run.state = ClearingRun.State.SUCCEEDED
    run.is_current = True
    run.solver = result.solver
    run.solver_status = result.status
    run.objective = result.objective
    run.timings = {k: round(v, 4) for k, v in timings.items()}
    run.offer_count = len(offer_rows)
    run.request_count = len(request_rows)
    run.cleared_volume_kwh = Decimal(str(round(float(result.offer_alloc.sum()) / 4, 3)))
    run.prices = prices
    run.finished_at = timezone.now()
    run.save()
    MarketSession.objects.filter(pk=session.pk).update(state=MarketSession.State.CLEARED)
    audit_record(
        actor=actor,
        action="session.clear",
        target=session,
        after={"run": run.pk, "status": result.status, "objective": result.objective},
    )


def _write_contracts(*, run, session, orders, result, offer_rows, request_rows, n_ptus) -> None:
    trades = result.trades
    pairs: dict[tuple[int, int], tuple[np.ndarray, list]] = {}
    for r, o, t, kw, price in zip(
        trades.request_idx, trades.offer_idx, trades.ptu, trades.kw, trades.price, strict=True
    ):
        quantities, prices = pairs.setdefault((int(r), int(o)), (np.zeros(n_ptus), ["0"] * n_ptus))
        quantities[t] += kw
        prices[t] = f"{price:.4f}"
    now = timezone.now()
    # References are made before insert (run id + sequence), so contracts are written in one bulk insert.
    contracts = [
        Contract(
            reference=f"FM-{now:%Y%m%d}-R{run.pk}-{number:05d}",
            session=session,
            clearing_run=run,
            request_id=request_rows[r][0],
            offer_id=offer_rows[o][0],
            buyer_id=request_rows[r][5],
            seller_id=offer_rows[o][7],
            grid_location_id=request_rows[r][1],
            product_id=session.product_id,
            direction=session.product.direction,
            ptu_start=session.delivery_start,
            quantities_kw=[round(float(q), 3) for q in quantities],
            prices=prices,
            created_at=now,
        )
        for number, ((r, o), (quantities, prices)) in enumerate(sorted(pairs.items()), start=1)
    ]
    created = Contract.objects.bulk_create(contracts, batch_size=2000)
    # Orders: untouched ones expire in one UPDATE; (partly) cleared ones get their remaining kW and state.
    for model, rows, alloc in (
        (FlexOffer, offer_rows, result.offer_alloc),
        (FlexRequest, request_rows, result.request_alloc),
    ):
        cleared_rows = np.nonzero(alloc.sum(axis=1) > 1e-6)[0]
        untouched = [row[0] for i, row in enumerate(rows) if alloc[i].sum() <= 1e-6]
        model.objects.filter(pk__in=untouched).update(
            state=OrderState.EXPIRED, state_reason="Not cleared at gate closure"
        )
        updates = []
        for i in cleared_rows:
            row = rows[i]
            offset = int((row[2] - session.delivery_start).total_seconds() // 900)
            submitted = np.asarray(row[3], dtype=float)
            remaining = np.round(np.maximum(submitted - alloc[i, offset : offset + submitted.size], 0), 3)
            state = OrderState.FILLED if remaining.sum() <= 1e-6 else OrderState.PARTIALLY_FILLED
            updates.append(model(pk=row[0], remaining_kw=remaining.tolist(), state=state))
        model.objects.bulk_update(updates, ["remaining_kw", "state"], batch_size=1000)
    organisations = {c.buyer_id for c in created} | {c.seller_id for c in created}
    from accounts.models import Organisation

    for organisation in Organisation.objects.filter(pk__in=organisations):
        count = sum(1 for c in created if organisation.pk in (c.buyer_id, c.seller_id))
        notify_organisation(
            organisation=organisation,
            title=f"{session}: {count} contract(s) cleared",
            body="Activation schedules are on your contracts page.",
            link=f"/trading/sessions/{session.pk}/",
            email=True,
        )
