"""One robust CSV reader for every import (assets, orders, meter data, prognoses).

It streams the upload line by line and turns every way a file can be broken into a clear error that names
the row and the column: bytes that are not UTF-8 (Latin-1, UTF-16, random bytes), NUL bytes, fields or lines
longer than the limits, more rows or bytes than allowed. Row errors are counted exactly; only the first
`FLEXMARKET_IMPORT_ERRORS_LISTED` are kept for display.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from flexmarket.errors import DomainError, ValidationErrors

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF8_BOM = b"\xef\xbb\xbf"

# The csv module's own limit is process-wide; lines are bounded before they reach it, so raise it to the
# line limit and report over-long fields ourselves, naming the column.
csv.field_size_limit(max(csv.field_size_limit(), settings.FLEXMARKET_CSV_MAX_LINE_BYTES))


class FileRejected(DomainError):
    """The file as a whole cannot be read (encoding, size, header); nothing was imported."""


@dataclass
class ImportErrors:
    """Row errors of one import: the exact count, and the first `listed` of them for display."""

    code: str
    listed: int = field(default_factory=lambda: settings.FLEXMARKET_IMPORT_ERRORS_LISTED)
    count: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int | None, field_name: str | None, message: str) -> None:
        self.count += 1
        if len(self.items) < self.listed:
            self.items.append({"row": row, "field": field_name, "message": message})

    def add_error(self, row: int | None, error: DomainError) -> None:
        self.add(row, error.field, error.message)

    def __bool__(self) -> bool:
        return self.count > 0

    def summary(self, what: str = "row(s)") -> str:
        shown = "" if self.count <= len(self.items) else f" The first {len(self.items)} are listed."
        return f"{self.count} problem(s) in {what}; nothing was imported.{shown}"

    def exception(self, what: str = "row(s)") -> ValidationErrors:
        error = ValidationErrors(self.code, self.summary(what), self.items)
        error.extra["error_count"] = self.count
        return error

    def raise_if_any(self, what: str = "row(s)") -> None:
        if self:
            raise self.exception(what)


def upload_size(file) -> int | None:
    """The size of an uploaded file object, when it can be known without reading it."""
    size = getattr(file, "size", None)
    if size is not None:
        return int(size)
    try:
        position = file.tell()
        file.seek(0, io.SEEK_END)
        size = file.tell()
        file.seek(position)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def check_upload_size(file, code: str, *, max_bytes: int | None = None) -> None:
    limit = settings.FLEXMARKET_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
    size = upload_size(file)
    if size is not None and size > limit:
        raise FileRejected(
            code,
            f"The file is {size:,} bytes; at most {limit:,} bytes are accepted. Split it into smaller files.",
            field="file",
        )


class CsvReader:
    """Iterate the data rows of a CSV upload as (row number, {column: text}) with the header as row 1.

    File-level problems raise FileRejected at once; row-level problems (undecodable text, NUL, over-long
    field, too few columns) are added to `errors` and the row is skipped, so every bad row is counted.
    """

    def __init__(
        self,
        file,
        *,
        code: str,
        required: list[str],
        errors: ImportErrors | None = None,
        max_rows: int | None = None,
        max_bytes: int | None = None,
        header_hint: str | None = None,
        count_first: bool = True,
    ):
        self.code = code
        self.required = required
        self.errors = errors if errors is not None else ImportErrors(code)
        self.max_rows = settings.FLEXMARKET_IMPORT_MAX_ROWS if max_rows is None else max_rows
        self.max_bytes = settings.FLEXMARKET_UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        self.max_field = settings.FLEXMARKET_CSV_MAX_FIELD_CHARS
        self.max_line = settings.FLEXMARKET_CSV_MAX_LINE_BYTES
        self.header_hint = header_hint or ",".join(required)
        self.rows_read = 0
        self.bytes_read = 0
        self.line_number = 0
        self.columns: list[str] = []
        self._file = file
        check_upload_size(file, code, max_bytes=self.max_bytes)
        if count_first and getattr(file, "seekable", lambda: False)():
            self._count_rows_first()
        elif hasattr(file, "seek"):
            file.seek(0)
        self._reader = csv.reader(self._lines())
        self._read_header()

    def _count_rows_first(self) -> None:
        """Refuse a file with too many rows before any row is processed (one cheap CSV pass)."""
        self._file.seek(0)
        records = -1  # the header
        reader = csv.reader(self._lines())
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                raise self._reject(f"Line {self.line_number} cannot be read as CSV: {error}.")
            if any(cell.strip() for cell in record):
                records += 1
                if records > self.max_rows:
                    raise self._reject(
                        f"The file has more than {self.max_rows:,} rows; split it into smaller files."
                    )
        self._file.seek(0)
        self.line_number = self.bytes_read = 0

    def _reject(self, message: str) -> FileRejected:
        return FileRejected(self.code, message, field="file")

    def _lines(self) -> Iterator[str]:
        first = True
        while True:
            raw = self._file.readline(self.max_line + 1)
            if not raw:
                return
            if isinstance(raw, str):  # a text stream (tests, API bodies): encode to check it like bytes
                raw = raw.encode("utf-8", "surrogateescape")
            self.line_number += 1
            self.bytes_read += len(raw)
            if self.bytes_read > self.max_bytes:
                raise self._reject(f"The file is larger than {self.max_bytes:,} bytes; split it.")
            if len(raw) > self.max_line and not raw.endswith(b"\n"):
                raise self._reject(
                    f"Line {self.line_number} is longer than {self.max_line:,} bytes; is this a CSV file?"
                )
            if first:
                first = False
                if raw.startswith(UTF16_BOMS):
                    raise self._reject(
                        "The file is UTF-16 text; save it as CSV UTF-8 (comma delimited) and upload again."
                    )
                if raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM) :]
            # Undecodable bytes become lone surrogates, found per field below (so the column is named).
            yield raw.decode("utf-8", "surrogateescape")

    @staticmethod
    def _undecodable(text: str) -> bool:
        return any("\udc80" <= char <= "\udcff" for char in text)

    def _next_record(self) -> list[str] | None:
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except csv.Error as error:
            raise self._reject(f"Line {self.line_number} cannot be read as CSV: {error}.")

    def _read_header(self) -> None:
        header = self._next_record()
        if header is None:
            raise self._reject(f"The file is empty; the first line must be: {self.header_hint}.")
        text = ",".join(header)
        if self._undecodable(text) or "\x00" in text:
            raise self._reject(
                "The file is not UTF-8 text (or not a CSV file); save it as CSV UTF-8 and upload again."
            )
        self.columns = [name.strip() for name in header]
        missing = [name for name in self.required if name not in self.columns]
        if missing:
            raise self._reject(
                f"Missing columns: {', '.join(missing)}. The first line must be: {self.header_hint}."
            )

    def has_columns(self, *names: str) -> bool:
        return all(name in self.columns for name in names)

    def require(self, columns: list[str]) -> None:
        """Require further columns once the header has told which of several layouts the file has."""
        self.required = columns
        self.header_hint = ",".join(columns)
        missing = [name for name in columns if name not in self.columns]
        if missing:
            raise self._reject(
                f"Missing columns: {', '.join(missing)}. The first line must be: {self.header_hint}."
            )

    def _check_row(self, number: int, record: list[str]) -> bool:
        if len(record) < len(self.required):
            self.errors.add(
                number,
                None,
                f"Expected {len(self.columns)} columns ({self.header_hint}), found {len(record)}.",
            )
            return False
        for index, value in enumerate(record):
            name = self.columns[index] if index < len(self.columns) else f"column {index + 1}"
            if self._undecodable(value):
                self.errors.add(number, name, "The text is not UTF-8; save the file as CSV UTF-8.")
                return False
            if "\x00" in value:
                self.errors.add(number, name, "The field contains a NUL byte.")
                return False
            if len(value) > self.max_field:
                self.errors.add(
                    number, name, f"The field has {len(value):,} characters; at most {self.max_field:,}."
                )
                return False
        return True

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        number = 1
        while True:
            record = self._next_record()
            if record is None:
                return
            number += 1
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            self.rows_read += 1
            if self.rows_read > self.max_rows:
                raise self._reject(
                    f"The file has more than {self.max_rows:,} rows; split it into smaller files."
                )
            if self._check_row(number, record):
                yield number, dict(zip(self.columns, record, strict=False))
