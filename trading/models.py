"""Markets, products, sessions, FlexRequests and FlexOffers, clearing runs, contracts, agreements.

Per-PTU quantities are JSON arrays of kW aligned to `ptu_start` (one value per 15-minute PTU),
so a session of 10,000 offers x 96 PTUs loads into numpy without a million rows.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from flexmarket.runs import LeasedRun
from grid.models import FlexAsset, GridLocation, Portfolio


class Direction(models.TextChoices):
    UP = "up", "Up (less consumption / more generation)"
    DOWN = "down", "Down (more consumption / less generation)"


class Market(models.Model):
    """A market covers grid locations and has a local time zone for delivery days and gate closures."""

    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=40, unique=True)
    time_zone = models.CharField(max_length=64, default="Europe/Amsterdam")
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO 3166-1 country of the public holiday calendar for baselines, e.g. NL (empty: weekends only)",
    )
    holiday_subdivision = models.CharField(
        max_length=10, blank=True, help_text="Optional region of that calendar (ISO 3166-2 code, e.g. BY)"
    )
    grid_locations = models.ManyToManyField(GridLocation, blank=True, related_name="markets")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.holiday_country:
            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision or None)
            except NotImplementedError as error:
                raise ValidationError({"holiday_country": str(error)})
        elif self.holiday_subdivision:
            raise ValidationError({"holiday_subdivision": "Give the country of the subdivision."})


class Product(models.Model):
    """What is traded and how it clears, settles and is verified."""

    class Kind(models.TextChoices):
        ACTIVATION = "activation", "Activation (energy, EUR/MWh)"
        AVAILABILITY = "availability", "Availability (capacity, EUR/MW/h)"

    class ClearingRule(models.TextChoices):
        CONTINUOUS = "continuous", "Continuous pay-as-bid"
        AUCTION_UNIFORM = "auction_uniform", "Auction, uniform price per zone and PTU"
        AUCTION_PAY_AS_BID = "auction_pay_as_bid", "Auction, pay-as-bid"

    class GateClosureRule(models.TextChoices):
        DAY_AHEAD = "day_ahead", "Day-ahead at a local time"
        BEFORE_DELIVERY = "before_delivery", "N minutes before the first PTU"

    class BaselineMethod(models.TextChoices):
        NOMINATED = "nominated", "Nominated (D-prognosis)"
        HIGH_X_OF_Y = "high_x_of_y", "High X of Y days"
        MID_X_OF_Y = "mid_x_of_y", "Mid X of Y days"
        METER_BEFORE_AFTER = "meter_before_after", "Meter before / meter after"
        REGRESSION = "regression", "Like-day regression"
        NODES = "nodes", "NODES: the 5 preceding working days"
        TEMPERATURE = "temperature", "Temperature (CalTRACK-style hourly model)"

    class PenaltyRule(models.TextChoices):
        CAPPED = "capped", "Capped: the undelivered part of the contract"
        USEF = "usef", "USEF: the whole deviation from the adjusted baseline"

    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=40)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.ACTIVATION)
    direction = models.CharField(max_length=4, choices=Direction.choices, default=Direction.UP)
    ptu_minutes = models.PositiveSmallIntegerField(default=15, editable=False)
    clearing_rule = models.CharField(
        max_length=20, choices=ClearingRule.choices, default=ClearingRule.AUCTION_UNIFORM
    )
    gate_closure_rule = models.CharField(
        max_length=16, choices=GateClosureRule.choices, default=GateClosureRule.DAY_AHEAD
    )
    gate_closure_local_time = models.TimeField(default=time(12, 0), help_text="Day-ahead: local time on D-1")
    gate_closure_minutes_before = models.PositiveIntegerField(
        default=60, help_text="Before-delivery rule: minutes"
    )
    sessions_ahead_days = models.PositiveSmallIntegerField(
        default=2, help_text="How many delivery days to open ahead"
    )
    baseline_method = models.CharField(
        max_length=24, choices=BaselineMethod.choices, default=BaselineMethod.HIGH_X_OF_Y
    )
    baseline_params = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"x": 5, "y": 10, "adjustment": "additive", "cap": 0.2}'
    )
    delivery_tolerance = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.10"),
        help_text="Delivered within this fraction of the contract counts as delivered (0.10 = 10%)",
    )
    penalty_factor = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("1.0"),
        help_text="Penalty per undelivered MWh as a multiple of the contract price",
    )
    penalty_rule = models.CharField(
        max_length=8, choices=PenaltyRule.choices, default=PenaltyRule.CAPPED, help_text="What is penalised"
    )
    penalty_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="EUR/MWh per MWh of deficiency; empty: the penalty factor × the contract price",
    )
    fee_eur_per_mwh = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0.50"))
    solver_time_limit_seconds = models.PositiveIntegerField(
        default=120, help_text="Auction: the solver stops here and the best solution found so far stands"
    )
    solver_mip_gap = models.DecimalField(
        max_digits=6,
        decimal_places=5,
        default=Decimal("0"),
        help_text="Auction with blocks or minimum quantities: relative optimality gap accepted (0 = solve to "
        "optimality, which the tie-breaking rule needs; 0.0001 = 0.01%)",
    )
    network_aware = models.BooleanField(
        default=False,
        help_text="Auction: clear subject to the DSO's network at the forecast point, priced at the D-LMP of each "
        "offer's bus. Continuous: every match is checked against that network first and refused when it would "
        "create or worsen congestion (docs/network.md, 'Network-aware sessions')",
    )
    # Order rules (issue 12 item 1; docs/trading.md, "Product rules"), enforced at submission of every order by
    # trading/services/product_rules.py with an error that names the rule. The defaults accept any order.
    min_quantity_kw = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Minimum size: every PTU with a quantity has at least this many kW (NODES: 1 kW; 0: any)",
    )
    quantity_step_kw = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Granularity: every quantity is a whole multiple of this many kW (NODES: 10 kW; 0: any)",
    )
    price_floor = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Lowest price an order may carry (empty: 0)",
    )
    price_cap = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Highest price an order may carry (empty: the platform's limit)",
    )
    min_duration_ptus = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Fewest PTUs an order may span"
    )
    max_duration_ptus = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most PTUs an order may span (empty: a whole delivery day)"
    )
    max_ramp_kw = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Ramp: the largest change in kW between two consecutive PTUs of one order, and from 0 into "
        "its first and out of its last PTU (empty: any)",
    )
    accepts_initiator_orders = models.BooleanField(
        default=True, help_text="Orders that rest in the book (or wait for the auction)"
    )
    accepts_aggressor_orders = models.BooleanField(
        default=True, help_text="Orders that match at once or are cancelled"
    )
    accepts_block_offers = models.BooleanField(
        default=True, help_text="Offers with a minimum quantity or all-or-nothing"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["market", "name"]
        constraints = [models.UniqueConstraint(fields=["market", "code"], name="unique_product_code")]

    def __str__(self) -> str:
        return f"{self.market.code}/{self.code}"

    def clean(self) -> None:
        errors = {}
        if self.price_floor is not None and self.price_cap is not None and self.price_floor > self.price_cap:
            errors["price_cap"] = "The price cap is below the price floor."
        if self.max_duration_ptus is not None and self.max_duration_ptus < (self.min_duration_ptus or 1):
            errors["max_duration_ptus"] = "The longest order is shorter than the shortest."
        if not (self.accepts_initiator_orders or self.accepts_aggressor_orders):
            errors["accepts_aggressor_orders"] = "Accept at least one order mode."
        if self.network_aware and self.clearing_rule == self.ClearingRule.AUCTION_PAY_AS_BID:
            errors["network_aware"] = (
                "A network-aware auction prices at the D-LMP: choose the uniform-price auction "
                "(or continuous trading, where every match is checked against the network)."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def is_auction(self) -> bool:
        return self.clearing_rule != self.ClearingRule.CONTINUOUS

    @property
    def price_unit(self) -> str:
        return "EUR/MW/h" if self.kind == self.Kind.AVAILABILITY else "EUR/MWh"


class MarketSession(models.Model):
    """One product, one local delivery day, one gate closure."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        CLEARING = "clearing", "Clearing"
        CLEARED = "cleared", "Cleared"
        SETTLED = "settled", "Settled"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="sessions")
    delivery_day = models.DateField()
    delivery_start = models.DateTimeField(help_text="UTC start of the first PTU")
    delivery_end = models.DateTimeField(help_text="UTC end of the last PTU")
    gate_closure = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-delivery_day", "product"]
        constraints = [
            models.UniqueConstraint(fields=["product", "delivery_day"], name="one_session_per_product_day")
        ]

    def __str__(self) -> str:
        return f"{self.product.name} · {self.delivery_day}"


class ClearingRun(models.Model):
    """One clearing of a session: inputs, solver, status, timings, objective. Re-runs keep old runs.

    A running run holds a lease (`lease_expires_at`): a worker that dies leaves it to expire, and the sweep
    (`clearing_runs_sweep`) fails the run visibly and queues the session again (docs/operations.md).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    session = models.ForeignKey(MarketSession, on_delete=models.PROTECT, related_name="clearing_runs")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    is_current = models.BooleanField(default=False, help_text="The run whose contracts stand")
    pricing_rule = models.CharField(max_length=20, blank=True)
    solver = models.CharField(max_length=40, blank=True)
    solver_status = models.CharField(max_length=60, blank=True)
    objective = models.FloatField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="seconds: load, build, solve, write")
    offer_count = models.PositiveIntegerField(default=0)
    request_count = models.PositiveIntegerField(default=0)
    cleared_volume_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=Decimal("0"))
    prices = models.JSONField(
        default=dict, blank=True, help_text="{grid_location_id: [price per PTU or null]}"
    )
    error = models.TextField(blank=True)
    is_rerun = models.BooleanField(default=False)
    excluded = models.JSONField(
        default=list,
        blank=True,
        help_text='Orders left out with the reason: [{"order": "offer:12", "reason": ...}]',
    )
    grid_safety = models.JSONField(
        default=dict,
        blank=True,
        help_text="A plain auction's grid-safety check (docs/network.md): networks checked, DSOs unchecked "
        "with the reason, trades curtailed with the limit",
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Host and process that held the lease")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one running clearing per session: a second claim fails at the database.
            models.UniqueConstraint(
                fields=["session"], condition=models.Q(state="running"), name="one_running_clearing"
            )
        ]


class ClearingRunNetwork(models.Model):
    """What a network-aware clearing saw and found (issue 11 item 4): the network and operating point it used,
    and per bus and PTU the D-LMP with its energy, congestion and voltage parts, per branch and PTU the flows
    before and after, the limits and which bind.

    Arrays are JSON lists: `buses` (pandapower bus indices) and `branches` ([kind, index] per line/transformer)
    give the rows; every per-PTU array has one column per PTU of the session, null where no price was found.
    A row of its own (not fields on ClearingRun) so run lists and the run API stay light: on a 117-bus grid over
    96 PTUs these arrays hold tens of thousands of numbers that only the session page and its API read.
    """

    class Point(models.TextChoices):
        FORECAST = "forecast", "The DSO's latest congestion forecast for the day"
        BASE = "base", "The network's own values (no forecast for the day)"

    run = models.OneToOneField(ClearingRun, on_delete=models.CASCADE, related_name="network")
    network_model = models.ForeignKey("grid.NetworkModel", on_delete=models.PROTECT, related_name="+")
    forecast_run = models.ForeignKey(
        "grid.ForecastRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    point = models.CharField(max_length=10, choices=Point.choices)
    buses = models.JSONField(help_text="pandapower bus index per row of the bus arrays")
    branches = models.JSONField(
        help_text='[kind, index] per row of the branch arrays, kind "line" or "trafo"'
    )
    dlmp = models.JSONField(help_text="EUR/MWh per bus (rows) and PTU (columns); null: no price in that PTU")
    dlmp_energy = models.JSONField()
    dlmp_congestion = models.JSONField()
    dlmp_voltage = models.JSONField()
    # Q-LMP per bus and PTU, EUR/Mvarh (its energy part is 0: no reactive balance, no losses). Rows cleared
    # before reactive offers: empty.
    qlmp = models.JSONField(default=list, blank=True, help_text="EUR/Mvarh per bus and PTU; null: no price")
    qlmp_congestion = models.JSONField(default=list, blank=True)
    qlmp_voltage = models.JSONField(default=list, blank=True)
    flow_before_mw = models.JSONField(help_text="Active flow per branch and PTU at the operating point")
    flow_after_mw = models.JSONField(help_text="Linearised active flow with the cleared schedule")
    flow_limit_mw = models.JSONField(help_text="The limit the clearing held each branch to, per PTU")
    binding = models.JSONField(
        help_text='Per PTU index (string): [{"kind": "line"|"trafo"|"voltage", "index": ..., "side": 1|-1}]'
    )
    # AC validation (issue 11 item 5; docs/network.md "AC validation"). Rows cleared before it: null / empty.
    ac_iterations = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Linear clearings made (1: the first was AC-feasible)"
    )
    ac_feasible = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether the AC power flow with the cleared schedule is within limits",
    )
    ac_residuals = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per PTU index (string), what the AC power flow still finds beyond limit + tolerance: "
        '[{"kind": "line"|"trafo", "index", "loading_percent", "limit_percent"} | {"kind": "voltage", "index", '
        '"vm_pu"} | {"kind": "power_flow", "converged": false}]',
    )
    ac_history = models.JSONField(
        default=list, blank=True, help_text="Per clearing: PTUs re-linearised, largest excesses left after it"
    )
    ac_loading_percent = models.JSONField(
        default=list, blank=True, help_text="AC loading (% of rating) per branch and PTU after clearing"
    )
    created_at = models.DateTimeField(default=timezone.now)


class OrderState(models.TextChoices):
    ACTIVE = "active", "Active"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"


class OrderMode(models.TextChoices):
    INITIATOR = "initiator", "Initiator (rests in the book)"
    AGGRESSOR = "aggressor", "Aggressor, fill and kill (matches what it can now; the rest is cancelled)"
    FILL_OR_KILL = "fill_or_kill", "Fill or kill (matches in full now, every PTU, or is cancelled)"


# Orders that match on arrival and never rest (docs/trading.md, "Order modes").
IMMEDIATE_MODES = (OrderMode.AGGRESSOR, OrderMode.FILL_OR_KILL)


def _open_expiry_index(name: str) -> models.Index:
    """The expiry sweep's index (trading/services/sessions.py): open orders that carry a validity, by it."""
    return models.Index(
        fields=["valid_until"],
        name=name,
        condition=models.Q(
            state__in=[OrderState.ACTIVE, OrderState.PARTIALLY_FILLED], valid_until__isnull=False
        ),
    )


class Order(models.Model):
    """Fields common to FlexRequests and FlexOffers. Orders are never deleted."""

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # No single-column indexes on grid_location, session and state: the composite indexes below lead with the
    # first two, and every order update changes `state`, so each index on it is one more entry to write per
    # order (a 10,000-offer gate closure updates every offer; docs/clearing.md, "Clearing writes").
    grid_location = models.ForeignKey(
        GridLocation, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(
        MarketSession, on_delete=models.PROTECT, related_name="+", null=True, blank=True, db_index=False
    )
    direction = models.CharField(max_length=4, choices=Direction.choices)
    ptu_start = models.DateTimeField(help_text="UTC start of the first PTU of `quantities_kw`")
    ptu_end = models.DateTimeField(
        help_text="UTC end of the last PTU (for book reads); set from ptu_start and quantities_kw on save"
    )
    quantities_kw = models.JSONField(help_text="kW per consecutive PTU from ptu_start")
    remaining_kw = models.JSONField(help_text="kW per PTU not yet matched")
    price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="EUR/MWh (activation) or EUR/MW/h (availability)",
    )
    order_mode = models.CharField(max_length=12, choices=OrderMode.choices, default=OrderMode.INITIATOR)
    valid_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=OrderState.choices, default=OrderState.ACTIVE)
    state_reason = models.CharField(max_length=300, blank=True)
    gate_remaining_kw = models.JSONField(
        null=True,
        blank=True,
        help_text="remaining_kw at gate closure: what the auction (and any re-run) clears",
    )
    external_id = models.CharField(max_length=64, blank=True, help_text="The submitter's own reference")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def save(self, *args, **kwargs):
        # Bulk writes bypass this and must set ptu_end themselves (the column is NOT NULL, so they cannot forget).
        if self.ptu_start is not None and isinstance(self.quantities_kw, list):
            self.ptu_end = self.ptu_start + timedelta(minutes=15 * len(self.quantities_kw))
        super().save(*args, **kwargs)

    @property
    def ptu_count(self) -> int:
        return len(self.quantities_kw)

    @property
    def revocable(self) -> bool:
        """What `order_cancel` accepts now: an open order whose session still takes orders (pages offer "Revoke"
        only then)."""
        if self.state not in (OrderState.ACTIVE, OrderState.PARTIALLY_FILLED):
            return False
        session = self.session if self.session_id else None
        return session is None or (
            session.state == MarketSession.State.OPEN and session.gate_closure > timezone.now()
        )


class FlexRequest(Order):
    """A DSO's or TSO's demand for flexibility in a grid location (buy order)."""

    is_tso = models.BooleanField(default=False, help_text="Posted by a TSO: stands out in every list")

    class Meta(Order.Meta):
        indexes = [
            models.Index(fields=["grid_location", "product", "state"]),
            # The continuous book: open requests of a zone in a session, best price first.
            models.Index(fields=["session", "grid_location", "state", "price"], name="request_book"),
            _open_expiry_index("request_open_expiry"),
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk} {self.grid_location.code} {self.direction}"


class FlexOffer(Order):
    """An ESP's offer of flexibility, backed by an approved asset or portfolio in the same zone (sell order)."""

    asset = models.ForeignKey(
        FlexAsset, on_delete=models.PROTECT, null=True, blank=True, related_name="offers"
    )
    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.PROTECT, null=True, blank=True, related_name="offers"
    )
    min_quantity_kw = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"))
    all_or_nothing = models.BooleanField(
        default=False, help_text="Block offer: every PTU in full, or nothing"
    )
    min_consecutive_ptus = models.PositiveSmallIntegerField(default=1)
    max_consecutive_ptus = models.PositiveSmallIntegerField(null=True, blank=True)
    tso_eligible = models.BooleanField(default=False)
    answers_request = models.ForeignKey(
        FlexRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="answers"
    )
    availability_agreement = models.ForeignKey(
        "AvailabilityAgreement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="generated_offers",
    )
    member_allocation = models.JSONField(
        default=dict,
        blank=True,
        help_text="Portfolio offers: {asset id: [kW per PTU]} reserved on each member (the capacity ledger)",
    )
    # Reactive flexibility (issue 11 item 4; docs/network.md "Reactive offers"): all three or none, network-aware
    # products only. kVAr injected (+) or absorbed (-) at the offer's bus in each of its PTUs, paid the Q-LMP.
    q_min_kvar = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True, help_text="Most kVAr absorbed (<= 0)"
    )
    q_max_kvar = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True, help_text="Most kVAr injected (>= 0)"
    )
    q_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="EUR/Mvarh asked for reactive power moved either way",
    )

    class Meta(Order.Meta):
        indexes = [
            models.Index(fields=["grid_location", "product", "state"]),
            models.Index(fields=["session", "grid_location", "state", "price"], name="offer_book"),
            _open_expiry_index("offer_open_expiry"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(asset__isnull=False) | models.Q(portfolio__isnull=False),
                name="offer_backed_by_asset_or_portfolio",
            ),
            # One generated offer per agreement and session, however many beat runs race (FLEXGRID:
            # capacity reserved under an availability agreement is not offered twice).
            models.UniqueConstraint(
                fields=["availability_agreement", "session"],
                condition=models.Q(availability_agreement__isnull=False),
                name="one_offer_per_agreement_session",
            ),
        ]

    def __str__(self) -> str:
        return f"Offer #{self.pk} {self.grid_location.code} {self.direction}"


class Contract(models.Model):
    """A trade: what clearing produced between one request and one offer, with its activation schedule.

    UFTP calls the schedule a FlexOrder. `quantities_kw` and `prices` are per PTU from `ptu_start`.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Superseded by a re-run"
        CANCELLED = "cancelled", "Cancelled"
        SETTLED = "settled", "Settled"

    reference = models.CharField(max_length=32, unique=True)
    session = models.ForeignKey(
        MarketSession, on_delete=models.PROTECT, null=True, blank=True, related_name="contracts"
    )
    clearing_run = models.ForeignKey(
        ClearingRun, on_delete=models.PROTECT, null=True, blank=True, related_name="contracts"
    )
    request = models.ForeignKey(FlexRequest, on_delete=models.PROTECT, related_name="contracts")
    offer = models.ForeignKey(FlexOffer, on_delete=models.PROTECT, related_name="contracts")
    buyer = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="purchase_contracts")
    seller = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="sale_contracts")
    grid_location = models.ForeignKey(GridLocation, on_delete=models.PROTECT, related_name="contracts")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="contracts")
    direction = models.CharField(max_length=4, choices=Direction.choices)
    ptu_start = models.DateTimeField()
    quantities_kw = models.JSONField(help_text="Contracted kW per PTU (0 where nothing was bought)")
    prices = models.JSONField(help_text="Price per PTU (EUR/MWh or EUR/MW/h) as strings of decimals")
    # The offer's cleared reactive power (network-aware sessions; one contract per offer carries it, the others
    # and plain contracts hold empty lists): kVAr per PTU (+ injected, - absorbed) and the Q-LMP it is paid.
    reactive_kvar = models.JSONField(
        default=list, blank=True, help_text="Cleared kVAr per PTU (+ injected, - absorbed); empty: none"
    )
    reactive_prices = models.JSONField(
        default=list, blank=True, help_text="Q-LMP per PTU (EUR/Mvarh) as strings of decimals"
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["seller", "ptu_start"]), models.Index(fields=["buyer", "ptu_start"])]

    def __str__(self) -> str:
        return self.reference

    @property
    def energy_kwh(self) -> float:
        return sum(self.quantities_kw) / 4

    @property
    def delivery_window(self) -> tuple[datetime, datetime] | None:
        """(start of the first PTU with kW, end of the last): an auction's contract spans its whole delivery day
        with zeros outside what was bought; None when nothing was."""
        active = [i for i, kw in enumerate(self.quantities_kw) if kw]
        if not active:
            return None
        return self.ptu_start + active[0] * timedelta(minutes=15), self.ptu_start + (
            active[-1] + 1
        ) * timedelta(minutes=15)

    @property
    def value_eur(self) -> Decimal:
        """What the contract is worth as traded: kW x price x 1/4 h / 1000 per PTU, plus its reactive power's
        kVAr x Q-LMP x 1/4 h / 1000 (docs/network.md, "Paying reactive power"), exact from the stored values,
        rounded once, half up to the cent, as statements round."""
        return (self._active_total() + self._reactive_total()).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    @property
    def reactive_value_eur(self) -> Decimal:
        """The reactive part of `value_eur` alone, to the cent (0 for a contract without reactive power)."""
        return self._reactive_total().quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def reactive_kvarh(self) -> float:
        """kVArh moved either way (|kVAr| x 1/4 h summed over PTUs)."""
        return sum(abs(kvar) for kvar in self.reactive_kvar) / 4

    def _active_total(self) -> Decimal:
        total = sum(
            (
                Decimal(repr(kw)) * Decimal(price)
                for kw, price in zip(self.quantities_kw, self.prices, strict=True)
            ),
            Decimal(0),
        )
        return total / 4000

    def _reactive_total(self) -> Decimal:
        # kVAr and the Q-LMP carry the same sign whenever reactive power clears (the seller is paid for moving
        # it the way the network values), so kVAr x Q-LMP is the payment, never negative.
        total = sum(
            (
                Decimal(repr(kvar)) * Decimal(price)
                for kvar, price in zip(self.reactive_kvar, self.reactive_prices, strict=True)
            ),
            Decimal(0),
        )
        return total / 4000

    @property
    def average_price(self) -> Decimal | None:
        """EUR/MWh over the contract's energy (volume-weighted), to the cent; None for an empty contract."""
        energy = sum((Decimal(repr(kw)) for kw in self.quantities_kw), Decimal(0)) / 4000
        if not energy:
            return None
        return (self._active_total() / energy).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class CapacityReservation(models.Model):
    """The capacity ledger: kW of an asset held per PTU and direction by open offers and standing contracts.

    Maintained by the services that reserve and release capacity (offers, fills, cancellations, expiry, clearing
    and re-runs), so the capability check is one indexed read. Availability agreements are added on the fly.
    """

    asset = models.ForeignKey(FlexAsset, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=4, choices=Direction.choices)
    ptu_start = models.DateTimeField()
    reserved_kw = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["asset", "direction", "ptu_start"], name="one_ledger_row_per_ptu")
        ]


class AvailabilityAgreement(models.Model):
    """A long-term agreement: the ESP holds capacity for the DSO; offers are generated each session."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed by the DSO"
        ACTIVE = "active", "Accepted by the ESP"
        DECLINED = "declined", "Declined"
        ENDED = "ended", "Ended"

    dso = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="agreements_bought")
    esp = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="agreements_sold")
    grid_location = models.ForeignKey(GridLocation, on_delete=models.PROTECT, related_name="agreements")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="agreements")
    asset = models.ForeignKey(FlexAsset, on_delete=models.PROTECT, null=True, blank=True)
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, null=True, blank=True)
    capacity_kw = models.DecimalField(
        max_digits=12, decimal_places=3, validators=[MinValueValidator(Decimal("0"))]
    )
    availability_price = models.DecimalField(
        max_digits=12, decimal_places=4, help_text="EUR/MW/h paid for holding capacity"
    )
    activation_price = models.DecimalField(
        max_digits=12, decimal_places=4, help_text="EUR/MWh of the generated offers"
    )
    windows = models.JSONField(
        default=list, help_text='[{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}] local time'
    )
    valid_from = models.DateField()
    valid_to = models.DateField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PROPOSED)
    generation_error = models.TextField(
        blank=True, help_text="Why the last offer generation for this agreement failed (empty: it worked)"
    )
    generation_failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-valid_from"]


class ClearingReplay(LeasedRun):
    """A what-if re-clearing of a cleared session in a sandbox (FLEXGRID AFAT-RQT_05): no contracts, no order
    changes; the session's gate-closure orders are cleared as they were and with the requested changes, and
    both summaries are stored side by side. A leased run (flexmarket/runs.py)."""

    session = models.ForeignKey(MarketSession, on_delete=models.PROTECT, related_name="replays")
    base_run = models.ForeignKey(ClearingRun, on_delete=models.PROTECT, related_name="replays")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="replays")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Network(models.TextChoices):
        AS_CLEARED = "as_cleared", "As the session was cleared"
        ON = "on", "On: cleared on the DSO's network (D-LMP)"
        OFF = "off", "Off: zone by zone, without the network"

    pricing_rule = models.CharField(max_length=20)
    network = models.CharField(
        max_length=10,
        choices=Network.choices,
        default=Network.AS_CLEARED,
        help_text="Clear the changed session on the DSO's network or without it (issue 11 item 7)",
    )
    removed_zones = models.ManyToManyField(GridLocation, blank=True, related_name="+")
    price_cap = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Offers above it (EUR/MWh) left out"
    )
    baseline = models.JSONField(null=True, blank=True, help_text="The session re-cleared as it was")
    result = models.JSONField(null=True, blank=True, help_text="The session cleared with the changes")
    reproduced = models.BooleanField(
        null=True, help_text="The unchanged re-clearing matched the stored run (welfare, volume, prices)"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Replay #{self.pk} of {self.session}"
