"""The asset list's table and filter (django-tables2, django-filter): sortable, paginated, exportable."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from flexmarket.tables import RIGHT_WIDE_ONLY, WIDE_ONLY
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
