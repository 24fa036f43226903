"""The shared CSV reader: every way a file can be broken is a clear error naming the row and column."""

import io

import pytest

from flexmarket.csvio import CsvReader, FileRejected, ImportErrors


def read(data: bytes, **options):
    errors = ImportErrors("invalid_import")
    rows = list(
        CsvReader(io.BytesIO(data), code="invalid_import", required=["a", "b"], errors=errors, **options)
    )
    return rows, errors


def test_a_utf8_byte_order_mark_is_fine():
    rows, errors = read("\ufeffa,b\n1,2\n".encode())
    assert rows == [(2, {"a": "1", "b": "2"})] and not errors


def test_quoted_fields_may_span_lines_and_blank_lines_are_skipped():
    rows, _ = read(b'a,b\n"x\ny",2\n\n3,4\n')
    assert rows == [(2, {"a": "x\ny", "b": "2"}), (4, {"a": "3", "b": "4"})]


def test_a_bad_row_is_reported_with_its_column_and_the_rest_still_read():
    rows, errors = read(b"a,b\n1,caf\xe9\n3,4\n5\n")
    assert rows == [(3, {"a": "3", "b": "4"})]
    assert [(e["row"], e["field"]) for e in errors.items] == [(2, "b"), (4, None)]


def test_errors_are_counted_exactly_and_listed_up_to_the_limit(settings):
    settings.FLEXMARKET_IMPORT_ERRORS_LISTED = 3
    _, errors = read(b"a,b\n" + b"x\x00,1\n" * 2_000)
    assert errors.count == 2_000 and len(errors.items) == 3
    assert errors.summary() == "2000 problem(s) in row(s); nothing was imported. The first 3 are listed."


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "The file is empty"),
        ("a,b\n1,2\n".encode("utf-16"), "UTF-16"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text"),
        (b"x,y\n1,2\n", "Missing columns: a, b"),
        (b"a,b\n" + b"1," + b"2" * 2_000_000 + b"\n", "longer than"),
    ],
)
def test_file_level_problems_are_refused_as_a_whole(data, message):
    with pytest.raises(FileRejected) as caught:
        read(data)
    assert message in caught.value.message and caught.value.field == "file"


def test_row_and_byte_limits(settings):
    with pytest.raises(FileRejected, match="more than 2 rows"):
        read(b"a,b\n1,2\n3,4\n5,6\n", max_rows=2)
    with pytest.raises(FileRejected, match="at most 10 bytes"):
        read(b"a,b\n1,2\n3,4\n", max_bytes=10)
