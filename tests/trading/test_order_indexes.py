"""The order tables' indexes (PostgreSQL): what each read needs, and nothing every order update pays for in vain.

docs/clearing.md, "Clearing writes": a gate closure updates every offer of the session, and every index that holds
a changed column (`state`) gets a new entry per offer; single-column indexes that a composite index already leads
with, and indexes on `state` alone, were four of the sixteen."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from trading.models import FlexOffer, FlexRequest
from trading.selectors import OPEN_STATES


@pytest.fixture
def postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("index layout and plans are PostgreSQL's")


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


def _leading_columns(definition: str) -> list[str]:
    columns = definition.split(" USING btree (", 1)[1].split(")", 1)[0]
    return [c.strip().split(" ")[0] for c in columns.split(",")]


@pytest.mark.parametrize("model", [FlexOffer, FlexRequest])
def test_no_index_on_state_alone_and_no_single_index_a_composite_leads_with(postgres, model):
    indexes = _indexes(model._meta.db_table)
    singles = [_leading_columns(d) for d in indexes.values() if len(_leading_columns(d)) == 1]
    assert ["state"] not in singles
    for column in ("grid_location_id", "session_id"):
        assert [column] not in singles
        # ... and the foreign key still has an index that leads with it (deletes of zones and sessions).
        assert any(_leading_columns(d)[0] == column for d in indexes.values())


@pytest.mark.parametrize("model", [FlexOffer, FlexRequest])
def test_the_expiry_sweep_can_read_the_partial_index(postgres, model):
    """`orders_expire_due` reads open orders whose validity has passed: the partial index answers it."""
    query = model.objects.filter(state__in=OPEN_STATES, valid_until__lte=timezone.now()).values_list(
        "session_id", flat=True
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    name = "offer_open_expiry" if model is FlexOffer else "request_open_expiry"
    assert name in plan
