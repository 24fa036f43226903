"""Filters shared by the list pages (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms


def delivery_day_range(field_name: str) -> tuple[django_filters.DateFilter, django_filters.DateFilter]:
    """ "Delivery from" and "Delivery to" on a date field, with the browser's date picker."""
    return tuple(
        django_filters.DateFilter(
            field_name=field_name,
            lookup_expr=lookup,
            label=label,
            widget=forms.DateInput(attrs={"type": "date"}),
        )
        for lookup, label in (("gte", "Delivery from"), ("lte", "Delivery to"))
    )
