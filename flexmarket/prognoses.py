"""D-prognoses of assets for a congestion forecast: project glue between settlement (which stores them) and grid
(which forecasts), named by FLEXMARKET_FORECAST_PROGNOSES so that grid never imports settlement."""

from __future__ import annotations

from datetime import date


def asset_prognoses(*, asset_ids: list[int], delivery_day: date) -> dict[int, list[float]]:
    """Asset id -> kW per PTU of the day (consumption positive) from the assets' own D-prognoses."""
    from settlement.models import Prognosis

    rows = Prognosis.objects.filter(asset_id__in=asset_ids, delivery_day=delivery_day).values_list(
        "asset_id", "values_kw"
    )
    return {asset_id: [float(value) for value in values] for asset_id, values in rows}
