"""Tables of the trading pages (django-tables2): sortable, paginated, exportable to CSV and XLSX."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil

from flexmarket.localtime import clock_label, display_zone, moment_label
from flexmarket.tables import RIGHT, WIDE_ONLY
from flexmarket.templatetags.units import eur, quantity
from trading.models import AvailabilityAgreement, Contract, FlexRequest, MarketSession
from trading.selectors import perimeter_schedule

TABLE_CSS = "table is-fullwidth is-striped is-narrow"


class ContractTable(tables.Table):
    """Contracts with their money in sight. Energy, price and value come from the stored per-PTU lists, so they
    are shown and exported but not sortable (sorting runs in the database)."""

    reference = tables.Column()
    buyer = tables.Column(accessor="buyer__legal_name", verbose_name="Buyer")
    seller = tables.Column(accessor="seller__legal_name", verbose_name="Seller")
    grid_location = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    delivery_day = tables.DateColumn(
        accessor="session__delivery_day", verbose_name="Delivery", format="Y-m-d", default="—"
    )
    energy = tables.Column(
        accessor="energy_kwh", verbose_name="kWh", orderable=False, attrs={"td": {"class": "has-text-right"}}
    )
    average_price = tables.Column(
        verbose_name="Avg EUR/MWh", orderable=False, attrs={"td": {"class": "has-text-right"}}
    )
    value = tables.Column(
        accessor="value_eur",
        verbose_name="Value EUR",
        orderable=False,
        attrs={"td": {"class": "has-text-right", "data-testid": "contract-value"}},
    )
    state = tables.Column()
    created_at = tables.DateTimeColumn(verbose_name="Made", format="Y-m-d H:i T")

    class Meta:
        model = Contract
        fields = ()
        sequence = (
            "reference", "buyer", "seller", "grid_location", "delivery_day", "energy", "average_price", "value",
            "state", "created_at",
        )  # fmt: skip
        attrs = {"class": "table is-fullwidth is-striped is-narrow", "data-testid": "contract-table"}
        order_by = ("-created_at",)
        empty_text = "No contracts match."

    def render_reference(self, value, record):
        return format_html('<a href="{}">{}</a>', reverse("trading:contract-detail", args=[record.pk]), value)

    def render_energy(self, value):
        return quantity(value)

    def render_average_price(self, value):
        return eur(value)

    def render_value(self, value):
        return eur(value)

    def render_state(self, record):
        return format_html('<span class="tag is-light">{}</span>', record.get_state_display())

    # Exports carry plain values (numbers as numbers, the state's code).
    def value_reference(self, value):
        return value

    def value_state(self, record):
        return record.state

    def value_energy(self, value):
        return value

    def value_average_price(self, value):
        return value

    def value_value(self, value):
        return value


class OrderTable(tables.Table):
    """My FlexRequests / My FlexOffers. The first PTU on the local clock; quantities from the per-PTU list (shown
    and exported, not sortable); Revoke only where the owner may still revoke (never exported)."""

    id = tables.Column(verbose_name="#")
    grid_location = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    delivery_day = tables.DateColumn(
        accessor="session__delivery_day", verbose_name="Delivery", format="Y-m-d", default="—"
    )
    ptu_start = tables.Column(verbose_name="First PTU")
    ptus = tables.Column(accessor="ptu_count", verbose_name="PTUs", orderable=False)
    kw = tables.Column(
        accessor="quantities_kw",
        verbose_name="kW (max)",
        orderable=False,
        attrs={"td": {"class": "has-text-right"}},
    )
    price = tables.Column(verbose_name="Price", attrs={"td": {"class": "has-text-right"}})
    order_mode = tables.Column(verbose_name="Mode")
    state = tables.Column()
    external_id = tables.Column(verbose_name="Your reference", default="")
    revoke = tables.Column(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)

    class Meta:
        fields = ()
        sequence = (
            "id", "grid_location", "delivery_day", "ptu_start", "ptus", "kw", "price", "order_mode", "state",
            "external_id", "revoke",
        )  # fmt: skip
        attrs = {"class": "table is-fullwidth is-striped is-narrow", "data-testid": "order-table"}
        order_by = ("-id",)
        empty_text = "Nothing yet."

    def __init__(self, *args, kind: str, csrf_token: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.kind, self.csrf_token = kind, csrf_token

    def render_id(self, value, record):
        tso = format_html(' <span class="tag is-tso">TSO</span>') if getattr(record, "is_tso", False) else ""
        return format_html("{}{}", value, tso)

    def render_ptu_start(self, value):
        return clock_label(value, display_zone())

    def value_ptu_start(self, value):
        return value.isoformat()  # exports keep the UTC instant with its offset

    def render_kw(self, value):
        return quantity(max(value))

    def value_kw(self, value):
        return max(value)

    def render_price(self, value):
        return eur(value)

    def render_order_mode(self, record):
        return record.order_mode.replace("_", " ")  # the short name; the form explains each mode

    def value_order_mode(self, record):
        return record.order_mode

    def render_state(self, record):
        css = ORDER_STATE_TAGS.get(record.state, "")
        return format_html('<span class="tag is-light {}">{}</span>', css, record.get_state_display())

    def value_state(self, record):
        return record.state

    def render_revoke(self, record):
        if not record.revocable:
            return ""
        url = reverse("trading:order-cancel", args=[self.kind, record.pk])
        return format_html(
            '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<button class="button is-small is-light" type="submit">Revoke</button></form>',
            url,
            self.csrf_token,
        )

    def value_id(self, value):
        return value

    def value_price(self, value):
        return value


ORDER_STATE_TAGS = {"filled": "is-success", "active": "is-info", "partially_filled": "is-warning"}


def _state_tag(record, css: str = "") -> str:
    return format_html('<span class="tag is-light {}">{}</span>', css, record.get_state_display())


def _direction(record) -> str:
    """'Up' or 'Down': the choice's label without its explanation."""
    return record.get_direction_display().split(" (")[0]


def _instant(value) -> str:
    """Exports keep the UTC instant with its offset."""
    return value.isoformat() if value else ""


class SessionTable(tables.Table):
    """Market sessions. Gate closure on the market's clock with its zone, and how long until it closes."""

    product = tables.Column(accessor="product__name", verbose_name="Product")
    market = tables.Column(accessor="product__market__name", verbose_name="Market", attrs=WIDE_ONLY)
    delivery_day = tables.DateColumn(verbose_name="Delivery day", format="Y-m-d")
    clearing_rule = tables.Column(
        accessor="product__clearing_rule", verbose_name="Clearing", orderable=False, attrs=WIDE_ONLY
    )
    gate_closure = tables.Column(verbose_name="Gate closure")
    state = tables.Column()

    class Meta:
        model = MarketSession
        fields = ()
        sequence = ("product", "market", "delivery_day", "clearing_rule", "gate_closure", "state")
        attrs = {"class": TABLE_CSS, "data-testid": "session-table"}
        order_by = ("-delivery_day", "product")
        empty_text = (
            "No sessions match. With none at all: the FMO configures markets and products in the admin; "
            "sessions open automatically."
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = timezone.now()

    def render_product(self, value, record):
        return format_html('<a href="{}">{}</a>', reverse("trading:session-detail", args=[record.pk]), value)

    def render_clearing_rule(self, record):
        return record.product.get_clearing_rule_display()

    def render_gate_closure(self, value, record):
        label = moment_label(value, ZoneInfo(record.product.market.time_zone))
        if value <= self.now:
            return label
        return format_html(
            '{} <span class="tag is-light" data-testid="gate-countdown">in {}</span>',
            label,
            timeuntil(value, self.now),
        )

    def value_gate_closure(self, value):
        return _instant(value)

    def render_state(self, record):
        return _state_tag(record)

    def value_state(self, record):
        return record.state

    def value_product(self, value):
        return value

    def value_clearing_rule(self, record):
        return record.product.clearing_rule


class OpportunityTable(tables.Table):
    """Open FlexRequests an ESP may answer; TSO requests are marked (and listed first unless sorted otherwise)."""

    grid_location = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    buyer = tables.Column(accessor="owner__legal_name", verbose_name="Buyer")
    delivery_day = tables.DateColumn(
        accessor="session__delivery_day", verbose_name="Delivery", format="Y-m-d"
    )
    product = tables.Column(accessor="product__name", verbose_name="Product", attrs=WIDE_ONLY)
    direction = tables.Column(attrs=WIDE_ONLY)
    ptu_start = tables.Column(verbose_name="From")
    ptus = tables.Column(accessor="quantities_kw", verbose_name="PTUs", orderable=False, attrs=WIDE_ONLY)
    kw = tables.Column(accessor="remaining_kw", verbose_name="kW open (max)", orderable=False, attrs=RIGHT)
    price = tables.Column(verbose_name="Max price EUR/MWh", attrs=RIGHT)
    answer = tables.Column(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)

    class Meta:
        model = FlexRequest
        fields = ()
        sequence = (
            "grid_location", "buyer", "delivery_day", "product", "direction", "ptu_start", "ptus", "kw", "price",
            "answer",
        )  # fmt: skip
        attrs = {"class": TABLE_CSS, "data-testid": "opportunity-table"}
        empty_text = "No open requests in your zones match."

    def render_buyer(self, value, record):
        tso = format_html(' <span class="tag is-tso">TSO</span>') if record.is_tso else ""
        return format_html("{}{}", value, tso)

    def render_direction(self, record):
        return _direction(record)

    def value_direction(self, record):
        return record.direction

    def render_ptu_start(self, value):
        return clock_label(value, display_zone())

    def value_ptu_start(self, value):
        return _instant(value)

    def render_ptus(self, value):
        return len(value)

    def value_ptus(self, value):
        return len(value)

    def render_kw(self, value):
        return quantity(max(value, default=0))

    def value_kw(self, value):
        return max(value, default=0)

    def render_price(self, value):
        return eur(value)

    def render_answer(self, record):
        return format_html(
            '<a class="button is-small is-primary" href="{}?request={}" data-testid="answer-{}">Answer with an offer</a>',
            reverse("trading:my-offers"),
            record.pk,
            record.pk,
        )

    def value_buyer(self, value):
        return value

    def value_price(self, value):
        return value


class AgreementTable(tables.Table):
    """Availability agreements; the ESP they are proposed to accepts or declines them in the row."""

    dso = tables.Column(accessor="dso__legal_name", verbose_name="DSO")
    esp = tables.Column(accessor="esp__legal_name", verbose_name="ESP")
    grid_location = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    product = tables.Column(accessor="product__name", verbose_name="Product")
    capacity_kw = tables.Column(verbose_name="kW", attrs=RIGHT)
    availability_price = tables.Column(verbose_name="EUR/MW/h", attrs=RIGHT)
    activation_price = tables.Column(verbose_name="EUR/MWh", attrs=RIGHT)
    windows = tables.Column(orderable=False, attrs=WIDE_ONLY)
    valid_from = tables.DateColumn(verbose_name="From", format="Y-m-d", attrs=WIDE_ONLY)
    valid_to = tables.DateColumn(verbose_name="To", format="Y-m-d", attrs=WIDE_ONLY)
    state = tables.Column()
    answer = tables.Column(empty_values=(), orderable=False, verbose_name="", exclude_from_export=True)

    class Meta:
        model = AvailabilityAgreement
        fields = ()
        sequence = (
            "dso", "esp", "grid_location", "product", "capacity_kw", "availability_price", "activation_price",
            "windows", "valid_from", "valid_to", "state", "answer",
        )  # fmt: skip
        attrs = {"class": TABLE_CSS, "data-testid": "agreement-table"}
        order_by = ("-valid_from",)
        empty_text = "No agreements match."

    def __init__(self, *args, answering_esp_id: int | None = None, csrf_token: str = "", **kwargs):
        """`answering_esp_id`: the organisation whose proposed agreements get Accept / Decline (an ESP's own)."""
        super().__init__(*args, **kwargs)
        self.answering_esp_id, self.csrf_token = answering_esp_id, csrf_token

    def render_capacity_kw(self, value):
        return quantity(value)

    def render_availability_price(self, value):
        return eur(value)

    def render_activation_price(self, value):
        return eur(value)

    def render_windows(self, value):
        return format_html_join(
            " ", "{}–{} ({})", ((w["start"], w["end"], ",".join(map(str, w["days"]))) for w in value or [])
        )

    def value_windows(self, value):
        return "; ".join(f"{w['start']}-{w['end']} ({','.join(map(str, w['days']))})" for w in value or [])

    def render_state(self, record):
        error = (
            format_html(
                '<p class="has-text-danger is-size-7" data-testid="agreement-error">Offer generation failed {}: {}</p>',
                moment_label(record.generation_failed_at) if record.generation_failed_at else "",
                record.generation_error,
            )
            if record.generation_error
            else ""
        )
        return format_html("{}{}", _state_tag(record), error)

    def value_state(self, record):
        return record.state

    def render_answer(self, record):
        if record.state != AvailabilityAgreement.State.PROPOSED or record.esp_id != self.answering_esp_id:
            return ""
        return format_html(
            '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<div class="buttons are-small"><button class="button is-success" name="answer" value="accept" '
            'data-testid="agreement-accept-{}">Accept</button><button class="button is-light" name="answer" '
            'value="decline">Decline</button></div></form>',
            reverse("trading:agreement-answer", args=[record.pk]),
            self.csrf_token,
            record.pk,
        )

    def value_capacity_kw(self, value):
        return value

    def value_availability_price(self, value):
        return value

    def value_activation_price(self, value):
        return value


class ActivationTable(tables.Table):
    """A BRP's activations: only its connections' part of each contract (EANs, energy, peak), never a price."""

    reference = tables.Column(verbose_name="Contract")
    grid_location = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    direction = tables.Column(attrs=WIDE_ONLY)
    ptu_start = tables.Column(verbose_name="Delivery")
    eans = tables.Column(empty_values=(), orderable=False, verbose_name="Connections (EAN)")
    energy_kwh = tables.Column(empty_values=(), orderable=False, verbose_name="Energy kWh", attrs=RIGHT)
    peak_kw = tables.Column(empty_values=(), orderable=False, verbose_name="Peak kW", attrs=RIGHT)
    state = tables.Column()

    class Meta:
        model = Contract
        fields = ()
        sequence = (
            "reference",
            "grid_location",
            "direction",
            "ptu_start",
            "eans",
            "energy_kwh",
            "peak_kw",
            "state",
        )
        attrs = {"class": TABLE_CSS, "data-testid": "activation-table"}
        order_by = ("-ptu_start",)
        empty_text = "No activations in your perimeter match."

    def __init__(self, *args, brp_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.brp_id, self._parts = brp_id, {}

    def _part(self, record) -> tuple[list[str], list[float]]:
        """(EANs, kW per PTU) of the BRP's connections in this contract, worked out once per row."""
        if record.pk not in self._parts:
            self._parts[record.pk] = perimeter_schedule(contract=record, brp_id=self.brp_id)
        return self._parts[record.pk]

    def render_direction(self, record):
        return _direction(record)

    def value_direction(self, record):
        return record.direction

    def render_ptu_start(self, value, record):
        window = record.delivery_window
        if window is None:
            return moment_label(value)
        start, end = window
        return f"{moment_label(start)}–{clock_label(end, display_zone())}"  # the PTUs with kW, not the day

    def value_ptu_start(self, value, record):
        window = record.delivery_window
        return _instant(window[0] if window else value)

    def render_eans(self, record):
        return ", ".join(self._part(record)[0])

    def value_eans(self, record):
        return " ".join(self._part(record)[0])

    def value_energy_kwh(self, record):
        return round(sum(self._part(record)[1]) / 4, 3)

    def render_energy_kwh(self, record):
        return quantity(self.value_energy_kwh(record), 1)

    def value_peak_kw(self, record):
        return max(self._part(record)[1], default=0)

    def render_peak_kw(self, record):
        return quantity(self.value_peak_kw(record), 1)

    def render_state(self, record):
        return _state_tag(record)

    def value_state(self, record):
        return record.state
