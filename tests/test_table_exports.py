"""Exports carry plain values: every column a list page renders for people (`render_<name>`: links, tags, "1,234.50")
has an export value (`value_<name>`), unless the column is left out of exports. django-tables2 otherwise writes the
rendered text, HTML included, into the CSV and XLSX files."""

from __future__ import annotations

import django_tables2 as tables
import pytest

from accounts import tables as accounts_tables
from grid import tables as grid_tables
from settlement import tables as settlement_tables
from trading import tables as trading_tables

TABLES = [
    table
    for module in (accounts_tables, grid_tables, settlement_tables, trading_tables)
    for table in vars(module).values()
    if isinstance(table, type) and issubclass(table, tables.Table) and table.__module__ == module.__name__
]


def test_every_list_table_is_checked():
    assert len(TABLES) >= 12


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.__name__)
def test_every_rendered_column_has_a_plain_export_value(table):
    missing = [
        name
        for name, column in table.base_columns.items()
        if hasattr(table, f"render_{name}")
        and not hasattr(table, f"value_{name}")
        and not getattr(column, "exclude_from_export", False)
    ]
    assert missing == [], f"{table.__name__}: add value_<name> for {missing}"
