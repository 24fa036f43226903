"""Bulk writes near the database's own speed: COPY on PostgreSQL, bulk_create elsewhere.

`bulk_insert` writes unsaved model instances without building one INSERT per batch in Python; the rows get their
primary keys from the database but the instances are not refreshed (callers that need ids read them back).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def bulk_insert(model: type[models.Model], objects: Sequence[models.Model]) -> int:
    """Insert `objects` (unsaved instances of `model`) in one COPY on PostgreSQL; returns the number written."""
    if not objects:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=2000)
        return len(objects)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    statement = f"COPY {table} ({columns}) FROM STDIN"
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        for obj in objects:
            copy.write_row(
                [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]
            )
    return len(objects)
