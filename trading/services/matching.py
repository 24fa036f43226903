"""Continuous pay-as-bid matching of aggressor orders against the resting book, and contracts."""

from __future__ import annotations

import json
import zlib
from datetime import datetime

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Notification
from accounts.services import notify_organisations
from flexmarket import ptu as ptus
from flexmarket.localtime import moment_label
from grid.models import FlexAsset, Portfolio
from trading.clearing.continuous import Aggressor, RestingOrder, match_aggressor
from trading.clearing.prices import price_decimal
from trading.models import (
    IMMEDIATE_MODES,
    Contract,
    FlexOffer,
    FlexRequest,
    OrderMode,
    OrderState,
    Product,
)
from trading.selectors import OPEN_STATES
from trading.services.capacity import LedgerChanges

# --- continuous matching ----------------------------------------------------------------------------
#
# How concurrent aggressors stay exact and fast (docs/trading.md, "Matching"):
# - an aggressor holds an advisory lock per (session, zone, PTU) it spans, taken in one ordered statement, so two
#   aggressors on the same PTUs queue while aggressors on other PTUs (and zones) run in parallel;
# - it reads the book as plain values, best price first, in pages (most aggressors are filled by the first page);
# - it row-locks only the resting orders its fills touch (one statement, id order), re-reads them and redoes the
#   match if a cancellation or expiry changed them meanwhile; writes are applied to the freshly read rows;
# - contracts, order updates and notifications are written in bulk; mail goes out after commit.

PAGE = 64


def offer_backing_tradable(offer: FlexOffer) -> bool:
    """The offer's asset, or every asset of its portfolio, is still approved (not suspended, not archived)."""
    if offer.asset_id:
        return offer.asset.can_trade
    portfolio = offer.portfolio
    members = list(portfolio.assets.all())
    return portfolio.archived_at is None and bool(members) and all(a.can_trade for a in members)


def _lock_book_ptus(order, n: int) -> None:
    """Advisory locks on the (session, zone, PTU) cells the aggressor spans (PostgreSQL; SQLite serialises)."""
    if connection.vendor != "postgresql":
        return
    first = int(order.ptu_start.timestamp()) // 900
    keys = sorted(
        zlib.crc32(f"book:{order.session_id}:{order.grid_location_id}:{first + i}".encode()) - 2**31
        for i in range(n)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k ORDER BY k", [keys])


BOOK_FIELDS = ["pk", "price", "created_at", "ptu_start", "remaining_kw", "state", "valid_until", "owner_id"]


def _book_query(order, *, side: str, now: datetime):
    n = len(order.quantities_kw)
    end = order.ptu_start + n * ptus.PTU
    opposite = FlexOffer if side == "buy" else FlexRequest
    qs = (
        opposite.objects.filter(
            session_id=order.session_id,
            grid_location_id=order.grid_location_id,
            state__in=OPEN_STATES,
            product_id=order.product_id,
            direction=order.direction,
            ptu_start__lt=end,
            ptu_end__gt=order.ptu_start,
        )
        .exclude(owner_id=order.owner_id)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
    )
    if side == "buy":
        qs = qs.filter(price__lte=order.price).order_by("price", "created_at", "pk")
        if order.is_tso:
            qs = qs.filter(tso_eligible=True)  # only TSO-eligible flexibility is sold to a TSO
        fields = [
            *BOOK_FIELDS,
            "min_quantity_kw",
            "all_or_nothing",
            "asset_id",
            "portfolio_id",
            "asset__prequalification",
            "asset__grid_location_id",
            "asset__archived_at",
        ]
    else:
        qs = qs.filter(price__gte=order.price).order_by("-price", "created_at", "pk")
        if not order.tso_eligible:
            qs = qs.filter(is_tso=False)
        fields = BOOK_FIELDS
    return qs, fields


def rows_tradable(rows: list[dict]) -> list[dict]:
    """Book rows whose asset, or every asset of whose portfolio, is still approved (portfolios: one query)."""
    kept = []
    portfolio_ids = {r["portfolio_id"] for r in rows if r["portfolio_id"]}
    good_portfolios = set()
    for portfolio in (
        Portfolio.objects.filter(pk__in=portfolio_ids).prefetch_related("assets") if portfolio_ids else []
    ):
        members = list(portfolio.assets.all())
        if portfolio.archived_at is None and members and all(a.can_trade for a in members):
            good_portfolios.add(portfolio.pk)
    for row in rows:
        if row["asset_id"]:
            if (
                row["asset__prequalification"] == FlexAsset.Prequalification.APPROVED
                and row["asset__grid_location_id"] is not None
                and row["asset__archived_at"] is None
            ):
                kept.append(row)
        elif row["portfolio_id"] in good_portfolios:
            kept.append(row)
    return kept


def _resting(order, rows: list[dict], n: int) -> list[RestingOrder]:
    resting = []
    for row in rows:
        values = np.asarray(row["remaining_kw"], dtype=float)
        offset = round((row["ptu_start"] - order.ptu_start).total_seconds() / 900)
        positions = offset + np.arange(values.size)
        inside = (positions >= 0) & (positions < n)
        aligned = np.zeros(n)
        aligned[positions[inside]] = values[inside]
        resting.append(
            RestingOrder(
                row["pk"],
                float(row["price"]),
                int(row["created_at"].timestamp() * 1e6),
                aligned,
                float(row.get("min_quantity_kw") or 0),
                bool(row.get("all_or_nothing", False)),
                float(values[~inside].sum()),
            )
        )
    return resting


def _book_rows(order, *, side: str, now: datetime, limit: int | None) -> list[dict]:
    """The opposite book in priority order (at most `limit` rows), as dicts keyed like `_book_query`'s fields."""
    if connection.vendor != "postgresql":
        qs, fields = _book_query(order, side=side, now=now)
        return list(qs.values(*fields)[:limit] if limit else qs.values(*fields))
    return _book_rows_sql(order, side=side, now=now, limit=limit)


OFFER_BOOK_COLUMNS = ["min_quantity_kw", "all_or_nothing", "asset_id", "portfolio_id"]
ASSET_BOOK_COLUMNS = ["prequalification", "grid_location_id", "archived_at"]


def _book_rows_sql(order, *, side: str, now: datetime, limit: int | None) -> list[dict]:
    """`_book_query` in one hand-written statement (PostgreSQL): the hot read of every aggressor, without the ORM's
    query building (about 3 ms of CPU per aggressor). tests/trading/test_matching_book.py checks both agree."""
    opposite = FlexOffer if side == "buy" else FlexRequest
    columns = ["id", "price", "created_at", "ptu_start", "remaining_kw", "state", "valid_until", "owner_id"]
    select = [f"o.{c}" for c in columns]
    join, extra = "", ""
    if side == "buy":
        select += [f"o.{c}" for c in OFFER_BOOK_COLUMNS] + [f"a.{c}" for c in ASSET_BOOK_COLUMNS]
        join = f" LEFT JOIN {FlexAsset._meta.db_table} a ON a.id = o.asset_id"
        extra = " AND o.price <= %s" + (" AND o.tso_eligible" if order.is_tso else "")
        order_by = "o.price, o.created_at, o.id"
    else:
        extra = " AND o.price >= %s" + ("" if order.tso_eligible else " AND NOT o.is_tso")
        order_by = "o.price DESC, o.created_at, o.id"
    n = len(order.quantities_kw)
    params = [
        order.session_id,
        order.grid_location_id,
        list(OPEN_STATES),
        order.product_id,
        order.direction,
        order.ptu_start + n * ptus.PTU,
        order.ptu_start,
        order.owner_id,
        now,
        order.price,
    ]
    sql = (
        f"SELECT {', '.join(select)} FROM {opposite._meta.db_table} o{join} "
        "WHERE o.session_id = %s AND o.grid_location_id = %s AND o.state = ANY(%s) AND o.product_id = %s "
        "AND o.direction = %s AND o.ptu_start < %s AND o.ptu_end > %s AND o.owner_id <> %s "
        f"AND (o.valid_until IS NULL OR o.valid_until > %s){extra} ORDER BY {order_by}"
    )
    if limit:
        sql += " LIMIT %s"
        params.append(limit)
    keys = ["pk", *columns[1:]]
    if side == "buy":
        keys += OFFER_BOOK_COLUMNS + [f"asset__{c}" for c in ASSET_BOOK_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row["remaining_kw"], str):  # jsonb arrives as text (Django's psycopg set-up)
            row["remaining_kw"] = json.loads(row["remaining_kw"])
    return rows


def _book_match(
    order, aggressor: Aggressor, *, side: str, now: datetime, refused: frozenset = frozenset()
) -> tuple[list, dict[int, dict]]:
    """Fills against the book read in priority pages: a page that fills the aggressor decides; else read it all.
    `refused`: resting orders this aggressor may not match (the network check refused them)."""
    n = len(order.quantities_kw)
    rows = _book_rows(order, side=side, now=now, limit=PAGE)
    complete = len(rows) < PAGE
    while True:
        if side == "buy":
            rows = rows_tradable(rows)
        if refused:
            rows = [row for row in rows if row["pk"] not in refused]
        fills = match_aggressor(aggressor, _resting(order, rows, n))
        filled = np.zeros(n)
        for fill in fills:
            filled[fill.ptu] += fill.kw
        wanted = np.asarray(aggressor.quantity, dtype=float)
        if complete or np.all(filled >= wanted - 1e-9) or (aggressor.all_or_nothing and fills):
            return fills, {r["pk"]: r for r in rows}
        rows, complete = _book_rows(order, side=side, now=now, limit=None), True


def _match_if_continuous(order, *, side: str, now: datetime | None = None) -> None:
    """Aggressors (and every order of a continuous product) match now against the resting book.

    The caller holds the session share-locked and has just written `order` (not yet visible to others).
    """
    continuous = order.product.clearing_rule == Product.ClearingRule.CONTINUOUS
    if not continuous and order.order_mode not in IMMEDIATE_MODES:
        return
    now = now or timezone.now()
    if side == "sell" and not offer_backing_tradable(order):
        return
    n = len(order.quantities_kw)
    opposite = FlexOffer if side == "buy" else FlexRequest
    aggressor = Aggressor(
        side,
        float(order.price),
        np.array(order.remaining_kw, dtype=float),
        float(getattr(order, "min_quantity_kw", 0) or 0),
        # Fill or kill: every PTU in full now, or nothing (the engine's all-or-nothing aggressor).
        bool(getattr(order, "all_or_nothing", False)) or order.order_mode == OrderMode.FILL_OR_KILL,
    )
    _lock_book_ptus(order, n)
    refused: dict[int, str] = {}
    unchecked = ""  # why no grid-safety check can run: a network-aware product then matches nothing
    network: dict = {}  # the network and its linearisation, read once per match (match_refusals)
    while True:
        fills, book = _book_match(order, aggressor, side=side, now=now, refused=frozenset(refused))
        if order.product.network_aware and fills:
            # GOPACS' grid-safety check: a fill that would create or worsen a violation on the DSO's network
            # refuses its resting order; the aggressor matches the rest of the book without it.
            found, unchecked = _network_refusals(order, fills, book, side=side, cache=network)
            if unchecked:  # no network to check against: a network-aware product never trades unchecked
                fills, locked = [], {}
                break
            if found:
                refused.update(found)
                continue
        touched = sorted({fill.order_id for fill in fills})
        if not touched:  # nothing to fill (most orders rest): no rows to lock, no savepoint to take
            locked = {}
            break
        savepoint = transaction.savepoint()
        locked = {
            row["pk"]: row
            for row in opposite.objects.select_for_update(of=("self",))
            .filter(pk__in=touched)
            .order_by("pk")
            .values("pk", "state", "remaining_kw", "quantities_kw", "ptu_start", "owner_id")
        }
        if all(_unchanged(order, book[pk], locked.get(pk), n) for pk in touched):
            transaction.savepoint_commit(savepoint)
            break
        # A cancellation or expiry committed since the read: release the row locks and read the book again.
        transaction.savepoint_rollback(savepoint)
    if refused or unchecked:
        _tell_refused(order, refused, side=side, unchecked=unchecked)
    _apply_fills(order, fills, locked, side=side, opposite=opposite, now=now)


def _network_refusals(order, fills, book, *, side: str, cache: dict) -> tuple[dict[int, str], str]:
    """({resting order id: reason} refused by the grid-safety check, '' or why no check can run). `cache`: one
    dict per match, so the network is read and linearised once however often the match is redone."""
    from trading.services.network_clearing import NetworkClearingError, match_refusals

    try:
        return match_refusals(order, fills, book, side=side, cache=cache), ""
    except NetworkClearingError as error:
        return {}, f"no grid-safety check possible: {error}"


def _tell_refused(order, refused: dict[int, str], *, side: str, unchecked: str = "") -> None:
    """Both parties learn why a match was refused: the aggressor in its state reason (with why no check could
    run, `unchecked`), each resting order's owner by a notification."""
    opposite = FlexOffer if side == "buy" else FlexRequest
    kind, other = ("request", "offer") if side == "buy" else ("offer", "request")
    owners = dict(opposite.objects.filter(pk__in=list(refused)).values_list("pk", "owner_id"))
    order.network_refusals = "; ".join(
        ([unchecked] if unchecked else [])
        + [f"{other} #{pk}: {reason}" for pk, reason in sorted(refused.items())]
    )
    notify_organisations(
        [
            {
                "organisation_id": owners[pk],
                "title": f"Your {other} #{pk} was not matched with {kind} #{order.pk}: grid-safety check",
                "body": f"The trade would create or worsen congestion: {reason}.",
                "link": "/trading/offers/" if other == "offer" else "/trading/requests/",
            }
            for pk, reason in sorted(refused.items())
            if pk in owners
        ],
        category=Notification.Category.TRADING,
        email=False,
    )


def _unchanged(order, read: dict, locked: dict | None, n: int) -> bool:
    """The resting order is still open and holds what was read in the aggressor's PTUs (others' PTUs may move:
    aggressors on other PTUs fill the same order concurrently, each under its own PTU locks)."""
    if locked is None or locked["state"] not in OPEN_STATES:
        return False
    offset = round((read["ptu_start"] - order.ptu_start).total_seconds() / 900)
    before, now = read["remaining_kw"], locked["remaining_kw"]
    return all(before[j] == now[j] for j in range(max(0, -offset), min(len(before), n - offset)))


def _apply_fills(order, fills, locked: dict[int, dict], *, side: str, opposite, now: datetime) -> None:
    n = len(order.quantities_kw)
    by_counterparty: dict[int, list] = {}
    for fill in fills:
        by_counterparty.setdefault(fill.order_id, []).append(fill)
    resting_updates, contracts = [], []
    for number, (counterparty_id, counterparty_fills) in enumerate(sorted(by_counterparty.items()), start=1):
        row = locked[counterparty_id]
        offset = round((row["ptu_start"] - order.ptu_start).total_seconds() / 900)
        remaining = list(row["remaining_kw"])
        quantities = [0.0] * n
        prices = ["0"] * n
        for fill in counterparty_fills:
            quantities[fill.ptu] = round(quantities[fill.ptu] + fill.kw, 3)
            prices[fill.ptu] = str(price_decimal(fill.price))
            order.remaining_kw[fill.ptu] = round(order.remaining_kw[fill.ptu] - fill.kw, 3)
            index = fill.ptu - offset  # the fill's PTU in the resting order's own frame
            remaining[index] = round(remaining[index] - fill.kw, 3)
        resting_updates.append(
            (counterparty_id, row["state"], remaining, _fill_state(remaining, row["quantities_kw"]))
        )
        request_id, offer_id = (order.pk, counterparty_id) if side == "buy" else (counterparty_id, order.pk)
        buyer_id, seller_id = (
            (order.owner_id, row["owner_id"]) if side == "buy" else (row["owner_id"], order.owner_id)
        )
        contracts.append(
            Contract(
                reference=contract_reference(side=side, order_id=order.pk, number=number, now=now),
                session_id=order.session_id,
                request_id=request_id,
                offer_id=offer_id,
                buyer_id=buyer_id,
                seller_id=seller_id,
                grid_location_id=order.grid_location_id,
                product_id=order.product_id,
                direction=order.direction,
                ptu_start=order.ptu_start,
                quantities_kw=quantities,
                prices=prices,
                created_at=now,
            )
        )
    if resting_updates:
        _bulk_set_remaining(opposite, resting_updates)
        created = Contract.objects.bulk_create(contracts)
        _notify_contracts(created, order.grid_location)
    if order.order_mode in IMMEDIATE_MODES and any(kw > 0 for kw in order.remaining_kw):
        # An aggressor matches now or dies: the unmatched rest (kept in remaining_kw) is cancelled.
        matched = sum(f.kw for f in fills) / 4
        if side == "sell":
            ledger = LedgerChanges()
            ledger.close(order, OrderState.CANCELLED)
            ledger.write()
        order.state = OrderState.CANCELLED
        if order.order_mode == OrderMode.FILL_OR_KILL:
            reason = "Fill or kill: the book could not fill every PTU in full; cancelled, nothing traded"
        elif fills:
            reason = f"Aggressor: {matched:g} kWh matched; the unmatched rest was cancelled"
        else:
            reason = "Aggressor: nothing to match; cancelled"
        order.state_reason = _with_refusals(order, reason)
        order.save(update_fields=["remaining_kw", "state", "state_reason", "updated_at"])
    elif fills or getattr(order, "network_refusals", ""):
        order.state = _fill_state(order.remaining_kw, order.quantities_kw)
        order.state_reason = _with_refusals(order, order.state_reason)
        order.save(update_fields=["remaining_kw", "state", "state_reason", "updated_at"])


def _with_refusals(order, reason: str) -> str:
    """The order's reason, with what the grid-safety check refused (network-aware products), cut to the field."""
    refusals = getattr(order, "network_refusals", "")
    text = f"{reason}. Grid-safety check refused: {refusals}" if refusals and reason else reason
    if refusals and not reason:
        text = f"Grid-safety check refused: {refusals}"
    limit = type(order)._meta.get_field("state_reason").max_length
    return text if len(text) <= limit else text[: limit - 1] + "…"


def contract_reference(*, side: str, order_id: int, number: int, now: datetime) -> str:
    """A continuous trade's reference, made before insert: the aggressor's kind and id (offers and requests number
    their ids separately) and the counterparty's rank."""
    return f"FM-{now:%Y%m%d}-C{'R' if side == 'buy' else 'O'}{order_id}-{number:03d}"


def _fill_state(remaining, quantities) -> str:
    if all(kw <= 1e-9 for kw in remaining):
        return OrderState.FILLED
    if any(abs(r - q) > 1e-9 for r, q in zip(remaining, quantities, strict=True)):
        return OrderState.PARTIALLY_FILLED
    return OrderState.ACTIVE


def _bulk_set_remaining(model, rows: list[tuple]) -> None:
    """remaining_kw and state of many locked resting orders in one statement (PostgreSQL) or one each."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        params: list = [now]
        for pk, _expected, remaining, state in rows:
            params += [pk, json.dumps(remaining), state]
        values = ", ".join(["(%s::bigint, %s::jsonb, %s)"] * len(rows))
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET remaining_kw = v.remaining, state = v.state, updated_at = %s "
                f"FROM (VALUES {values}) AS v(id, remaining, state) WHERE t.id = v.id",
                params,
            )
        return
    for pk, _expected, remaining, state in rows:
        model.objects.filter(pk=pk).update(remaining_kw=remaining, state=state, updated_at=now)


def _notify_contracts(contracts: list[Contract], zone) -> None:
    items = []
    for contract in contracts:
        energy = sum(contract.quantities_kw) / 4
        for organisation_id, role in ((contract.buyer_id, "bought"), (contract.seller_id, "sold")):
            items.append(
                {
                    "organisation_id": organisation_id,
                    "title": f"Contract {contract.reference}: you {role} {energy:g} kWh in {zone.name}",
                    "body": f"Delivery from {moment_label(contract.ptu_start)}. "
                    "The activation schedule is on the contract page.",
                    "link": f"/trading/contracts/{contract.pk}/",
                }
            )
    notify_organisations(items, category=Notification.Category.TRADING, email=True)
