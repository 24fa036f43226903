"""Network-aware auction clearing of a session (issue 11 item 4): the orders at gate closure cleared subject to
the DSO's network linearised at each PTU's forecast point, priced at the D-LMP of each offer's bus.

`session_clear` (trading/services/auction.py) calls `network_clear` for a product with `network_aware` and writes
its contracts through the same path as the plain auction. docs/network.md, "Network-aware sessions":
- the network: the DSO's latest network model whose buses are mapped to the session's zones; the point: the
  DSO's latest succeeded forecast run for the delivery day, else the network's own values (recorded);
- an offer sits at its asset's bus (grid.selectors.asset_buses); a portfolio offer at its members' bus when they
  share one; a request spreads equally over its zone's buses (as needs do);
- limits: a line or voltage already beyond its limit at the forecast point is held to where it is (no trade may
  worsen it), every other one to its limit;
- price: each contract's price per PTU is the offer's signed D-LMP (the payment for the product's direction)
  at the offer's bus, stored as auction.py stores every cleared price (four decimals, half even);
- reactive: an offer's reactive range (kVAr, EUR/Mvarh) is available in each of its PTUs; what clears is paid
  kVAr x Q-LMP at the offer's bus, written on the offer's first contract (docs/network.md, "Reactive offers").
Anything missing (network, zone buses, an asset's bus) raises NetworkClearingError, which fails the run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np

from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from flexmarket.localtime import clock_label
from grid.models import FlexAsset, GridLocation, NetworkModel, Portfolio
from grid.network import VOLTAGE_MAX_PU, VOLTAGE_MIN_PU
from grid.selectors import asset_buses, bus_zone_mapping
from grid.services import network_linearise_day
from trading.clearing.network import NetworkOrders, stack_points
from trading.clearing.network_ac import clear_with_ac_validation
from trading.models import ClearingRunNetwork, Direction

KW_EPS = 1e-6
# AC validation of a session's clearing (docs/network.md, "AC validation"): clearings at most, and how far past a
# limit the AC power flow may find a branch (percent of its rating) or a voltage (p.u.) as linearisation error.
AC_ITERATIONS = 3
AC_LOADING_TOLERANCE_PERCENT = 0.5
AC_VOLTAGE_TOLERANCE_PU = 5e-4
UNSUPPORTED = "a network-aware session clears plain offers only: {} cannot be honoured by its linear clearing"


class NetworkClearingError(Exception):
    """Why a network-aware clearing cannot run (the run fails with this message)."""


@dataclass
class NetworkOutcome:
    """What `network_clear` found: a result shaped like the auction engine's for the write path, the orders it
    cleared (the others were added to `excluded`), and the fields of the run's ClearingRunNetwork row."""

    result: SimpleNamespace
    offers: list
    requests: list
    stored: dict | None
    timings: dict[str, float] = field(default_factory=dict)


def _sign(direction: str) -> int:
    return 1 if direction == Direction.UP else -1


def _unsupported(offer) -> str:
    rules = []
    if offer.all_or_nothing:
        rules.append("all or nothing")
    if float(offer.min_quantity_kw or 0) > 0:
        rules.append("a minimum quantity")
    if (offer.min_consecutive_ptus or 1) > 1 or offer.max_consecutive_ptus:
        rules.append("consecutive-PTU limits")
    return UNSUPPORTED.format(" and ".join(rules)) if rules else ""


def _network_model(zone_ids: set[int]) -> NetworkModel:
    zones = list(GridLocation.objects.filter(pk__in=zone_ids).select_related("dso").order_by("name"))
    dsos = {zone.dso for zone in zones}
    if len(dsos) > 1:
        raise NetworkClearingError(
            "The session's orders lie in zones of more than one DSO ("
            + ", ".join(sorted(d.legal_name for d in dsos))
            + "); a network-aware session clears one DSO's network."
        )
    dso = dsos.pop()
    models = NetworkModel.objects.filter(dso=dso).defer("network_json")
    if not models.exists():
        raise NetworkClearingError(
            f"{dso.legal_name} has no network model: the session cannot be cleared on its network."
        )
    model = (
        models.filter(bus_mappings__grid_location_id__in=zone_ids)
        .distinct()
        .order_by("-created_at", "-pk")
        .first()
    )
    if model is None:
        raise NetworkClearingError(
            f"No network model of {dso.legal_name} has buses mapped to the zones "
            + ", ".join(zone.name for zone in zones)
            + " (map them under Zone and asset buses)."
        )
    return model


def _offer_buses(offers, model: NetworkModel, excluded: list[dict]) -> tuple[list, list[int]]:
    """(offers kept, bus of each): an asset's bus, or the one bus all of a portfolio's members share."""
    buses_of_assets = asset_buses(network_model=model)
    members: dict[int, list[int]] = {}
    portfolio_ids = {o.portfolio_id for o in offers if not o.asset_id}
    for portfolio_id, asset_id in Portfolio.assets.through.objects.filter(
        portfolio_id__in=portfolio_ids
    ).values_list("portfolio_id", "flexasset_id"):
        members.setdefault(portfolio_id, []).append(asset_id)
    kept, buses, missing = [], [], []
    for offer in offers:
        assets = [offer.asset_id] if offer.asset_id else sorted(members.get(offer.portfolio_id, []))
        unmapped = [a for a in assets if a not in buses_of_assets]
        if unmapped or not assets:
            missing += unmapped or [f"portfolio {offer.portfolio_id}"]
            continue
        at = {buses_of_assets[a] for a in assets}
        if len(at) > 1:
            excluded.append(
                {
                    "order": f"offer:{offer.pk}",
                    "reason": f"the portfolio's members sit on buses {', '.join(map(str, sorted(at)))}; a "
                    "network-aware session clears an offer at one bus",
                }
            )
            continue
        kept.append(offer)
        buses.append(at.pop())
    if missing:
        names = dict(
            FlexAsset.objects.filter(pk__in=[a for a in missing if isinstance(a, int)]).values_list(
                "pk", "name"
            )
        )
        raise NetworkClearingError(
            f"{model}: no bus for "
            + ", ".join(names.get(a, str(a)) if isinstance(a, int) else a for a in missing[:10])
            + " (set it under Zone and asset buses)."
        )
    return kept, buses


def _pairs(offer_alloc, request_alloc, offer_zone, request_zone, offer_price, request_price):
    """Contracts per PTU from the accepted kW: offers, dearest first (then oldest), go to requests whose limit
    price is at least their price, oldest first, those in its own zone before the others (the clearing's pairing
    rows make such a pairing exist, and dearest first finds it); a rest a tolerance leaves goes to any request.
    Returns (request, offer, PTU, kW) lists."""
    out_r, out_o, out_t, out_kw = [], [], [], []
    offer_order = sorted(range(len(offer_price)), key=lambda o: (-offer_price[o], o))
    for t in range(offer_alloc.shape[1]):
        left_o = offer_alloc[:, t].copy()
        left_r = request_alloc[:, t].copy()
        for paying, same_zone in ((True, True), (True, False), (False, True), (False, False)):
            for o in offer_order:
                for r in np.flatnonzero(left_r > KW_EPS):
                    if left_o[o] <= KW_EPS:
                        break
                    if same_zone and offer_zone[o] != request_zone[r]:
                        continue
                    if paying and offer_price[o] > request_price[r]:
                        continue
                    kw = min(left_r[r], left_o[o])
                    out_r.append(int(r))
                    out_o.append(int(o))
                    out_t.append(t)
                    out_kw.append(float(kw))
                    left_r[r] -= kw
                    left_o[o] -= kw
        if max(left_o.sum(), left_r.sum()) > 1e-3:
            raise NetworkClearingError(
                f"PTU {t}: accepted offers and requests differ by {abs(left_o.sum() - left_r.sum()):.4f} kW."
            )
    return out_r, out_o, out_t, out_kw


def _ac_fields(ac, pf_model) -> dict:
    """The AC validation's record on the ClearingRunNetwork row: iterations, feasibility, the AC loading after
    clearing per branch and PTU, and per PTU (string index) what is still beyond limit + tolerance."""
    residuals: dict[str, list[dict]] = {}
    for k, t in zip(*np.nonzero(ac.loading_excess_percent), strict=True):
        residuals.setdefault(str(int(t)), []).append(
            {
                "kind": str(pf_model.kinds[k]),
                "index": int(pf_model.indices[k]),
                "loading_percent": round(float(ac.ac_loading_percent[k, t]), 2),
                "limit_percent": round(float(100 * ac.limit_mva[k, t] / pf_model.ratings[k]), 2)
                if pf_model.ratings[k] > 0
                else None,
            }
        )
    for b, t in zip(*np.nonzero(ac.voltage_excess_pu), strict=True):
        residuals.setdefault(str(int(t)), []).append(
            {"kind": "voltage", "index": int(pf_model.buses[b]), "vm_pu": round(float(ac.ac_vm_pu[b, t]), 5)}
        )
    for t in np.flatnonzero(ac.power_flow_failed):
        residuals.setdefault(str(int(t)), []).append({"kind": "power_flow", "converged": False})
    return {
        "ac_iterations": ac.iterations,
        "ac_feasible": ac.converged,
        "ac_residuals": residuals,
        "ac_history": ac.history,
        "ac_loading_percent": _grid(ac.ac_loading_percent, 2),
    }


# Arrays (..., PTU) of the clearing and of the AC validation, with the value of a PTU that was not cleared.
_ZERO_WHERE_NOT_CLEARED = {
    "offer_alloc", "offer_q_alloc", "request_alloc", "injection_mw", "injection_mvar", "binding_flow",
    "binding_voltage", "flow_violation_mw", "voltage_violation_pu", "loading_excess_percent", "voltage_excess_pu",
    "power_flow_failed", "forecast_power_flow_failed",
}  # fmt: skip


def _in_session_frame(ac, active: np.ndarray, n_ptus: int):
    """The AC validation of the PTUs `active` (its columns) as arrays over all n_ptus of the session: 0 (no
    trade, no binding limit, nothing beyond a limit) or NaN (no price, no flow computed) elsewhere."""

    def widen(result, skip=()):
        changes = {}
        for name, value in vars(result).items():
            if name in skip or not isinstance(value, np.ndarray) or value.shape[-1:] != (active.size,):
                continue
            if value.ndim == 1 and name not in _ZERO_WHERE_NOT_CLEARED:
                continue  # (T,) arrays are all named above; others of that length are per order or bus
            zero = name in _ZERO_WHERE_NOT_CLEARED
            dtype = value.dtype if zero else np.result_type(value, float)
            wide = np.full(value.shape[:-1] + (n_ptus,), 0 if zero else np.nan, dtype=dtype)
            wide[..., active] = value
            changes[name] = wide
        return dataclasses.replace(result, **changes)

    history = [
        entry
        | {
            key: [int(active[t]) for t in entry[key]]
            for key in ("relinearised_ptus", "violating_ptus")
            if key in entry
        }
        for entry in ac.history
    ]
    return dataclasses.replace(widen(ac, skip=("clearing",)), clearing=widen(ac.clearing), history=history)


def _grid(values: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), digits) for v in row] for row in values]


def _reactive_ranges(session, offers, n_ptus: int, sign: int) -> dict:
    """NetworkOrders' reactive arrays: each offer's range in its own PTUs (kVAr, zero elsewhere and for offers
    without one), mirrored (-max, -min) for a down session like the network; {} when no offer has a range."""
    if not any(o.q_price is not None for o in offers):
        return {}
    window = _matrix(session, offers, n_ptus, values_of=lambda o: [1.0] * len(o.gate_remaining_kw))
    low = np.array([float(o.q_min_kvar or 0) for o in offers])[:, None] * window
    high = np.array([float(o.q_max_kvar or 0) for o in offers])[:, None] * window
    if sign < 0:
        low, high = -high, -low
    return {
        "offer_q_min": low,
        "offer_q_max": high,
        "offer_q_price": np.array([float(o.q_price or 0) for o in offers]),
    }


def _reactive_only_trades(reactive_kvar, offer_alloc, offers, requests, request_alloc):
    """A zero-kW trade per offer whose reactive power cleared while none of its kW did, so a contract carries
    it: with the oldest accepted request of its zone, else the oldest accepted request, else the oldest one."""
    extra = []
    accepted = request_alloc.sum(axis=1) > KW_EPS
    for o in np.flatnonzero((np.abs(reactive_kvar) > KW_EPS).any(axis=1)):
        if offer_alloc[o].sum() > KW_EPS:
            continue
        ranked = sorted(
            range(len(requests)),
            key=lambda r: (requests[r].grid_location_id != offers[o].grid_location_id, not accepted[r], r),
        )
        if ranked:
            extra.append((ranked[0], int(o), int(np.flatnonzero(np.abs(reactive_kvar[o]) > KW_EPS)[0])))
    return extra


def _matrix(session, orders, n_ptus: int, values_of=lambda order: order.gate_remaining_kw) -> np.ndarray:
    """kW per order and PTU at gate closure (or `values_of` each order's PTUs), in the session's frame."""
    result = np.zeros((len(orders), n_ptus))
    for i, order in enumerate(orders):
        offset = int((order.ptu_start - session.delivery_start) / ptus.PTU)
        values = np.asarray(values_of(order), dtype=float)
        result[i, offset : offset + values.size] = values
    return result


def _nothing_cleared(
    n_ptus: int, offers: list, requests: list, timings: dict | None = None
) -> NetworkOutcome:
    """No PTU has both offers and requests: nothing trades, no network result is stored."""
    trades = SimpleNamespace(
        **{k: np.zeros(0, dtype=int) for k in ("request_idx", "offer_idx", "ptu")},
        **{k: np.zeros(0) for k in ("kw", "price")},
    )
    result = SimpleNamespace(
        status="optimal",
        solver="",
        welfare=0.0,
        offer_alloc=np.zeros((len(offers), n_ptus)),
        request_alloc=np.zeros((len(requests), n_ptus)),
        trades=trades,
    )
    return NetworkOutcome(result=result, offers=offers, requests=requests, stored=None, timings=timings or {})


def network_clear(*, session, offers: list, requests: list, excluded: list[dict]) -> NetworkOutcome:
    """Clear the session's gate-closure orders (as auction.py loads them) on the DSO's network; orders left out
    are appended to `excluded` with their reason."""
    n_ptus = int((session.delivery_end - session.delivery_start) / ptus.PTU)
    timings: dict[str, float] = {}
    kept = []
    for offer in offers:
        reason = _unsupported(offer)
        if reason:
            excluded.append({"order": f"offer:{offer.pk}", "reason": reason})
        else:
            kept.append(offer)
    offers = kept
    kept = []
    for request in requests:
        if request.is_tso:
            excluded.append(
                {
                    "order": f"request:{request.pk}",
                    "reason": "a network-aware session clears the DSO's requests only",
                }
            )
        else:
            kept.append(request)
    requests = kept
    zone_ids = {o.grid_location_id for o in offers} | {r.grid_location_id for r in requests}
    if not zone_ids:
        return _nothing_cleared(n_ptus, [], [])
    started = time.perf_counter()
    model = _network_model(zone_ids)
    zone_buses: dict[int, list[int]] = {}
    for bus, zone in bus_zone_mapping(network_model=model).items():
        zone_buses.setdefault(zone, []).append(int(bus))
    offers, offer_bus = _offer_buses(offers, model, excluded)
    starts = [session.delivery_start + n * ptus.PTU for n in range(n_ptus)]
    try:
        forecast, (pf_model, base_p, base_q) = network_linearise_day(
            network_model=model, delivery_day=session.delivery_day, ptu_starts=starts, operating_points=True
        )
    except DomainError as error:
        raise NetworkClearingError(error.message) from error
    timings["operating_point"] = time.perf_counter() - started
    started = time.perf_counter()
    position = {int(b): i for i, b in enumerate(pf_model.buses)}
    weights = np.zeros((len(requests), pf_model.buses.size))
    unmapped = set()
    for i, request in enumerate(requests):
        columns = [position[b] for b in zone_buses.get(request.grid_location_id, []) if b in position]
        if not columns:
            unmapped.add(request.grid_location_id)
            continue
        weights[i, columns] = 1.0 / len(columns)
    if unmapped:
        names = GridLocation.objects.filter(pk__in=unmapped).order_by("name").values_list("name", flat=True)
        raise NetworkClearingError(
            f"{model}: no buses in service are mapped to {', '.join(names)} (map them under Zone and asset buses)."
        )
    off_network = sorted({b for b in offer_bus if b not in position})
    if off_network:
        raise NetworkClearingError(
            f"{model}: offers sit on buses out of service or isolated: {off_network[:10]}."
        )
    # Every order of a session has the product's direction. A down session is cleared as its mirror image: up
    # orders on a network whose sensitivities change sign, so the engine's prices are the payments for moving
    # down and its tie rule (the lowest prices among equally good ones) is the least the buyers pay, as for up.
    sign = _sign(session.product.direction)
    # Reactive power has no buyer of its own: it clears only beside the DSO's requests (docs/network.md).
    reactive = _reactive_ranges(session, offers, n_ptus, sign) if requests else {}
    orders = NetworkOrders(
        n_ptus=n_ptus,
        offer_bus=np.array([position[b] for b in offer_bus], dtype=int),
        offer_direction=np.ones(len(offers), dtype=int),
        offer_qty=_matrix(session, offers, n_ptus),
        offer_price=np.array([float(o.price) for o in offers]),
        request_weights=weights,
        request_direction=np.ones(len(requests), dtype=int),
        request_qty=_matrix(session, requests, n_ptus),
        request_price=np.array([float(r.price) for r in requests]),
        bilateral=True,
        **reactive,
    )
    timings["build"] = time.perf_counter() - started
    # Linearise every PTU where something can trade (offers and requests) at the forecast point, clear, check
    # the cleared schedule with an AC power flow per PTU and re-linearise the violating PTUs at the new point (at
    # most AC_ITERATIONS clearings), limits already exceeded at the forecast point held at their forecast AC
    # value (docs/network.md, "AC validation"). The other PTUs are neither linearised nor reported.
    active = np.flatnonzero((orders.offer_qty.sum(axis=0) > 0) & (orders.request_qty.sum(axis=0) > 0))
    if not active.size:
        return _nothing_cleared(n_ptus, offers, requests, timings)
    ac = clear_with_ac_validation(
        pf_model,
        dataclasses.replace(
            orders,
            n_ptus=active.size,
            offer_qty=orders.offer_qty[:, active],
            request_qty=orders.request_qty[:, active],
            # Reactive ranges are per offer and PTU (_reactive_ranges): the same columns as the quantities.
            **{
                name: reactive[name][:, active] for name in ("offer_q_min", "offer_q_max") if name in reactive
            },
        ),
        base_p_mw=base_p[:, active],
        base_q_mvar=base_q[:, active],
        vm_min=VOLTAGE_MIN_PU,
        vm_max=VOLTAGE_MAX_PU,
        max_iterations=AC_ITERATIONS,
        loading_tolerance_percent=AC_LOADING_TOLERANCE_PERCENT,
        voltage_tolerance_pu=AC_VOLTAGE_TOLERANCE_PU,
        hold_exceeded=True,
        direction=sign,
    )
    ac = _in_session_frame(ac, active, n_ptus)
    failed = np.flatnonzero(ac.forecast_power_flow_failed)
    if failed.size:
        raise NetworkClearingError(
            f"{model}: the AC power flow does not converge at PTU {int(failed[0])} of the operating point."
        )
    result = ac.clearing
    timings["linearise"] = ac.timings.get("linearise", 0.0)
    timings["power_flow"] = ac.timings.get("power_flow", 0.0)
    timings["solve"] = ac.timings.get("clearing", 0.0)
    if result.status != "optimal":
        raise NetworkClearingError(f"Network clearing solver status {result.status}.")
    request_idx, offer_idx, ptu, kw = _pairs(
        result.offer_alloc,
        result.request_alloc,
        [o.grid_location_id for o in offers],
        [r.grid_location_id for r in requests],
        orders.offer_price,
        orders.request_price,
    )
    # Reactive power in the real frame (+ injected), and the Q-LMP paid for it at each offer's bus.
    reactive_kvar = np.round(sign * result.offer_q_alloc, 3)
    reactive_price = sign * result.qlmp[orders.offer_bus]
    for r, o, t in _reactive_only_trades(
        reactive_kvar, result.offer_alloc, offers, requests, result.request_alloc
    ):
        request_idx.append(r)
        offer_idx.append(o)
        ptu.append(t)
        kw.append(0.0)
    bus_of = orders.offer_bus[offer_idx] if offer_idx else np.zeros(0, int)
    # The D-LMP at the offer's bus, but never above the paired request's limit price: a request pays its zone's
    # weighted D-LMP at most its limit, while the D-LMP at one of the offers serving it may be higher.
    price = (
        np.minimum(result.dlmp[bus_of, ptu], orders.request_price[request_idx]) if offer_idx else np.zeros(0)
    )
    if not np.isfinite(price).all():
        raise NetworkClearingError("A PTU with accepted orders has no D-LMP.")
    trades = SimpleNamespace(
        request_idx=np.array(request_idx, dtype=int),
        offer_idx=np.array(offer_idx, dtype=int),
        ptu=np.array(ptu, dtype=int),
        kw=np.array(kw),
        price=np.asarray(price, dtype=float),
    )
    binding: dict[str, list[dict]] = {}
    for k, t in zip(*np.nonzero(result.binding_flow), strict=True):
        binding.setdefault(str(int(t)), []).append(
            {
                "kind": str(pf_model.kinds[k]),
                "index": int(pf_model.indices[k]),
                "side": int(result.binding_flow[k, t]),
            }
        )
    for b, t in zip(*np.nonzero(result.binding_voltage), strict=True):
        binding.setdefault(str(int(t)), []).append(
            {"kind": "voltage", "index": int(pf_model.buses[b]), "side": int(result.binding_voltage[b, t])}
        )
    stored = {
        "network_model": model,
        "forecast_run": forecast,
        "point": ClearingRunNetwork.Point.FORECAST if forecast else ClearingRunNetwork.Point.BASE,
        "buses": [int(b) for b in pf_model.buses],
        "branches": [
            [str(kind), int(index)] for kind, index in zip(pf_model.kinds, pf_model.indices, strict=True)
        ],
        "dlmp": _grid(sign * result.dlmp),
        "dlmp_energy": _grid(sign * result.dlmp_energy),
        "dlmp_congestion": _grid(sign * result.dlmp_congestion),
        "dlmp_voltage": _grid(sign * result.dlmp_voltage),
        "qlmp": _grid(sign * result.qlmp),
        "qlmp_congestion": _grid(sign * result.qlmp_congestion),
        "qlmp_voltage": _grid(sign * result.qlmp_voltage),
        "flow_before_mw": _grid(ac.forecast_flow_mva.real, 6),
        "flow_after_mw": _grid(result.flow_after_mw, 6),
        "flow_limit_mw": _grid(result.flow_limit_mw, 6),
        "binding": binding,
        **_ac_fields(ac, pf_model),
    }
    wrapped = SimpleNamespace(
        status=result.status,
        solver=result.solver,
        welfare=result.welfare,
        offer_alloc=result.offer_alloc,
        request_alloc=result.request_alloc,
        trades=trades,
        offer_reactive_kvar=reactive_kvar if reactive else None,
        offer_reactive_price=reactive_price,
    )
    return NetworkOutcome(result=wrapped, offers=offers, requests=requests, stored=stored, timings=timings)


# --- the grid-safety check of a trade: continuous matching and plain auctions ------------------------
#
# GOPACS' "no new congestion elsewhere" (docs/network.md): a trade is checked on the network of the DSO whose zone
# holds its offer's asset, at the operating point a session clearing would use, with the same model of a trade
# (the offer injects at its bus, the request takes the same kW spread over its zone's buses; a request outside
# that network, a TSO's or another DSO's, takes them at the slack), counting the session's contracts already made
# and the trades checked before it. A continuous network-aware product refuses the resting order of a fill that
# would create or worsen a line or voltage violation (matching.py); a plain auction curtails the trade to the
# largest safe quantity (trading/services/grid_safety.py).


@dataclass
class GridView:
    """One DSO network model, its zones' buses and assets' buses, and its linearisation per PTU start (made once
    per start: a match or an auction check asks for more PTUs as it goes)."""

    model: NetworkModel
    delivery_day: object
    zone_buses: dict[int, list[int]]
    buses_of_assets: dict[int, int]
    time_zone: ZoneInfo
    sensitivities: dict = field(default_factory=dict)
    portfolios: dict[int, set[int]] = field(default_factory=dict)

    def linearised(self, starts: list) -> list:
        missing = [start for start in starts if start not in self.sensitivities]
        if missing:
            try:
                _, points = network_linearise_day(
                    network_model=self.model, delivery_day=self.delivery_day, ptu_starts=missing
                )
            except DomainError as error:
                raise NetworkClearingError(error.message) from error
            self.sensitivities.update(zip(missing, points, strict=True))
        return [self.sensitivities[start] for start in starts]

    def bus_of(self, asset_id, portfolio_id) -> int | None:
        """An asset's bus, or the one bus all of a portfolio's members share (None: no single bus)."""
        if asset_id:
            return self.buses_of_assets.get(asset_id)
        if portfolio_id not in self.portfolios:
            self.portfolios.update(_portfolio_buses({portfolio_id}, self.buses_of_assets))
        members = self.portfolios.setdefault(portfolio_id, set())
        return next(iter(members)) if len(members) == 1 and -1 not in members else None


def grid_view(zone_ids: set[int], *, delivery_day, time_zone: str) -> GridView:
    """The network of the DSO of `zone_ids` (one DSO). Raises NetworkClearingError without one."""
    model = _network_model(zone_ids)
    zone_buses: dict[int, list[int]] = {}
    for bus, zone in bus_zone_mapping(network_model=model).items():
        zone_buses.setdefault(zone, []).append(int(bus))
    return GridView(
        model=model,
        delivery_day=delivery_day,
        zone_buses=zone_buses,
        buses_of_assets=asset_buses(network_model=model),
        time_zone=ZoneInfo(time_zone),
    )


class GridCheck:
    """Trades checked one after the other at some PTUs of a GridView: each against the linearised point with the
    trades counted before it (`add`)."""

    def __init__(self, view: GridView, starts: list, *, direction: str):
        self.view = view
        self.starts = sorted(set(starts))
        self.column = {start: i for i, start in enumerate(self.starts)}
        points = view.linearised(self.starts)
        self.point = stack_points(points, vm_min=VOLTAGE_MIN_PU, vm_max=VOLTAGE_MAX_PU)
        self.buses = points[0].bus
        self.position = {int(b): i for i, b in enumerate(self.buses)}
        self.branch_names = [
            f"{kind} {index}"
            for kind, index in zip(points[0].branch_kind, points[0].branch_index, strict=True)
        ]
        self.sign = _sign(direction)

    def injection(self, bus: int, zone_id: int | None, kw: float) -> np.ndarray:
        """Bus injections (MW) of `kw` from an offer at `bus` to a request in `zone_id` (spread over its buses; a
        zone outside this network, or None, takes them at the slack)."""
        p = np.zeros(self.point.n_buses)
        _trade_injection(p, self.position, bus, self.view.zone_buses.get(zone_id, []), self.sign * kw / 1000)
        return p

    def worsened(self, start, p: np.ndarray) -> list:
        from trading.clearing.network import check_injection

        return check_injection(self.point, self.column[start], p)

    def add(self, start, p: np.ndarray) -> None:
        t = self.column[start]
        ptdf, _, dv_dp, _ = self.point.at(t)
        self.point.base_flow_mw[:, t] += ptdf @ p
        self.point.base_vm_pu[:, t] += dv_dp @ p

    def count_contracts(self, rows) -> None:
        """Add contracts already made ((ptu_start, quantities_kw, zone, offer asset, offer portfolio) rows)."""
        for start, quantities, zone_id, asset_id, portfolio_id in rows:
            bus = self.view.bus_of(asset_id, portfolio_id)
            if bus not in self.position:
                continue
            for k, kw in enumerate(quantities):
                at = start + k * ptus.PTU
                if kw and at in self.column:
                    self.add(at, self.injection(bus, zone_id, kw))

    def largest_safe(self, start, bus: int, zone_id: int, kw: float) -> float:
        """The most kW (to 0.001) of this trade that creates or worsens no violation: the flows are linear in
        the kW, so the safe quantities are an interval from 0."""
        low, high = 0.0, kw
        for _ in range(40):
            if high - low <= 5e-4:
                break
            middle = (low + high) / 2
            if self.worsened(start, self.injection(bus, zone_id, middle)):
                high = middle
            else:
                low = middle
        return math.floor(low * 1000) / 1000

    def reason(self, worse: list, start) -> str:
        label = clock_label(start, self.view.time_zone)
        return "; ".join(_limit_text(w, self.buses, label, self.branch_names) for w in worse[:3])


def session_contract_rows(session_id: int, start, end, *, auctions: bool = True) -> list[tuple]:
    """The session's active contracts overlapping [start, end): (ptu_start, quantities_kw, zone, offer asset,
    offer portfolio); without `auctions`, only those made continuously (an auction's re-run replaces the rest)."""
    from trading.models import Contract

    contracts = Contract.objects.filter(session_id=session_id, state=Contract.State.ACTIVE, ptu_start__lt=end)
    if not auctions:
        contracts = contracts.filter(clearing_run__isnull=True)
    return [
        row
        for row in contracts.values_list(
            "ptu_start", "quantities_kw", "grid_location_id", "offer__asset_id", "offer__portfolio_id"
        )
        if row[0] + len(row[1]) * ptus.PTU > start
    ]


def _trade_injection(
    p: np.ndarray, position: dict[int, int], offer_bus: int, zone_buses: list[int], mw: float
):
    p[position[offer_bus]] += mw
    columns = [position[b] for b in zone_buses if b in position]
    for column in columns:
        p[column] -= mw / len(columns)


def _portfolio_buses(portfolio_ids: set[int], buses_of_assets: dict[int, int]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for portfolio_id, asset_id in Portfolio.assets.through.objects.filter(
        portfolio_id__in=portfolio_ids
    ).values_list("portfolio_id", "flexasset_id"):
        found.setdefault(portfolio_id, set()).add(buses_of_assets.get(asset_id, -1))
    return found


def _limit_text(worse, buses, label: str, branch_names: list[str]) -> str:
    if worse.kind == "line":
        loading = 100 * abs(worse.after) / worse.limit if worse.limit else float("inf")
        return f"{branch_names[worse.index]} at {label} would carry {abs(worse.after) * 1000:.0f} kW ({loading:.0f} % of its limit)"
    return f"bus {int(buses[worse.index])} at {label} would reach {worse.after:.4f} p.u. (limit {worse.limit:.2f})"


# --- continuous trading: the same network at match time ----------------------------------------------


def match_refusals(
    order, fills: list, book: dict[int, dict], *, side: str, cache: dict | None = None
) -> dict[int, str]:
    """For a continuous network-aware product: {resting order id: reason} for the first fill, in priority order,
    that would create or worsen a violation on the DSO's network given the fills before it. Empty: every fill is
    safe. Raises NetworkClearingError when the network, a zone's buses or an asset's bus is missing.

    `cache`: one dict per match (matching.py passes the same one to every call of an aggressor's match): the
    network, its linearisation per PTU and the contracts already made are read once, however many orders the
    check refuses and however often a lock retry matches again."""
    if not fills:
        return {}
    cache = {} if cache is None else cache
    if "view" not in cache:
        view = grid_view(
            {order.grid_location_id},
            delivery_day=order.session.delivery_day,
            time_zone=order.product.market.time_zone,
        )
        if not view.zone_buses.get(order.grid_location_id):
            raise NetworkClearingError(f"{view.model}: no buses are mapped to {order.grid_location}.")
        end = order.ptu_start + len(order.quantities_kw) * ptus.PTU
        cache["view"] = view
        cache["contracts"] = session_contract_rows(order.session_id, order.ptu_start, end)
    view = cache["view"]
    check = GridCheck(
        view, [order.ptu_start + fill.ptu * ptus.PTU for fill in fills], direction=order.direction
    )
    check.count_contracts(cache["contracts"])
    refused: dict[int, str] = {}
    for fill in fills:
        if side == "sell":
            bus = view.bus_of(order.asset_id, order.portfolio_id)
        else:
            row = book[fill.order_id]
            bus = view.bus_of(row.get("asset_id"), row.get("portfolio_id"))
        if bus is None or bus not in check.position:
            refused[fill.order_id] = "its offer has no single bus on the network"
            break
        start = order.ptu_start + fill.ptu * ptus.PTU
        p = check.injection(bus, order.grid_location_id, fill.kw)
        worse = check.worsened(start, p)
        if worse:
            refused[fill.order_id] = check.reason(worse, start)
            break
        check.add(start, p)
    return refused
