"""Tables of the M&V pages (django-tables2): sortable, paginated, exportable to CSV and XLSX."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from flexmarket.filters import delivery_day_range
from flexmarket.templatetags.units import eur, quantity
from settlement.models import DeliveryVerification, SettlementPeriod, SettlementStatement

STATE_TAGS = {"verified": "is-success", "disputed": "is-danger"}
MONEY = {"td": {"class": "has-text-right"}, "th": {"class": "has-text-right"}}


class VerificationTable(tables.Table):
    contract = tables.Column(accessor="contract__reference", verbose_name="Contract")
    seller = tables.Column(accessor="contract__seller__legal_name", verbose_name="Seller")
    buyer = tables.Column(accessor="contract__buyer__legal_name", verbose_name="Buyer")
    zone = tables.Column(accessor="contract__grid_location__name", verbose_name="Zone")
    delivery_day = tables.DateColumn(
        accessor="contract__session__delivery_day", verbose_name="Delivery", format="Y-m-d", default="—"
    )
    method = tables.Column()
    contracted_kwh = tables.Column(verbose_name="Contracted kWh", attrs={"td": {"class": "has-text-right"}})
    delivered_kwh = tables.Column(
        verbose_name="Delivered kWh", default="—", attrs={"td": {"class": "has-text-right"}}
    )
    state = tables.Column()

    class Meta:
        model = DeliveryVerification
        fields = ()
        sequence = (
            "contract", "seller", "buyer", "zone", "delivery_day", "method", "contracted_kwh", "delivered_kwh",
            "state",
        )  # fmt: skip
        attrs = {"class": "table is-fullwidth is-striped is-narrow", "data-testid": "verification-table"}
        order_by = ("-delivery_day",)
        empty_text = (
            "No verified deliveries match: verification runs when a delivery day's meter data arrive."
        )

    def render_contract(self, value, record):
        url = reverse("settlement:verification-detail", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, value)

    def render_contracted_kwh(self, value):
        return quantity(value)

    def render_delivered_kwh(self, value):
        return quantity(value)

    def value_contracted_kwh(self, value):
        return value

    def value_delivered_kwh(self, value):
        return value

    def render_state(self, record):
        css = STATE_TAGS.get(record.state, "is-warning")
        return format_html('<span class="tag is-light {}">{}</span>', css, record.get_state_display())

    # Exports carry plain values (the reference, numbers as numbers, the state's code).
    def value_contract(self, value):
        return value

    def value_state(self, record):
        return record.state


class VerificationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Contract or counterparty")
    state = django_filters.ChoiceFilter(choices=DeliveryVerification.State.choices, empty_label="Any state")
    delivery_from, delivery_to = delivery_day_range("contract__session__delivery_day")

    class Meta:
        model = DeliveryVerification
        fields = ["q", "state", "delivery_from", "delivery_to"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(contract__reference__icontains=value)
            | Q(contract__buyer__legal_name__icontains=value)
            | Q(contract__seller__legal_name__icontains=value)
        )


class StatementTable(tables.Table):
    """Statements and invoices: money to the cent on the page, plain Decimal strings in exports."""

    period = tables.Column(
        accessor="period__name", verbose_name="Period", order_by=("period__start", "period__name")
    )
    organisation = tables.Column(accessor="organisation__legal_name", verbose_name="Organisation")
    kind = tables.Column()
    total_eur = tables.Column(verbose_name="Net EUR", attrs=MONEY)
    vat_eur = tables.Column(verbose_name="VAT EUR", attrs=MONEY)
    gross_eur = tables.Column(verbose_name="Gross EUR", orderable=False, attrs=MONEY)
    invoice = tables.Column(accessor="invoice__number", verbose_name="Invoice", default="—")

    class Meta:
        model = SettlementStatement
        fields = ()
        sequence = ("period", "organisation", "kind", "total_eur", "vat_eur", "gross_eur", "invoice")
        attrs = {"class": "table is-fullwidth is-striped is-narrow", "data-testid": "statement-table"}
        order_by = ("period",)
        empty_text = "No statements match: statements appear when the market operator computes a period."

    def render_period(self, value, record):
        return format_html(
            '{} <span class="tag is-light">{}</span>', value, record.period.get_state_display()
        )

    def render_organisation(self, value, record):
        url = reverse("settlement:statement-detail", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, value)

    def render_kind(self, record):
        return record.get_kind_display()

    def render_total_eur(self, value):
        return eur(value)

    def render_vat_eur(self, value):
        return eur(value)

    def render_gross_eur(self, value):
        return eur(value)

    # Exports carry plain values: amounts as Decimal strings ("-1234.50"), codes, no markup.
    def value_period(self, value):
        return value

    def value_organisation(self, value):
        return value

    def value_kind(self, record):
        return record.kind

    def value_total_eur(self, value):
        return str(value)

    def value_vat_eur(self, value):
        return str(value)

    def value_gross_eur(self, value):
        return str(value)

    def value_invoice(self, record):
        return record.invoice.number if hasattr(record, "invoice") else ""


class StatementFilter(django_filters.FilterSet):
    period = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any period")
    organisation = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any organisation")
    state = django_filters.ChoiceFilter(
        field_name="period__state", choices=SettlementPeriod.State.choices, empty_label="Any state",
        label="Period state",
    )  # fmt: skip

    class Meta:
        model = SettlementStatement
        fields = ["period", "organisation", "state"]

    def __init__(self, *args, periods, organisations=None, **kwargs):
        """`organisations`: who the FMO may pick; None drops the filter (everyone else sees only their own)."""
        super().__init__(*args, **kwargs)
        self.filters["period"].queryset = periods
        if organisations is None:
            del self.filters["organisation"]
        else:
            self.filters["organisation"].queryset = organisations
