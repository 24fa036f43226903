"""Activation schedules (UFTP calls them FlexOrders) as rows, CSV and JSON."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

from flexmarket.csvsafe import SafeDictWriter
from trading.models import Contract


def schedule_rows(contract: Contract) -> list[dict]:
    """Per PTU with kW (or, on a network-aware contract carrying its offer's reactive power, kVAr) to deliver:
    the PTU, direction, kW and price, and for reactive contracts kVAr (+ injected, - absorbed) and its Q-LMP."""
    reactive = contract.reactive_kvar or []
    rows = []
    for index, (kw, price) in enumerate(zip(contract.quantities_kw, contract.prices, strict=True)):
        kvar = reactive[index] if reactive else 0
        if kw or kvar:
            start = contract.ptu_start + timedelta(minutes=15 * index)
            row = {
                "ptu_start": start.isoformat(),
                "ptu_end": (start + timedelta(minutes=15)).isoformat(),
                "direction": contract.direction,
                "power_kw": kw,
                "price": price,
            }
            if reactive:
                row |= {"reactive_kvar": kvar, "reactive_price": contract.reactive_prices[index]}
            rows.append(row)
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
        "unit": "kW (average over the PTU); price in EUR/MWh or EUR/MW/h; reactive_kvar (+ injected, - absorbed) "
        "paid reactive_price in EUR/Mvarh",
        "ptus": schedule_rows(contract),
    }


def schedule_csv(contract: Contract) -> str:
    buffer = io.StringIO()
    fieldnames = ["ptu_start", "ptu_end", "direction", "power_kw", "price"]
    if contract.reactive_kvar:
        fieldnames += ["reactive_kvar", "reactive_price"]
    writer = SafeDictWriter(buffer, fieldnames=fieldnames)
    writer.writeheader()
    # Prices as numbers, so a negative one (a Q-LMP paying absorption) stays a number, not neutralised text.
    writer.writerows(
        row | {key: Decimal(row[key]) for key in ("price", "reactive_price") if key in row}
        for row in schedule_rows(contract)
    )
    return buffer.getvalue()
