"""Tables of the trading pages (django-tables2): sortable, paginated, exportable to CSV and XLSX."""

from __future__ import annotations

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from flexmarket.localtime import clock_label, display_zone
from flexmarket.templatetags.units import eur, quantity
from trading.models import Contract


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


ORDER_STATE_TAGS = {"filled": "is-success", "active": "is-info", "partially_filled": "is-warning"}
