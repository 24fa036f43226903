"""Reads for the prices page and API: per zone, product and PTU the best bid and offer, the last traded price, the
indicative auction price, the price history and the depth of the book. The book is public but anonymised
(docs/DOMAIN: "anonymised order book and prices"): every figure is summed per price level, never per order or
organisation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from flexmarket import ptu as ptus
from grid.models import GridLocation
from trading.models import Contract, FlexOffer, FlexRequest, MarketSession, Product
from trading.selectors import OPEN_STATES, products_active
from trading.services.auction import session_indicative_prices

HISTORY_DAYS = 7  # the history chart covers the chosen delivery day and the six before it
KW_QUANTUM = Decimal("0.001")
PRICE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class DepthLevel:
    """One price level of one side of the book: the open kW at exactly this price and the cumulative kW up to it
    (bids from the highest price down, offers from the lowest up)."""

    price: Decimal
    kw: Decimal
    cumulative_kw: Decimal


@dataclass(frozen=True)
class HistoryPoint:
    """A PTU with standing contracts: their volume-weighted average price and their summed kW."""

    ptu_start: datetime
    average_price: Decimal
    kw: Decimal


@dataclass
class MarketPrices:
    product: Product
    grid_location: GridLocation
    delivery_day: date
    ptu_start: datetime
    session: MarketSession | None
    bids: list[DepthLevel] = field(default_factory=list)
    offers: list[DepthLevel] = field(default_factory=list)
    last_price: Decimal | None = None
    last_traded_at: datetime | None = None
    indicative_price: Decimal | None = None
    indicative_note: str = ""
    history: list[HistoryPoint] = field(default_factory=list)

    @property
    def best_bid(self) -> DepthLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_offer(self) -> DepthLevel | None:
        return self.offers[0] if self.offers else None

    @property
    def spread(self) -> Decimal | None:
        if self.best_bid is None or self.best_offer is None:
            return None
        return self.best_offer.price - self.best_bid.price


def price_products() -> QuerySet[Product]:
    return products_active().order_by("market__name", "name")


def price_zones(*, product: Product) -> QuerySet[GridLocation]:
    """The zones a product trades in: its market's listed zones, or every zone when the market lists none (as
    order submission rules)."""
    zones = GridLocation.objects.filter(archived_at__isnull=True).order_by("name")
    listed = product.market.grid_locations.filter(archived_at__isnull=True).order_by("name")
    return listed if listed.exists() else zones


def price_default_day(*, product: Product) -> date:
    """The delivery day of the product's next open session, else today (local)."""
    day = (
        MarketSession.objects.filter(
            product=product, state=MarketSession.State.OPEN, gate_closure__gt=timezone.now()
        )
        .order_by("delivery_day")
        .values_list("delivery_day", flat=True)
        .first()
    )
    return day or ptus.local_day_of(timezone.now(), product.market.time_zone)


PRICE_DAYS = (date(2000, 1, 1), date(2100, 12, 31))
PRICE_DAY_MESSAGE = "Choose a delivery day between 2000-01-01 and 2100-12-31."


def price_day_allowed(day: date) -> bool:
    return PRICE_DAYS[0] <= day <= PRICE_DAYS[1]


def price_ptu_starts(*, product: Product, delivery_day: date) -> list[datetime]:
    """UTC starts of the delivery day's PTUs in the product's market (92, 96 or 100)."""
    return ptus.ptu_starts(delivery_day, product.market.time_zone)


def evening_index(product: Product, starts: list[datetime]) -> int:
    """The PTU pages open at: 17:00 local, the evening peak where congestion is (else the first)."""
    zone = ZoneInfo(product.market.time_zone)
    return next((i for i, start in enumerate(starts) if start.astimezone(zone).hour == 17), 0)


def price_default_focus(
    *, product: Product, delivery_day: date, zones: list[GridLocation]
) -> tuple[GridLocation, datetime | None]:
    """Where the page opens: the zone and first PTU of the latest open FlexRequest of the product on the day
    (where a grid operator wants flexibility), else the first zone and no PTU preference."""
    wanted = (
        FlexRequest.objects.filter(product=product, session__delivery_day=delivery_day, state__in=OPEN_STATES)
        .order_by("-created_at", "-pk")
        .values_list("grid_location_id", "ptu_start")
        .first()
    )
    zone = next((zone for zone in zones if wanted and zone.pk == wanted[0]), None)
    return (zone, wanted[1]) if zone else (zones[0], None)


def _kw(value) -> Decimal:
    """A stored kW (JSON float) as an exact Decimal: its shortest repr, as contracts are valued."""
    return Decimal(repr(float(value)))


def depth_levels(rows, *, ptu_start: datetime, descending: bool) -> list[DepthLevel]:
    """Open kW per price level at one PTU, best price first, with the cumulative kW (the depth chart).

    `rows`: (first PTU start, remaining kW per PTU, price) of the open orders of one side; only sums per price
    come out, so no order or owner can be told apart.
    """
    levels: dict[Decimal, Decimal] = defaultdict(Decimal)
    for start, remaining, price in rows:
        index = int((ptu_start - start) / ptus.PTU)
        if 0 <= index < len(remaining) and remaining[index] > 0:
            levels[Decimal(price)] += _kw(remaining[index])
    result, total = [], Decimal(0)
    for price in sorted(levels, reverse=descending):
        total += levels[price]
        result.append(
            DepthLevel(
                price.quantize(PRICE_QUANTUM), levels[price].quantize(KW_QUANTUM), total.quantize(KW_QUANTUM)
            )
        )
    return result


def _book_rows(model, *, product: Product, grid_location: GridLocation, ptu_start: datetime, now: datetime):
    return (
        model.objects.filter(
            product=product,
            grid_location=grid_location,
            state__in=OPEN_STATES,
            ptu_start__lte=ptu_start,
            ptu_end__gt=ptu_start,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .values_list("ptu_start", "remaining_kw", "price")
    )


def contract_history(
    rows, *, ptu_start: datetime
) -> tuple[list[HistoryPoint], Decimal | None, datetime | None]:
    """(volume-weighted price per PTU, last price at `ptu_start`, when it was traded) from contract rows
    (first PTU start, kW per PTU, price per PTU, created at). The last price is that of the most recent contract
    with kW in the chosen PTU."""
    cells: dict[datetime, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    last: tuple[datetime, Decimal] | None = None
    for start, quantities, prices, created_at in rows:
        for index, (kw, price) in enumerate(zip(quantities, prices, strict=True)):
            if not kw:
                continue
            moment, amount, unit = start + index * ptus.PTU, _kw(kw), Decimal(price)
            cells[moment][0] += amount
            cells[moment][1] += amount * unit
            if moment == ptu_start and (last is None or created_at >= last[0]):
                last = (created_at, unit)
    history = [
        HistoryPoint(moment, (value / kw).quantize(PRICE_QUANTUM), kw.quantize(KW_QUANTUM))
        for moment, (kw, value) in sorted(cells.items())
    ]
    return history, (last[1].quantize(PRICE_QUANTUM) if last else None), (last[0] if last else None)


def _indicative(session: MarketSession | None, product: Product, grid_location: GridLocation, index: int):
    """(indicative price at the PTU, a note saying what it is or why there is none)."""
    if product.clearing_rule == Product.ClearingRule.CONTINUOUS:
        return (
            None,
            "Continuous market: orders trade at once at the resting order's price; there is no auction.",
        )
    if session is None:
        return None, "No session for this delivery day."
    if session.state != MarketSession.State.OPEN or session.gate_closure <= timezone.now():
        return None, "The gate is closed: see the last price."
    prices = session_indicative_prices(session=session, grid_location_id=grid_location.pk)
    price = prices[index] if 0 <= index < len(prices) else None
    note = "If the gate closed now: the open orders cleared by the auction."
    if product.network_aware:
        note += " Zonal, without the network's limits."
    return price, note if price is not None else "Nothing would clear at this PTU with the orders open now."


def market_prices(
    *, product: Product, grid_location: GridLocation, delivery_day: date, ptu_start: datetime
) -> MarketPrices:
    """Every figure of the prices page for one product, zone and PTU of a delivery day (a fixed number of queries
    however many orders and contracts there are; the indicative price adds the auction's own load)."""
    now = timezone.now()
    tz = product.market.time_zone
    session = MarketSession.objects.filter(product=product, delivery_day=delivery_day).first()
    if session is not None:
        session.product = product  # the indicative price reads the product's solver settings
    book = {"product": product, "grid_location": grid_location, "ptu_start": ptu_start, "now": now}
    window_start, _ = ptus.day_bounds_utc(delivery_day - timedelta(days=HISTORY_DAYS - 1), tz)
    _, window_end = ptus.day_bounds_utc(delivery_day, tz)
    contracts = Contract.objects.filter(
        product=product,
        grid_location=grid_location,
        state__in=[Contract.State.ACTIVE, Contract.State.SETTLED],
        # a contract may start up to a day before the window and still deliver inside it
        ptu_start__gte=window_start - timedelta(days=1),
        ptu_start__lt=window_end,
    ).values_list("ptu_start", "quantities_kw", "prices", "created_at")
    history, last_price, last_traded_at = contract_history(contracts, ptu_start=ptu_start)
    day_start, _ = ptus.day_bounds_utc(delivery_day, tz)
    indicative, note = _indicative(session, product, grid_location, int((ptu_start - day_start) / ptus.PTU))
    return MarketPrices(
        product=product,
        grid_location=grid_location,
        delivery_day=delivery_day,
        ptu_start=ptu_start,
        session=session,
        bids=depth_levels(_book_rows(FlexRequest, **book), ptu_start=ptu_start, descending=True),
        offers=depth_levels(_book_rows(FlexOffer, **book), ptu_start=ptu_start, descending=False),
        last_price=last_price,
        last_traded_at=last_traded_at,
        indicative_price=indicative,
        indicative_note=note,
        history=[p for p in history if window_start <= p.ptu_start < window_end],
    )
