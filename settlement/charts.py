"""Plotly figures for M&V and settlement pages."""

from __future__ import annotations

import json
from datetime import timedelta

import plotly.graph_objects as go

from flexmarket.localtime import clock_label, display_zone


def delivery_chart(verification, delivery_start) -> dict:
    """Baseline vs metered vs contracted per PTU, with the delivered flexibility shaded between them."""
    n = len(verification.baseline_kw)
    zone = display_zone()
    # Category labels on local clock time: the repeated autumn hour stays two hours (its labels carry the offset).
    times = [clock_label(delivery_start + timedelta(minutes=15 * i), zone) for i in range(n)]
    contract = verification.contract
    offset = int((contract.ptu_start - delivery_start).total_seconds() // 900)
    contracted = [None] * n
    for i, kw in enumerate(contract.quantities_kw):
        if 0 <= offset + i < n and kw:
            baseline = verification.baseline_kw[offset + i]
            contracted[offset + i] = (
                None if baseline is None else (baseline - kw if contract.direction == "up" else baseline + kw)
            )
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=times, y=verification.baseline_kw, name="baseline", line={"color": "#485fc7", "width": 2}
        )
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=verification.metered_kw,
            name="metered",
            line={"color": "#2e8b57", "width": 2},
            fill="tonexty",
            fillcolor="rgba(46,139,87,0.18)",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=times,
            y=contracted,
            name="contracted target",
            mode="lines",
            line={"color": "#c0392b", "dash": "dash", "width": 2},
        )
    )
    figure.update_layout(
        height=420,
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        yaxis_title="kW",
        xaxis_title=f"PTU ({zone.key})",
        legend={"orientation": "h"},
    )
    return json.loads(figure.to_json())


def money_over_time(rows: list[tuple[str, float]], title: str) -> dict | None:
    if not rows:
        return None
    figure = go.Figure(
        go.Bar(
            x=[r[0] for r in rows],
            y=[r[1] for r in rows],
            marker_color=["#2e8b57" if r[1] >= 0 else "#c0392b" for r in rows],
        )
    )
    figure.update_layout(
        height=300, margin={"l": 50, "r": 20, "t": 30, "b": 40}, title=title, yaxis_title="EUR"
    )
    return json.loads(figure.to_json())


def prognosis_chart(labels: list[str], values: list[float | None], time_zone: str) -> dict:
    """The D-prognosis per PTU on local clock labels; the editor's table of inputs redraws it as values change."""
    figure = go.Figure(
        go.Scatter(
            x=labels,
            y=values,
            name="prognosis",
            mode="lines+markers",
            line={"color": "#485fc7", "width": 2, "shape": "hv"},
            marker={"size": 5},
        )
    )
    figure.update_layout(
        height=360,
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        yaxis_title="kW",
        xaxis_title=f"PTU start ({time_zone})",
        xaxis={"type": "category", "nticks": 12},
        showlegend=False,
    )
    return json.loads(figure.to_json())
