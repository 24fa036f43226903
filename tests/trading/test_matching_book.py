"""The continuous book's hot read: the hand-written statement (PostgreSQL) returns exactly the rows, in exactly the
order, of the ORM query it replaces (`_book_query`), on random books that exercise every filter."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.factories import OrganisationFactory
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading.models import FlexOffer, FlexRequest, Product
from trading.services.matching import _book_query, _book_rows_sql

STATES = ["active", "partially_filled", "filled", "cancelled"]

# Each filter's matching value is drawn more often than the others, so most books hold rows on both sides of it.
resting = st.fixed_dictionaries(
    {
        "owner": st.sampled_from([0, 1, 1, 1, 2, 2]),
        "session": st.sampled_from([0, 0, 0, 0, 0, 1]),
        "zone": st.sampled_from([0, 0, 0, 0, 0, 1]),
        "state": st.sampled_from(["active", "active", "active", "partially_filled", "filled", "cancelled"]),
        "direction": st.sampled_from(["up", "up", "up", "up", "up", "down"]),
        "first": st.integers(0, 10),
        "length": st.integers(1, 4),
        "price": st.sampled_from(
            [Decimal("10"), Decimal("20.5"), Decimal("20.5"), Decimal("25"), Decimal("40")]
        ),
        "age": st.integers(0, 3),  # equal ages exercise the id tie-break
        "valid": st.sampled_from([None, None, -1, 1]),  # no limit, expired, still valid
        "tso": st.booleans(),
        "asset": st.sampled_from([0, 0, 1, 2]),  # approved, suspended (pending), archived
    }
)
aggressors = st.fixed_dictionaries(
    {
        "owner": st.just(0),
        "session": st.just(0),
        "zone": st.just(0),
        "state": st.just("active"),
        "direction": st.just("up"),
        "first": st.integers(0, 6),
        "length": st.integers(1, 8),
        "price": st.sampled_from([Decimal("20.5"), Decimal("25"), Decimal("30")]),
        "age": st.just(0),
        "valid": st.just(None),
        "tso": st.booleans(),
        "asset": st.just(0),
    }
)


@pytest.fixture
def world(db, dso_org):
    if connection.vendor != "postgresql":
        pytest.skip("the hand-written book read is PostgreSQL's; SQLite uses the ORM query")
    product = ProductFactory(clearing_rule=Product.ClearingRule.CONTINUOUS)
    day = tomorrow()
    sessions = [session_for(product, day), session_for(ProductFactory(market=product.market), day)]
    zones = [GridLocationFactory(dso=dso_org), GridLocationFactory(dso=dso_org)]
    owners = [OrganisationFactory(roles=["ESP", "DSO", "TSO"]) for _ in range(3)]
    assets = [
        FlexAssetFactory(owner=owners[0], grid_location=zones[0]),
        FlexAssetFactory(owner=owners[0], grid_location=zones[0], prequalification="pending"),
        FlexAssetFactory(owner=owners[0], grid_location=zones[0], archived_at=timezone.now()),
    ]
    return {"product": product, "sessions": sessions, "zones": zones, "owners": owners, "assets": assets}


def _order(model, world, row, now, **extra):
    session = world["sessions"][row["session"]]
    start = session.delivery_start + timedelta(hours=17) + row["first"] * timedelta(minutes=15)
    quantities = [10.0] * row["length"]
    return model(
        owner=world["owners"][row["owner"]],
        grid_location=world["zones"][row["zone"]],
        product=session.product,
        session=session,
        direction=row["direction"],
        ptu_start=start,
        ptu_end=start + row["length"] * timedelta(minutes=15),
        quantities_kw=quantities,
        remaining_kw=quantities,
        price=row["price"],
        state=row["state"],
        valid_until=None if row["valid"] is None else now + row["valid"] * timedelta(hours=1),
        created_at=now - timedelta(minutes=row["age"]),
        **extra,
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    book=st.lists(resting, min_size=15, max_size=40),
    aggressor=aggressors,
    side=st.sampled_from(["buy", "sell"]),
    limit=st.sampled_from([None, 3, 64]),
)
def test_the_hand_written_book_read_equals_the_orm_query(world, book, aggressor, side, limit):
    now = timezone.now()
    with transaction.atomic():
        if side == "buy":
            FlexOffer.objects.bulk_create(
                _order(
                    FlexOffer, world, row, now, asset=world["assets"][row["asset"]], tso_eligible=row["tso"]
                )
                for row in book
            )
            order = _order(FlexRequest, world, aggressor, now, is_tso=aggressor["tso"])
        else:
            FlexRequest.objects.bulk_create(
                _order(FlexRequest, world, row, now, is_tso=row["tso"]) for row in book
            )
            order = _order(FlexOffer, world, aggressor, now, tso_eligible=aggressor["tso"])
        qs, fields = _book_query(order, side=side, now=now)
        expected = list(qs.values(*fields)[:limit] if limit else qs.values(*fields))
        assert _book_rows_sql(order, side=side, now=now, limit=limit) == expected
        event(f"rows in the book read: {min(len(expected), 4)}{'+' if len(expected) >= 4 else ''}")
        transaction.set_rollback(True)
