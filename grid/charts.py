"""Plotly figures for grid pages (built server-side, rendered by Plotly's bundled JS)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from grid.models import PowerFlowRun
from grid.network import LINE_LOADING_LIMIT_PERCENT, VOLTAGE_MAX_PU, VOLTAGE_MIN_PU


def power_flow_chart(run: PowerFlowRun) -> dict | None:
    """Line loading (sorted, limit line) and bus voltages (band) of a finished run, as a Plotly figure dict."""
    if run.state != PowerFlowRun.State.SUCCEEDED or not run.results:
        return None
    loading = sorted(((float(v), k) for k, v in run.results["line_loading_percent"].items()), reverse=True)
    voltage = sorted((int(k), float(v)) for k, v in run.results["bus_voltage_pu"].items())
    figure = make_subplots(
        rows=1, cols=2, subplot_titles=("Line loading (%), highest first", "Bus voltage (p.u.)")
    )
    figure.add_trace(
        go.Bar(
            x=list(range(len(loading))),
            y=[value for value, _ in loading],
            text=[f"line {name}" for _, name in loading],
            marker_color=[
                "#c0392b" if v > LINE_LOADING_LIMIT_PERCENT else "#d49b00" if v > 80 else "#2e8b57"
                for v, _ in loading
            ],
            name="loading",
        ),
        row=1,
        col=1,
    )
    figure.add_hline(y=LINE_LOADING_LIMIT_PERCENT, line_dash="dash", line_color="#c0392b", row=1, col=1)
    figure.add_trace(
        go.Scatter(
            x=[b for b, _ in voltage],
            y=[v for _, v in voltage],
            mode="markers",
            name="voltage",
            marker={
                "color": [
                    "#c0392b" if not VOLTAGE_MIN_PU <= v <= VOLTAGE_MAX_PU else "#485fc7" for _, v in voltage
                ]
            },
        ),
        row=1,
        col=2,
    )
    for limit in (VOLTAGE_MIN_PU, VOLTAGE_MAX_PU):
        figure.add_hline(y=limit, line_dash="dot", line_color="#888", row=1, col=2)
    figure.update_xaxes(title_text="lines", row=1, col=1)
    figure.update_xaxes(title_text="bus index", row=1, col=2)
    figure.update_layout(height=420, showlegend=False, margin={"l": 40, "r": 20, "t": 40, "b": 40})
    return json.loads(figure.to_json())
