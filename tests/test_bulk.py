"""flexmarket.bulk: plain rows written by COPY (PostgreSQL) or bulk_create, read back exactly."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from flexmarket.bulk import copy_text, insert_rows


def test_copy_text_escapes_what_the_text_format_treats_specially():
    assert copy_text(None) == "\\N"
    assert copy_text(True) == "t" and copy_text(False) == "f"
    assert copy_text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert copy_text([1.5, "x"]) == '[1.5, "x"]'
    assert copy_text(Decimal("1.250")) == "1.250"
    assert copy_text(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "2026-03-29T01:00:00+00:00"


def test_copy_text_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        copy_text(datetime(2026, 3, 29, 1, 0))  # noqa: DTZ001


@pytest.mark.django_db
def test_insert_rows_round_trips_text_json_and_times():
    from accounts.models import Organisation

    rows = [
        (f"Tab\tand\nnewline \\ Org {i}", "NL", f"99{i:011d}", Organisation.Status.APPROVED) for i in range(3)
    ]
    assert insert_rows(Organisation, ["legal_name", "country", "code", "status"], rows) == 3
    stored = list(
        Organisation.objects.filter(code__startswith="99").order_by("code").values_list("legal_name", "code")
    )
    assert stored == [(name, code) for name, _country, code, _status in rows]
    # Fields not given take their defaults, as bulk_create gives them.
    defaults = Organisation.objects.filter(code__startswith="99").values_list(
        "requested_roles", "status_reason"
    )
    assert list(defaults) == [([], "")] * 3


@pytest.mark.django_db
def test_copy_bigints_round_trips_signed_64_bit_columns():
    import numpy as np
    from django.db import connection

    from flexmarket.bulk import copy_bigints

    if connection.vendor != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    first = np.array([1, -2, 2**62, -(2**63)], dtype=np.int64)
    second = np.array([0.0, -1500.0, 7.0, 3.0])  # floats holding integers, as the ledger passes its kW x 1000
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE fm_test_bigints (a bigint, b bigint)")
        copy_bigints("fm_test_bigints", first, second)
        cursor.execute("SELECT a, b FROM fm_test_bigints")
        assert cursor.fetchall() == [(1, 0), (-2, -1500), (2**62, 7), (-(2**63), 3)]
