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
  at the offer's bus, stored as auction.py stores every cleared price (four decimals, half even).
Anything missing (network, zone buses, an asset's bus) raises NetworkClearingError, which fails the run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from flexmarket import ptu as ptus
from flexmarket.errors import DomainError
from grid.models import FlexAsset, GridLocation, NetworkModel, Portfolio
from grid.network import VOLTAGE_MAX_PU, VOLTAGE_MIN_PU
from grid.selectors import asset_buses, bus_zone_mapping
from grid.services import network_linearise_day
from trading.clearing.network import NetworkOrders, clear_network, stack_points
from trading.models import ClearingRunNetwork, Direction

KW_EPS = 1e-6
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


def _held_limits(point):
    """The point with every limit already exceeded at the operating point held where it is (no worse)."""
    base_vm = point.base_vm_pu
    return dataclasses.replace(
        point,
        flow_limit_mw=np.maximum(point.limit(), np.abs(point.base_flow_mw)),
        vm_min=np.minimum(point.vm_min, base_vm.min(axis=1)),
        vm_max=np.maximum(point.vm_max, base_vm.max(axis=1)),
    )


def _pairs(offer_alloc, request_alloc, offer_zone, request_zone):
    """Contracts per PTU from the accepted kW: each request, oldest first, takes accepted offers oldest first,
    those in its own zone before the others. Returns (request, offer, PTU, kW) lists."""
    out_r, out_o, out_t, out_kw = [], [], [], []
    for t in range(offer_alloc.shape[1]):
        left_o = offer_alloc[:, t].copy()
        left_r = request_alloc[:, t].copy()
        for same_zone in (True, False):
            for r in np.flatnonzero(left_r > KW_EPS):
                for o in np.flatnonzero(left_o > KW_EPS):
                    if same_zone and offer_zone[o] != request_zone[r]:
                        continue
                    kw = min(left_r[r], left_o[o])
                    out_r.append(int(r))
                    out_o.append(int(o))
                    out_t.append(t)
                    out_kw.append(float(kw))
                    left_r[r] -= kw
                    left_o[o] -= kw
                    if left_r[r] <= KW_EPS:
                        break
        if max(left_o.sum(), left_r.sum()) > 1e-3:
            raise NetworkClearingError(
                f"PTU {t}: accepted offers and requests differ by {abs(left_o.sum() - left_r.sum()):.4f} kW."
            )
    return out_r, out_o, out_t, out_kw


def _grid(values: np.ndarray, digits: int = 4) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), digits) for v in row] for row in values]


def _matrix(session, orders, n_ptus: int) -> np.ndarray:
    """kW per order and PTU at gate closure, in the session's frame."""
    result = np.zeros((len(orders), n_ptus))
    for i, order in enumerate(orders):
        offset = int((order.ptu_start - session.delivery_start) / ptus.PTU)
        values = np.asarray(order.gate_remaining_kw, dtype=float)
        result[i, offset : offset + values.size] = values
    return result


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
        empty = np.zeros((0, n_ptus))
        trades = SimpleNamespace(
            **{k: np.zeros(0) for k in ("request_idx", "offer_idx", "ptu", "kw", "price")}
        )
        result = SimpleNamespace(
            status="optimal", solver="", welfare=0.0, offer_alloc=empty, request_alloc=empty, trades=trades
        )
        return NetworkOutcome(result=result, offers=[], requests=[], stored=None)
    started = time.perf_counter()
    model = _network_model(zone_ids)
    zone_buses: dict[int, list[int]] = {}
    for bus, zone in bus_zone_mapping(network_model=model).items():
        zone_buses.setdefault(zone, []).append(int(bus))
    offers, offer_bus = _offer_buses(offers, model, excluded)
    starts = [session.delivery_start + n * ptus.PTU for n in range(n_ptus)]
    try:
        forecast, points = network_linearise_day(
            network_model=model, delivery_day=session.delivery_day, ptu_starts=starts
        )
    except DomainError as error:
        raise NetworkClearingError(error.message) from error
    timings["linearise"] = time.perf_counter() - started
    started = time.perf_counter()
    first = points[0]
    position = {int(b): i for i, b in enumerate(first.bus)}
    weights = np.zeros((len(requests), first.n_bus))
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
    point = _held_limits(stack_points(points, vm_min=VOLTAGE_MIN_PU, vm_max=VOLTAGE_MAX_PU))
    # Every order of a session has the product's direction. A down session is cleared as its mirror image: up
    # orders on a network whose sensitivities change sign, so the engine's prices are the payments for moving
    # down and its tie rule (the lowest prices among equally good ones) is the least the buyers pay, as for up.
    sign = _sign(session.product.direction)
    if sign < 0:
        point = dataclasses.replace(
            point, ptdf=-point.ptdf, qtdf=-point.qtdf, dv_dp=-point.dv_dp, dv_dq=-point.dv_dq
        )
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
    )
    timings["build"] = time.perf_counter() - started
    result = clear_network(orders, point)
    timings["solve"] = result.timings.get("solve", 0.0)
    timings["prices"] = result.timings.get("prices", 0.0)
    if result.status != "optimal":
        raise NetworkClearingError(f"Network clearing solver status {result.status}.")
    request_idx, offer_idx, ptu, kw = _pairs(
        result.offer_alloc,
        result.request_alloc,
        [o.grid_location_id for o in offers],
        [r.grid_location_id for r in requests],
    )
    bus_of = orders.offer_bus[offer_idx] if offer_idx else np.zeros(0, int)
    price = result.dlmp[bus_of, ptu] if offer_idx else np.zeros(0)
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
                "kind": str(first.branch_kind[k]),
                "index": int(first.branch_index[k]),
                "side": int(result.binding_flow[k, t]),
            }
        )
    for b, t in zip(*np.nonzero(result.binding_voltage), strict=True):
        binding.setdefault(str(int(t)), []).append(
            {"kind": "voltage", "index": int(first.bus[b]), "side": int(result.binding_voltage[b, t])}
        )
    stored = {
        "network_model": model,
        "forecast_run": forecast,
        "point": ClearingRunNetwork.Point.FORECAST if forecast else ClearingRunNetwork.Point.BASE,
        "buses": [int(b) for b in first.bus],
        "branches": [
            [str(kind), int(index)] for kind, index in zip(first.branch_kind, first.branch_index, strict=True)
        ],
        "dlmp": _grid(sign * result.dlmp),
        "dlmp_energy": _grid(sign * result.dlmp_energy),
        "dlmp_congestion": _grid(sign * result.dlmp_congestion),
        "dlmp_voltage": _grid(sign * result.dlmp_voltage),
        "flow_before_mw": _grid(result.flow_before_mw, 6),
        "flow_after_mw": _grid(result.flow_after_mw, 6),
        "flow_limit_mw": _grid(result.flow_limit_mw, 6),
        "binding": binding,
    }
    wrapped = SimpleNamespace(
        status=result.status,
        solver=result.solver,
        welfare=result.welfare,
        offer_alloc=result.offer_alloc,
        request_alloc=result.request_alloc,
        trades=trades,
    )
    return NetworkOutcome(result=wrapped, offers=offers, requests=requests, stored=stored, timings=timings)
