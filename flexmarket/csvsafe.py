"""CSV exports that a spreadsheet cannot turn into formulas (OWASP "CSV injection").

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is executed as a formula by
Excel, LibreOffice and Google Sheets (`=cmd|' /C calc'!A0`, `=HYPERLINK(...)`). Such cells get a leading
apostrophe, which spreadsheets show as text. Numbers (int, float, Decimal) are written unchanged, so a
negative amount stays a number; only strings are neutralised.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose rows pass through `safe_cell`."""

    def __init__(self, buffer, **kwargs):
        self._writer = csv.writer(buffer, **kwargs)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]):
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """`csv.DictWriter` whose values pass through `safe_cell` (the header is ours and left alone)."""

    def writerow(self, rowdict):
        return super().writerow({key: safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts):
        for rowdict in rowdicts:
            self.writerow(rowdict)


def writer(buffer, **kwargs) -> SafeWriter:
    return SafeWriter(buffer, **kwargs)
