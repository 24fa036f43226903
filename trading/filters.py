"""Filters of the trading list pages (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from flexmarket.filters import delivery_day_range
from trading.models import AvailabilityAgreement, Contract, Direction, MarketSession, OrderMode, OrderState


class ContractFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Reference or counterparty")
    state = django_filters.ChoiceFilter(choices=Contract.State.choices, empty_label="Any state")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    delivery_from, delivery_to = delivery_day_range("session__delivery_day")

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


class OrderFilter(django_filters.FilterSet):
    """My FlexRequests / My FlexOffers: by number or own reference, state, zone, mode and delivery days."""

    q = django_filters.CharFilter(method="search", label="Number or your reference")
    state = django_filters.ChoiceFilter(choices=OrderState.choices, empty_label="Any state")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    order_mode = django_filters.ChoiceFilter(choices=OrderMode.choices, empty_label="Any mode", label="Mode")
    delivery_from, delivery_to = delivery_day_range("session__delivery_day")

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones

    def search(self, queryset, name, value):
        value = value.strip().lstrip("#")
        match = Q(external_id__icontains=value)
        if value.isdigit():
            match |= Q(pk=int(value))
        return queryset.filter(match)


def _product_filter() -> django_filters.ModelChoiceFilter:
    """Products by name and market ("Congestion relief (up) · NL local flex"), not by their codes."""
    return django_filters.ModelChoiceFilter(queryset=None, empty_label="Any product")


def _products_named(filterset: django_filters.FilterSet, products) -> None:
    filterset.filters["product"].queryset = products
    filterset.form.fields["product"].label_from_instance = lambda p: f"{p.name} · {p.market.name}"


class SessionFilter(django_filters.FilterSet):
    """Market sessions: by product, state and delivery days."""

    product = _product_filter()
    state = django_filters.ChoiceFilter(choices=MarketSession.State.choices, empty_label="Any state")
    delivery_from, delivery_to = delivery_day_range("delivery_day")

    def __init__(self, *args, products=None, **kwargs):
        super().__init__(*args, **kwargs)
        _products_named(self, products)


class OpportunityFilter(django_filters.FilterSet):
    """Opportunities: by zone, delivery days and direction."""

    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    delivery_from, delivery_to = delivery_day_range("session__delivery_day")
    direction = django_filters.ChoiceFilter(choices=Direction.choices, empty_label="Either direction")

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones


class AgreementFilter(django_filters.FilterSet):
    """Availability agreements: by counterparty (DSO or ESP name), state, zone and product."""

    q = django_filters.CharFilter(method="search", label="Counterparty")
    state = django_filters.ChoiceFilter(choices=AvailabilityAgreement.State.choices, empty_label="Any state")
    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    product = _product_filter()

    def __init__(self, *args, zones=None, products=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones
        _products_named(self, products)

    def search(self, queryset, name, value):
        return queryset.filter(Q(dso__legal_name__icontains=value) | Q(esp__legal_name__icontains=value))


class ActivationFilter(django_filters.FilterSet):
    """A BRP's activations: by zone and delivery days."""

    grid_location = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any zone", label="Zone")
    delivery_from, delivery_to = delivery_day_range("session__delivery_day")

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["grid_location"].queryset = zones
