"""What every list page does with its django-tables2 table: 25 rows a page, sorted by `?sort=`, or exported."""

from __future__ import annotations

from django.http import HttpResponse
from django_tables2 import RequestConfig
from django_tables2.export import TableExport

EXPORT_FORMATS = ("csv", "xlsx")
PER_PAGE = 25
RIGHT = {"th": {"class": "has-text-right"}, "td": {"class": "has-text-right"}}
WIDE_ONLY = {"th": {"class": "is-hidden-mobile"}, "td": {"class": "is-hidden-mobile"}}
"""Columns a phone leaves out (they stay in the exports)."""
RIGHT_WIDE_ONLY = {
    "th": {"class": "has-text-right is-hidden-mobile"},
    "td": {"class": "has-text-right is-hidden-mobile"},
}


def table_or_export(request, table, name: str) -> HttpResponse | None:
    """Configure `table` for the page; with `?_export=csv|xlsx`, the file of every row the filter keeps (columns
    marked `exclude_from_export` left out), named `<name>.<format>`."""
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    export = request.GET.get("_export")
    if export in EXPORT_FORMATS:
        return TableExport(export, table).response(f"{name}.{export}")
    return None
