"""The grid lists' tables and filters (django-tables2, django-filter): assets, portfolios, network models and
forecast runs; sortable, paginated, exportable to CSV and XLSX with plain values."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from flexmarket.filters import delivery_day_range
from flexmarket.localtime import moment_label
from flexmarket.runs import RunState
from flexmarket.tables import RIGHT_WIDE_ONLY, WIDE_ONLY
from flexmarket.templatetags.units import quantity
from grid.models import FlexAsset, ForecastRun, NetworkModel, Portfolio

PREQUALIFICATION_TAGS = {"approved": "is-success", "pending": "is-warning"}
RUN_TAGS = {"succeeded": "is-success", "failed": "is-danger"}
NUMBER = {"td": {"class": "has-text-right"}, "th": {"class": "has-text-right"}}


class AssetTable(tables.Table):
    name = tables.Column(verbose_name="Asset")
    owner = tables.Column(accessor="owner__legal_name", verbose_name="Owner")
    connection_ean = tables.Column(verbose_name="EAN")
    asset_type = tables.Column(verbose_name="Type")
    zone = tables.Column(accessor="grid_location__name", verbose_name="Zone", default="outside every zone")
    max_up_kw = tables.Column(verbose_name="Up kW", attrs={"td": {"class": "has-text-right"}})
    max_down_kw = tables.Column(verbose_name="Down kW", attrs={"td": {"class": "has-text-right"}})
    prequalification = tables.Column(verbose_name="Prequalification")

    class Meta:
        model = FlexAsset
        fields = ()
        sequence = (
            "name", "owner", "connection_ean", "asset_type", "zone", "max_up_kw", "max_down_kw", "prequalification",
        )  # fmt: skip
        attrs = {"class": "table is-fullwidth is-narrow is-striped", "data-testid": "asset-table"}
        order_by = ("name",)
        empty_text = "No assets match."

    def render_name(self, value, record):
        return format_html('<a href="{}">{}</a>', reverse("grid:asset-detail", args=[record.pk]), value)

    def render_max_up_kw(self, value):
        return quantity(value)

    def render_max_down_kw(self, value):
        return quantity(value)

    def value_max_up_kw(self, value):
        return value

    def value_max_down_kw(self, value):
        return value

    def render_prequalification(self, record):
        css = PREQUALIFICATION_TAGS.get(record.prequalification, "is-danger")
        reason = (
            format_html('<br><span class="is-size-7">{}</span>', record.prequalification_reason)
            if record.prequalification_reason
            else ""
        )
        return format_html(
            '<span class="tag {} is-light">{}</span>{}', css, record.get_prequalification_display(), reason
        )

    # Exports carry plain values (codes, numbers).
    def value_name(self, value):
        return value

    def value_asset_type(self, record):
        return record.asset_type

    def value_prequalification(self, record):
        return record.prequalification


class AssetFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name, EAN or owner")
    asset_type = django_filters.ChoiceFilter(choices=FlexAsset.AssetType.choices, empty_label="Any type")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    prequalification = django_filters.ChoiceFilter(
        choices=FlexAsset.Prequalification.choices, empty_label="Any prequalification"
    )

    class Meta:
        model = FlexAsset
        fields = ["q", "asset_type", "grid_location", "prequalification"]

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(connection_ean__icontains=value)
            | Q(owner__legal_name__icontains=value)
        )


class PrequalificationTable(AssetTable):
    """The DSO's prequalification queue: the asset columns, the checklist's progress and the decision form (not
    exported). Without a `?sort=` the queue's own order holds: pending assets first, oldest first."""

    # A phone keeps the asset, its zone, the checklist, the state and the decision (the rest stays in exports).
    owner = tables.Column(accessor="owner__legal_name", verbose_name="Owner", attrs=WIDE_ONLY)
    connection_ean = tables.Column(verbose_name="EAN", attrs=WIDE_ONLY)
    max_up_kw = tables.Column(verbose_name="Up kW", attrs=RIGHT_WIDE_ONLY)
    max_down_kw = tables.Column(verbose_name="Down kW", attrs=RIGHT_WIDE_ONLY)
    checklist = tables.Column(accessor="mandatory_checked", verbose_name="Checklist")
    decision = tables.Column(
        empty_values=(), orderable=False, verbose_name="Decision", exclude_from_export=True
    )

    class Meta(AssetTable.Meta):
        sequence = (
            "name", "owner", "connection_ean", "zone", "max_up_kw", "max_down_kw", "checklist", "prequalification",
            "decision",
        )  # fmt: skip
        exclude = ("asset_type",)
        attrs = {"class": "table is-fullwidth is-narrow is-striped", "data-testid": "prequalification-table"}
        row_attrs = {"data-testid": "prequalification-row"}
        order_by = ()
        empty_text = "No assets in your zones match."

    def __init__(self, *args, mandatory: int, csrf_token: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.mandatory, self.csrf_token = mandatory, csrf_token

    def render_checklist(self, value, record):
        url = reverse("grid:asset-detail", args=[record.pk]) + "#checklist"
        return format_html(
            '<span data-testid="checklist-{}"><a href="{}">{} / {} required</a></span>',
            record.pk,
            url,
            value,
            self.mandatory,
        )

    def value_checklist(self, value):
        return value

    def render_decision(self, record):
        buttons = {
            "approve": ("is-success", record.prequalification != FlexAsset.Prequalification.APPROVED),
            "reject": ("is-danger is-light", record.prequalification == FlexAsset.Prequalification.PENDING),
            "suspend": (
                "is-warning is-light",
                record.prequalification == FlexAsset.Prequalification.APPROVED,
            ),
        }
        shown = format_html_join(
            "",
            '<div class="control"><button class="button is-small {}" name="decision" value="{}"'
            ' data-testid="{}-{}">{}</button></div>',
            (
                (css, name, name, record.pk, name.capitalize())
                for name, (css, show) in buttons.items()
                if show
            ),
        )
        return format_html(
            '<form method="post" action="{}" class="field has-addons">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<div class="control"><input class="input is-small" name="reason" placeholder="reason" aria-label="Reason"'
            ' style="min-width:8rem"></div>{}</form>',
            reverse("grid:prequalification-decide", args=[record.pk]),
            self.csrf_token,
            shown,
        )


class PortfolioTable(tables.Table):
    """Portfolios with their summed capabilities (annotated by selectors.portfolios_with_capabilities)."""

    name = tables.Column(verbose_name="Portfolio")
    owner = tables.Column(accessor="owner__legal_name", verbose_name="Owner")
    zone = tables.Column(accessor="grid_location__name", verbose_name="Zone")
    asset_count = tables.Column(verbose_name="Assets", attrs=NUMBER)
    max_up_kw = tables.Column(verbose_name="Up kW", attrs=NUMBER)
    max_down_kw = tables.Column(verbose_name="Down kW", attrs=NUMBER)
    energy_capacity_kwh = tables.Column(verbose_name="kWh", attrs=NUMBER)

    class Meta:
        model = Portfolio
        fields = ()
        sequence = ("name", "owner", "zone", "asset_count", "max_up_kw", "max_down_kw", "energy_capacity_kwh")
        attrs = {"class": "table is-fullwidth is-narrow is-striped", "data-testid": "portfolio-table"}
        order_by = ("name",)
        empty_text = "No portfolios match."

    def render_max_up_kw(self, value):
        return quantity(value)

    def render_max_down_kw(self, value):
        return quantity(value)

    def render_energy_capacity_kwh(self, value):
        return quantity(value)

    # Exports carry the numbers as they are (render_ would format them).
    def value_max_up_kw(self, value):
        return value

    def value_max_down_kw(self, value):
        return value

    def value_energy_capacity_kwh(self, value):
        return value


class PortfolioFilter(django_filters.FilterSet):
    # `q`, not `name`: the create form beside the table has a `name` field (and its id_name).
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")

    class Meta:
        model = Portfolio
        fields = ["q", "grid_location"]

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones


class NetworkModelTable(tables.Table):
    name = tables.Column(verbose_name="Model", order_by=("name", "-version"))
    source = tables.Column()
    bus_count = tables.Column(verbose_name="Buses", attrs=NUMBER)
    line_count = tables.Column(verbose_name="Lines", attrs=NUMBER)
    created_at = tables.Column(verbose_name="Loaded")

    class Meta:
        model = NetworkModel
        fields = ()
        sequence = ("name", "source", "bus_count", "line_count", "created_at")
        attrs = {"class": "table is-fullwidth is-narrow is-striped", "data-testid": "network-table"}
        order_by = ("-created_at",)
        empty_text = "No network model matches."

    def render_name(self, record):
        return format_html('<a href="{}">{}</a>', reverse("grid:network-detail", args=[record.pk]), record)

    def render_created_at(self, value):
        return moment_label(value)

    def value_name(self, record):
        return str(record)

    def value_created_at(self, value):
        return value.isoformat()  # exports keep the UTC instant with its offset


class NetworkModelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or source")

    class Meta:
        model = NetworkModel
        fields = ["q"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(source__icontains=value))


class ForecastRunTable(tables.Table):
    id = tables.Column(verbose_name="Forecast")
    delivery_day = tables.DateColumn(verbose_name="Day", format="Y-m-d")
    state = tables.Column()
    congested_ptus = tables.Column(verbose_name="Congested PTUs", default="—", attrs=NUMBER)
    max_line_loading_percent = tables.Column(verbose_name="Max loading %", default="—", attrs=NUMBER)
    voltage = tables.Column(
        accessor="min_voltage_pu", verbose_name="V min–max p.u.", default="—", attrs=NUMBER
    )
    created_at = tables.Column(verbose_name="Requested")

    class Meta:
        model = ForecastRun
        fields = ()
        sequence = (
            "id", "delivery_day", "state", "congested_ptus", "max_line_loading_percent", "voltage", "created_at",
        )  # fmt: skip
        attrs = {"class": "table is-fullwidth is-narrow", "data-testid": "forecast-runs"}
        order_by = ("-created_at",)
        empty_text = "No forecast matches."

    def render_id(self, value):
        return format_html('<a href="{}">#{}</a>', reverse("grid:forecast-detail", args=[value]), value)

    def render_delivery_day(self, value, record):
        if record.load_scaling == 1 and record.generation_scaling == 1:
            return f"{value:%Y-%m-%d}"
        return format_html(
            '{} <span class="is-size-7">(load ×{}, gen ×{})</span>',
            f"{value:%Y-%m-%d}",
            record.load_scaling,
            record.generation_scaling,
        )

    def render_state(self, record):
        css = RUN_TAGS.get(record.state, "is-info")
        return format_html('<span class="tag {} is-light">{}</span>', css, record.get_state_display())

    def render_congested_ptus(self, value, record):
        return f"{value} / {record.ptu_count}" if record.ptu_count else value

    def render_max_line_loading_percent(self, value):
        return f"{value:.1f}"

    def render_voltage(self, record):
        return f"{record.min_voltage_pu:.3f}–{record.max_voltage_pu:.3f}"

    def render_created_at(self, value):
        return moment_label(value)

    # Exports carry plain values: codes, numbers, ISO dates and UTC instants.
    def value_id(self, value):
        return value

    def value_delivery_day(self, value):
        return value.isoformat()

    def value_state(self, record):
        return record.state

    def value_congested_ptus(self, value):
        return value

    def value_max_line_loading_percent(self, value):
        return value

    def value_voltage(self, record):
        return f"{record.min_voltage_pu}–{record.max_voltage_pu}"

    def value_created_at(self, value):
        return value.isoformat()


class ForecastRunFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=RunState.choices, empty_label="Any state")
    delivery_from, delivery_to = delivery_day_range("delivery_day")

    class Meta:
        model = ForecastRun
        fields = ["state", "delivery_from", "delivery_to"]
