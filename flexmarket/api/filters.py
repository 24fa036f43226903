"""Query filters that never reveal whether another organisation's object exists.

django-filter validates a foreign-key filter (`?asset=7`) against every row of the related table, so an id
that exists elsewhere filtered to an empty 200 while a missing one answered 400: an existence oracle.
Here foreign keys filter by plain integer id; a foreign id and a missing one both give an empty page.
"""

from __future__ import annotations

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """Filters a relation by its integer id without checking that the id exists."""

    field_class = forms.IntegerField
    BIGINT = 2**63  # ids are 64-bit; a larger number names nothing (and would overflow SQLite)

    def filter(self, qs, value):
        if value is not None and not -self.BIGINT <= value < self.BIGINT:
            return qs.none()
        return super().filter(qs, value)


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.BooleanFilter):
    """`true`/`false` (or `1`/`0`); anything else is a 400 rather than silently ignored."""

    field_class = forms.TypedChoiceField
    TRUE, FALSE = ("true", "True", "1"), ("false", "False", "0")

    def __init__(self, *args, **kwargs):
        kwargs["widget"] = forms.TextInput  # django-filter's BooleanWidget turns unknown values into "unset"
        kwargs.setdefault("choices", [(value, value) for value in self.TRUE + self.FALSE])
        kwargs.setdefault("coerce", lambda value: value in self.TRUE)
        kwargs.setdefault("empty_value", None)
        super().__init__(*args, **kwargs)


class FilterSet(filters.FilterSet):
    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


class FilterBackend(filters.DjangoFilterBackend):
    """Also refuses a filter given with no value (`?state=`), which django-filter would silently ignore."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            empty = sorted(
                name
                for name in filterset_class.base_filters
                if name in request.query_params and not request.query_params.get(name, "").strip()
            )
            if empty:
                raise ValidationError({name: ["Give a value, or leave the parameter out."] for name in empty})
        return super().filter_queryset(request, queryset, view)
