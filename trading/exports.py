"""Activation schedules (UFTP calls them FlexOrders) as rows, CSV and JSON."""

from __future__ import annotations

import io
from datetime import timedelta

from flexmarket.csvsafe import SafeDictWriter
from trading.models import Contract


def schedule_rows(contract: Contract) -> list[dict]:
    rows = []
    for index, (kw, price) in enumerate(zip(contract.quantities_kw, contract.prices, strict=True)):
        if kw:
            start = contract.ptu_start + timedelta(minutes=15 * index)
            rows.append(
                {
                    "ptu_start": start.isoformat(),
                    "ptu_end": (start + timedelta(minutes=15)).isoformat(),
                    "direction": contract.direction,
                    "power_kw": kw,
                    "price": price,
                }
            )
    return rows


def schedule_json(contract: Contract) -> dict:
    offer = contract.offer
    return {
        "contract": contract.reference,
        "buyer": contract.buyer.legal_name,
        "seller": contract.seller.legal_name,
        "grid_location": contract.grid_location.code,
        "product": str(contract.product),
        "asset": offer.asset.connection_ean if offer.asset_id else None,
        "portfolio": offer.portfolio.name if offer.portfolio_id else None,
        "unit": "kW (average over the PTU); price in EUR/MWh or EUR/MW/h",
        "ptus": schedule_rows(contract),
    }


def schedule_csv(contract: Contract) -> str:
    buffer = io.StringIO()
    writer = SafeDictWriter(buffer, fieldnames=["ptu_start", "ptu_end", "direction", "power_kw", "price"])
    writer.writeheader()
    writer.writerows(schedule_rows(contract))
    return buffer.getvalue()
