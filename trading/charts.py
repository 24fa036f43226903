"""Plotly figures for trading pages."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from flexmarket.localtime import clock_label
from flexmarket.ptu import PTU


def price_heatmap(run, zone_names: dict[int, str], ptu_labels: list[str]) -> dict | None:
    """Clearing price per zone (rows) and PTU (columns, labelled by local clock time and zone abbreviation)."""
    if run is None or not run.prices:
        return None
    zones = sorted(run.prices, key=lambda z: zone_names.get(int(z), z))
    figure = go.Figure(
        go.Heatmap(
            z=[run.prices[z] for z in zones],
            x=ptu_labels,
            y=[zone_names.get(int(z), z) for z in zones],
            colorscale="YlOrRd",
            colorbar={"title": "EUR/MWh"},
            hoverongaps=False,
        )
    )
    figure.update_layout(
        height=120 + 28 * len(zones),
        margin={"l": 140, "r": 20, "t": 20, "b": 40},
        xaxis_title="PTU (local time)",
    )
    return json.loads(figure.to_json())


def order_book_curves(book: dict, ptu: int) -> dict | None:
    """Supply (offers, ascending price) and demand (requests, descending) step curves for one PTU."""
    supply = sorted(book["offers"].get(ptu, {}).items())
    demand = sorted(book["requests"].get(ptu, {}).items(), reverse=True)
    if not supply and not demand:
        return None

    figure = go.Figure()
    for name, levels, colour in (
        ("offers (supply)", supply, "#2e8b57"),
        ("requests (demand)", demand, "#485fc7"),
    ):
        if levels:
            xs, ys, total = [], [], 0.0
            for price, kw in levels:
                xs += [total, total + kw]
                ys += [price, price]
                total += kw
            figure.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="lines", name=name, line={"shape": "hv", "color": colour, "width": 3}
                )
            )
    figure.update_layout(
        height=360,
        xaxis_title="cumulative kW",
        yaxis_title="price (EUR/MWh)",
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
    )
    return json.loads(figure.to_json())


def replay_prices(replay, zone_names: dict[int, str]) -> dict | None:
    """Zone prices per PTU, as stored (solid) and in the replay (dashed), one colour per zone."""
    if not replay.result or not replay.baseline:
        return None
    start, local = replay.session.delivery_start, ZoneInfo(replay.session.product.market.time_zone)
    figure = go.Figure()
    palette = ["#3273dc", "#f14668", "#48c78e", "#ffb70f", "#9b59b6", "#00d1b2", "#ff7f0e", "#7f8c8d"]
    zones = sorted(replay.result["zones"], key=lambda z: int(z))
    for i, zone in enumerate(zones):
        name = zone_names.get(int(zone), f"Zone {zone}")
        colour = palette[i % len(palette)]
        for label, summary, dash in (
            ("as cleared", replay.baseline, "solid"),
            ("replay", replay.result, "dash"),
        ):
            prices = summary["zones"].get(zone, {}).get("prices") or []
            if not any(p is not None for p in prices):
                continue
            figure.add_trace(
                go.Scatter(
                    x=[clock_label(start + t * PTU, local) for t in range(len(prices))],
                    y=prices,
                    mode="lines",
                    name=f"{name} · {label}",
                    line={"color": colour, "dash": dash, "shape": "hv"},
                    connectgaps=False,
                )
            )
    if not figure.data:
        return None
    figure.update_layout(
        height=360,
        margin={"l": 60, "r": 20, "t": 20, "b": 40},
        yaxis_title="EUR/MWh",
        xaxis_title="PTU (local time)",
        legend={"orientation": "h", "y": -0.25},
    )
    return json.loads(figure.to_json())


def _binding_text(entries: list[dict]) -> str:
    names = {"line": "line", "trafo": "transformer", "voltage": "voltage at bus"}
    return ", ".join(
        f"{names.get(e['kind'], e['kind'])} {e['index']} ({'upper' if e['side'] > 0 else 'lower'})"
        for e in entries
    )


def _cell(grid: list, row: int, ptu: int):
    """grid[row][ptu], None for a run stored before the array existed (an empty list)."""
    return grid[row][ptu] if row < len(grid) else None


def _range(grid: list) -> tuple[float | None, float | None]:
    values = [value for row in grid for value in row if value is not None]
    return (min(values), max(values)) if values else (None, None)


def network_clearing(stored, ptu: int, ptu_labels: list[str]) -> dict:
    """A network-aware run's result for its page: the D-LMP heat strip (bus x PTU), one row per PTU with a price
    or a binding limit, and every bus's D-LMP and its parts at the chosen PTU."""
    dlmp = stored.dlmp
    n_ptus = len(dlmp[0]) if dlmp else 0
    priced = [t for t in range(n_ptus) if any(row[t] is not None for row in dlmp)]
    ptu_rows = []
    for t in sorted(set(priced) | {int(k) for k in stored.binding}):
        prices = [row[t] for row in dlmp if row[t] is not None]
        ptu_rows.append(
            {
                "ptu": t,
                "label": ptu_labels[t],
                "binding": _binding_text(stored.binding.get(str(t), [])),
                "low": min(prices) if prices else None,
                "high": max(prices) if prices else None,
            }
        )
    bus_rows = (
        [
            {
                "bus": bus,
                "dlmp": stored.dlmp[i][ptu],
                "energy": stored.dlmp_energy[i][ptu],
                "congestion": stored.dlmp_congestion[i][ptu],
                "voltage": stored.dlmp_voltage[i][ptu],
                "qlmp": _cell(stored.qlmp, i, ptu),
                "q_congestion": _cell(stored.qlmp_congestion, i, ptu),
                "q_voltage": _cell(stored.qlmp_voltage, i, ptu),
            }
            for i, bus in enumerate(stored.buses)
        ]
        if 0 <= ptu < n_ptus
        else []
    )
    ac_loading = stored.ac_loading_percent or []
    branch_rows = [
        {
            "kind": kind,
            "index": index,
            "before": stored.flow_before_mw[k][ptu],
            "after": stored.flow_after_mw[k][ptu],
            "limit": stored.flow_limit_mw[k][ptu],
            "ac_loading": ac_loading[k][ptu] if k < len(ac_loading) else None,
        }
        for k, (kind, index) in enumerate(stored.branches)
        if 0 <= ptu < n_ptus
        and any(e["kind"] == kind and e["index"] == index for e in stored.binding.get(str(ptu), []))
    ]
    heatmap = None
    if priced:
        figure = go.Figure(
            go.Heatmap(
                z=[[row[t] for t in range(n_ptus)] for row in dlmp],
                x=ptu_labels[:n_ptus],
                y=[f"bus {b}" for b in stored.buses],
                colorscale="YlOrRd",
                colorbar={"title": "EUR/MWh"},
                hoverongaps=False,
            )
        )
        figure.update_layout(
            height=min(120 + 14 * len(stored.buses), 900),
            margin={"l": 80, "r": 20, "t": 20, "b": 40},
            xaxis_title="PTU (local time)",
        )
        heatmap = json.loads(figure.to_json())
    return {
        "heatmap": heatmap,
        "ptu_rows": ptu_rows,
        "bus_rows": bus_rows,
        "branch_rows": branch_rows,
        "ac": _ac_validation(stored, ptu_labels),
    }


def _residual_text(residual: dict) -> str:
    if residual["kind"] == "voltage":
        return f"bus {residual['index']} at {residual['vm_pu']:.4f} p.u."
    if residual["kind"] == "power_flow":
        return "the AC power flow does not converge"
    limit = residual.get("limit_percent")
    held = f" (held at {limit:.1f} %)" if limit is not None and limit > 100.0 + 1e-9 else ""
    return f"{residual['kind']} {residual['index']} at {residual['loading_percent']:.1f} %{held}"


def _ac_validation(stored, ptu_labels: list[str]) -> dict | None:
    """The AC validation of the clearing (None for a run cleared before it existed): iterations, feasibility and
    per PTU what the AC power flow still finds beyond limit + tolerance."""
    if stored.ac_iterations is None:
        return None
    residual_rows = [
        {
            "ptu": int(t),
            "label": ptu_labels[int(t)] if int(t) < len(ptu_labels) else t,
            "text": "; ".join(_residual_text(r) for r in residuals),
        }
        for t, residuals in sorted(stored.ac_residuals.items(), key=lambda item: int(item[0]))
    ]
    return {
        "iterations": stored.ac_iterations,
        "feasible": stored.ac_feasible,
        "residual_rows": residual_rows,
    }


def network_interesting_ptu(stored) -> int | None:
    """The first PTU with accepted orders and a binding line or transformer (else the first with accepted orders):
    where a network-aware session's page opens."""
    dlmp = stored.dlmp
    priced = [t for t in range(len(dlmp[0]) if dlmp else 0) if any(row[t] is not None for row in dlmp)]
    bound = [t for t in priced if any(e["kind"] != "voltage" for e in stored.binding.get(str(t), []))]
    return (bound or priced or [None])[0]


def network_price_map(stored, ptu_labels: list[str], ratings: dict[tuple[str, int], float]) -> dict:
    """What the price map draws per PTU: each bus's D-LMP and Q-LMP (the page toggles between them), each line's
    and transformer's loading after clearing (|active flow after| over its rating in MVA, percent) and the binding
    branches; each price's range for the colour scale is over the whole day, so the colours compare across PTUs."""
    low, high = _range(stored.dlmp)
    q_low, q_high = _range(stored.qlmp)
    loading = []
    for (kind, index), row in zip(stored.branches, stored.flow_after_mw, strict=True):
        rating = ratings.get((kind, int(index)))
        loading.append(
            [None if value is None or not rating else round(abs(value) / rating * 100, 1) for value in row]
        )
    return {
        "buses": stored.buses,
        "dlmp": stored.dlmp,
        "branches": stored.branches,
        "loading_after_percent": loading,
        "binding": {
            t: [f"{e['kind']}:{e['index']}" for e in limits if e["kind"] != "voltage"]
            for t, limits in stored.binding.items()
        },
        "ptu_labels": ptu_labels,
        "low": low,
        "high": high,
        "qlmp": stored.qlmp,
        "q_low": q_low,
        "q_high": q_high,
    }


def price_history(points, zone: ZoneInfo, unit: str) -> dict | None:
    """Volume-weighted contract price per PTU over the history window, by local time; the line breaks where a
    PTU without contracts lies between two points, so no price is drawn where nothing traded."""
    if not points:
        return None
    xs, ys, kws = [], [], []
    for before, point in zip([None, *points], points, strict=False):
        if before is not None and point.ptu_start - before.ptu_start > PTU:
            xs, ys, kws = [*xs, None], [*ys, None], [*kws, None]
        xs.append(point.ptu_start.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
        ys.append(float(point.average_price))
        kws.append(float(point.kw))
    figure = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            customdata=kws,
            mode="lines+markers",
            connectgaps=False,
            marker={"size": 6, "color": "#485fc7"},
            line={"shape": "hv", "color": "#485fc7"},
            hovertemplate="%{x}<br>%{y:.2f} " + unit + "<br>%{customdata:.1f} kW<extra></extra>",
            name="average price",
        )
    )
    figure.update_layout(
        height=320,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        yaxis_title=unit,
        xaxis={"title": "delivery (local time)", "type": "date"},
        showlegend=False,
    )
    return json.loads(figure.to_json())


def depth(bids, offers, unit: str) -> dict | None:
    """Depth chart: cumulative open kW against price, FlexRequests (bids) from the highest price down and
    FlexOffers from the lowest up, each step drawn from zero at its best price out to the edge of the chart;
    where the two areas overlap the book would trade."""
    if not bids and not offers:
        return None
    prices = [float(level.price) for level in [*bids, *offers]]
    pad = max((max(prices) - min(prices)) * 0.05, 1.0)
    low, high = min(prices) - pad, max(prices) + pad
    figure = go.Figure()
    for name, levels, colour, edge in (
        ("requests (bids)", bids, "#485fc7", low),
        ("offers", offers, "#2e8b57", high),
    ):
        if levels:
            xs = [float(levels[0].price)] + [float(level.price) for level in levels] + [edge]
            ys = [0.0] + [float(level.cumulative_kw) for level in levels] + [float(levels[-1].cumulative_kw)]
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=name,
                    fill="tozeroy",
                    line={"shape": "hv", "color": colour, "width": 2},
                    hovertemplate="%{x:.2f} " + unit + "<br>%{y:.1f} kW<extra>" + name + "</extra>",
                )
            )
    figure.update_layout(
        height=320,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        xaxis={"title": f"price ({unit})", "range": [low, high]},
        yaxis_title="cumulative kW",
        legend={"orientation": "h", "y": -0.25},
    )
    return json.loads(figure.to_json())
