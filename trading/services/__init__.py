"""Business actions of the trading app, one module per capability; re-exported here so callers do not change.

- sessions: opening sessions ahead, gate closures
- orders: FlexRequest / FlexOffer submission and cancellation
- matching: continuous matching and contracts made by it
- auction: gate-closure clearing
- agreements: availability agreements
- imports: CSV upload of orders
- replays: what-if re-clearing of cleared sessions in a sandbox
"""

from trading.services.agreements import agreement_offers_generate, agreement_propose, agreement_respond
from trading.services.auction import clearing_runs_sweep, session_clear
from trading.services.imports import OFFER_CSV_COLUMNS, ORDER_CSV_COLUMNS, orders_import_csv
from trading.services.orders import offer_submit, order_cancel, request_submit
from trading.services.replays import replay_execute, replay_request, replays_sweep
from trading.services.sessions import (
    gate_closure_for,
    market_session_open,
    orders_expire_due,
    sessions_close_due,
    sessions_open_ahead,
)

__all__ = [
    "OFFER_CSV_COLUMNS",
    "ORDER_CSV_COLUMNS",
    "agreement_offers_generate",
    "agreement_propose",
    "agreement_respond",
    "clearing_runs_sweep",
    "gate_closure_for",
    "market_session_open",
    "offer_submit",
    "order_cancel",
    "orders_expire_due",
    "orders_import_csv",
    "replay_execute",
    "replay_request",
    "replays_sweep",
    "request_submit",
    "session_clear",
    "sessions_close_due",
    "sessions_open_ahead",
]
