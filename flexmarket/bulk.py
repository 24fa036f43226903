"""Bulk writes near the database's own speed: COPY on PostgreSQL, bulk_create elsewhere.

`insert_rows` writes plain rows: on PostgreSQL no model instances are built (at tens of thousands of rows that
is where the time went) and the COPY text is made by string joins, not per-value adapters. Rows get their
primary keys from the database but nothing is read back (callers that need ids read them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import connection, models

COPY_CHUNK_LINES = 20_000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format (None is \\N; lists and dicts are JSON; datetimes ISO 8601)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a bulk write")
        return value.isoformat()
    if isinstance(value, list | dict):
        value = json.dumps(value)
    return str(value).translate(_ESCAPES)


def copy_lines(table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """COPY already formatted lines (tab-separated, newline-terminated) into `table`, in chunks."""
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    statement = f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN"
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= COPY_CHUNK_LINES:
                copy.write("".join(chunk))
                chunk = []
        if chunk:
            copy.write("".join(chunk))


def copy_bigints(table: str, *columns: np.ndarray) -> None:
    """COPY integer columns (numpy arrays of one length, in the table's column order) into `table` as one binary
    stream built by numpy in one pass: no per-row Python."""
    fields = [("count", ">i2")]
    for number in range(len(columns)):
        fields += [(f"size{number}", ">i4"), (f"value{number}", ">i8")]
    rows = np.empty(len(columns[0]), dtype=fields)
    rows["count"] = len(columns)
    for number, column in enumerate(columns):
        rows[f"size{number}"] = 8
        rows[f"value{number}"] = column
    # PostgreSQL's binary COPY: signature, flags and header extension (zero), the rows, the -1 trailer.
    stream = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff"
    statement = f"COPY {connection.ops.quote_name(table)} FROM STDIN (FORMAT BINARY)"
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        copy.write(stream)


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence]) -> int:
    """Insert plain rows (values in `columns` order: field attnames, Python values) in one COPY on PostgreSQL
    or one bulk_create elsewhere; returns the number written."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000
        )
        return len(rows)
    # Fields not given take their model default (evaluated once per call), as bulk_create would give them.
    missing = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in columns]
    defaults = tuple(f.get_default() for f in missing)
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    copy_lines(
        model._meta.db_table,
        [by_attname[c] for c in columns] + [f.column for f in missing],
        ("\t".join(map(copy_text, (*row, *defaults))) + "\n" for row in rows),
    )
    return len(rows)
