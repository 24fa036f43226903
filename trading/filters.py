"""Filters of the trading list pages (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from trading.models import Contract


class ContractFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Reference or counterparty")
    state = django_filters.ChoiceFilter(choices=Contract.State.choices, empty_label="Any state")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    delivery_from = django_filters.DateFilter(
        field_name="session__delivery_day", lookup_expr="gte", label="Delivery from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip
    delivery_to = django_filters.DateFilter(
        field_name="session__delivery_day", lookup_expr="lte", label="Delivery to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )  # fmt: skip

    class Meta:
        model = Contract
        fields = ["q", "state", "grid_location", "delivery_from", "delivery_to"]

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(reference__icontains=value)
            | Q(buyer__legal_name__icontains=value)
            | Q(seller__legal_name__icontains=value)
        )
