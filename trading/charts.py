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
            }
            for i, bus in enumerate(stored.buses)
        ]
        if 0 <= ptu < n_ptus
        else []
    )
    branch_rows = [
        {
            "kind": kind,
            "index": index,
            "before": stored.flow_before_mw[k][ptu],
            "after": stored.flow_after_mw[k][ptu],
            "limit": stored.flow_limit_mw[k][ptu],
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
    return {"heatmap": heatmap, "ptu_rows": ptu_rows, "bus_rows": bus_rows, "branch_rows": branch_rows}
