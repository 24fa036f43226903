"""The asset list's table and filter (django-tables2, django-filter): sortable, paginated, exportable."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from flexmarket.templatetags.units import quantity
from grid.models import FlexAsset

PREQUALIFICATION_TAGS = {"approved": "is-success", "pending": "is-warning"}


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
