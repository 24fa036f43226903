"""The grid-safety check of a plain auction (issue 11 item 6; GOPACS' "no new congestion elsewhere").

After a plain (not network-aware) auction solves and before its contracts are written, every cleared trade is
checked on the network of the DSO whose zone holds its offer's asset: whoever buys it (a TSO, this DSO, another
DSO), the same model of a trade and the same operating point as continuous matching (network_clearing.GridCheck).
Trades are checked in merit order per PTU (cheapest offer first, then the older offer, then the older request),
each against the point with the session's continuous contracts and the trades passed before it. A trade that
would create or worsen a violation is curtailed to the largest safe quantity (refused at 0); the prices stay as
the auction discovered them. docs/network.md, "The grid-safety check of plain auctions".
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from accounts.models import Notification
from accounts.services import notify_organisations
from flexmarket import ptu as ptus
from flexmarket.localtime import clock_label
from grid.models import GridLocation
from trading.clearing.auction import ENERGY_PER_KW_PTU_MWH
from trading.services.network_clearing import (
    GridCheck,
    NetworkClearingError,
    grid_view,
    session_contract_rows,
)

KW_EPS = 1e-6


def _asset_zone(offer) -> int:
    """The zone that holds the offer's asset (a portfolio offer: the offer's zone)."""
    return getattr(offer, "asset__grid_location_id", None) or offer.grid_location_id


def auction_grid_check(*, session, offers: list, requests: list, result):
    """(result with curtailed trades and allocations, record for ClearingRun.grid_safety). `result` is the
    auction engine's; it is not changed. The record: {"checked": [{"dso", "network_model"}], "unchecked": [{"dso",
    "reason"}], "curtailed": [{"offer", "request", "ptu", "kw_cleared", "kw_refused", "reason"}]}."""
    trades = result.trades
    record: dict[str, list] = {"checked": [], "unchecked": [], "curtailed": []}
    if not len(trades):
        return result, record
    kw = np.array(trades.kw, dtype=float)
    zone_dso = dict(
        GridLocation.objects.filter(pk__in={_asset_zone(o) for o in offers}).values_list("pk", "dso_id")
    )
    by_dso: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(kw > KW_EPS).tolist():
        by_dso[zone_dso[_asset_zone(offers[int(trades.offer_idx[i])])]].append(i)
    names = dict(
        GridLocation.objects.filter(dso_id__in=by_dso).values_list("dso_id", "dso__legal_name").distinct()
    )
    starts = [session.delivery_start + t * ptus.PTU for t in range(int(trades.ptu.max()) + 1)]
    time_zone = session.product.market.time_zone
    for dso_id, rows in sorted(by_dso.items()):
        zones = {_asset_zone(offers[int(trades.offer_idx[i])]) for i in rows}
        try:
            view = grid_view(zones, delivery_day=session.delivery_day, time_zone=time_zone)
        except NetworkClearingError as error:
            record["unchecked"].append({"dso": names.get(dso_id, str(dso_id)), "reason": str(error)})
            continue
        rows.sort(
            key=lambda i: (
                int(trades.ptu[i]),
                float(offers[int(trades.offer_idx[i])].price),
                int(trades.offer_idx[i]),
                int(trades.request_idx[i]),
            )
        )
        checked = {"dso": names.get(dso_id, str(dso_id)), "network_model": view.model.name, "unmapped": []}
        try:
            check = GridCheck(
                view, [starts[int(trades.ptu[i])] for i in rows], direction=session.product.direction
            )
        except NetworkClearingError as error:
            record["unchecked"].append({"dso": checked["dso"], "reason": str(error)})
            continue
        record["checked"].append(checked)
        check.count_contracts(
            session_contract_rows(session.pk, session.delivery_start, session.delivery_end, auctions=False)
        )
        for i in rows:
            offer, request = offers[int(trades.offer_idx[i])], requests[int(trades.request_idx[i])]
            bus = view.bus_of(offer.asset_id, offer.portfolio_id)
            if bus is None or bus not in check.position:
                # A trade is refused for what it does to the grid, never for data the DSO has not mapped.
                if offer.pk not in checked["unmapped"]:
                    checked["unmapped"].append(offer.pk)
                continue
            start = starts[int(trades.ptu[i])]
            # A TSO takes the flexibility at the upstream grid: its kW leave this network at the slack.
            zone_id = None if request.is_tso else request.grid_location_id
            p = check.injection(bus, zone_id, kw[i])
            worse = check.worsened(start, p)
            if worse:
                safe = check.largest_safe(start, bus, zone_id, kw[i])
                record["curtailed"].append(
                    {
                        "offer": offer.pk,
                        "request": request.pk,
                        "ptu": int(trades.ptu[i]),
                        "time": clock_label(start, view.time_zone),
                        "kw_cleared": round(float(kw[i]), 3),
                        "kw_refused": round(float(kw[i]) - safe, 3),
                        "reason": check.reason(worse, start),
                    }
                )
                kw[i] = safe
                p = check.injection(bus, zone_id, safe)
            check.add(start, p)
    if not record["curtailed"]:
        return result, record
    spread = np.array(
        [
            float(requests[int(r)].price) - float(offers[int(o)].price)
            for r, o in zip(trades.request_idx, trades.offer_idx, strict=True)
        ]
    )
    return _curtailed(result, kw, spread), record


def _curtailed(result, kw: np.ndarray, spread: np.ndarray):
    """The auction's result with each trade at `kw` (trades at 0 dropped) and the offers' and requests'
    accepted kW reduced by what was refused: matched volume balances, prices stay. The objective (welfare, EUR)
    loses each refused kW's spread between the request's and the offer's price, so a run and its replay state
    the welfare of what was written."""
    trades = result.trades
    cut = np.asarray(trades.kw, dtype=float) - kw
    offer_alloc, request_alloc = result.offer_alloc.copy(), result.request_alloc.copy()
    np.subtract.at(offer_alloc, (trades.offer_idx, trades.ptu), cut)
    np.subtract.at(request_alloc, (trades.request_idx, trades.ptu), cut)
    keep = kw > KW_EPS
    fields = {
        "request_idx": trades.request_idx,
        "offer_idx": trades.offer_idx,
        "ptu": trades.ptu,
        "price": trades.price,
    }
    if np.size(trades.uplift) == len(trades):
        fields["uplift"] = trades.uplift
    kept = dataclasses.replace(trades, kw=kw[keep], **{k: v[keep] for k, v in fields.items()})
    return dataclasses.replace(
        result,
        objective=float(result.objective) - float(cut @ spread) * ENERGY_PER_KW_PTU_MWH,
        offer_alloc=np.maximum(np.round(offer_alloc, 6), 0.0),
        request_alloc=np.maximum(np.round(request_alloc, 6), 0.0),
        trades=kept,
    )


def notify_curtailed(*, session, offers: list, requests: list, record: dict) -> None:
    """Seller and buyer of every curtailed trade are told why (in-app; the session page lists them too)."""
    owner = {("offer", o.pk): o.owner_id for o in offers} | {("request", r.pk): r.owner_id for r in requests}
    items = []
    for entry in record.get("curtailed", []):
        what = (
            "refused"
            if entry["kw_refused"] >= entry["kw_cleared"] - 1e-9
            else (f"curtailed to {entry['kw_cleared'] - entry['kw_refused']:g} kW")
        )
        title = (
            f"{session}: offer #{entry['offer']} to request #{entry['request']} at {entry['time']} {what}: "
            "grid-safety check"
        )
        body = (
            f"The auction cleared {entry['kw_cleared']:g} kW; {entry['kw_refused']:g} kW would create or worsen "
            f"congestion: {entry['reason']}."
        )
        for kind in ("offer", "request"):
            items.append(
                {
                    "organisation_id": owner[(kind, entry[kind])],
                    "title": title,
                    "body": body,
                    "link": f"/trading/sessions/{session.pk}/",
                }
            )
    if items:
        notify_organisations(items, category=Notification.Category.TRADING, email=False)
