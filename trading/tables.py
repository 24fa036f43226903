"""Tables of the trading pages (django-tables2): sortable, paginated, exportable to CSV and XLSX."""

from __future__ import annotations

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from flexmarket.templatetags.units import eur, quantity
from trading.models import Contract

EXPORT_FORMATS = ("csv", "xlsx")


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
