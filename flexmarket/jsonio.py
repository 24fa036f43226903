"""JSON from participants, bounded: nesting depth is checked in one linear pass before parsing.

Python's json module recurses per nesting level, so `[[[[...]]]]` 5,000 deep raises RecursionError (a 500)
and a few hundred levels still make every later recursive walk of the document costly.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings


class JsonInputError(ValueError):
    """The text is not JSON we accept; the message says why."""


def nesting_depth(text: str | bytes, *, stop_at: int | None = None) -> int:
    """The deepest nesting of arrays and objects, ignoring brackets inside strings (linear time)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def check_depth(text: str | bytes, *, max_depth: int | None = None) -> None:
    limit = settings.FLEXMARKET_JSON_MAX_DEPTH if max_depth is None else max_depth
    if nesting_depth(text, stop_at=limit) > limit:
        raise JsonInputError(f"The JSON is nested more than {limit} levels deep.")


def loads(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """json.loads with a depth limit; every failure is a JsonInputError with a readable message."""
    check_depth(text, max_depth=max_depth)
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise JsonInputError("The file is not UTF-8 text.")
    except (TypeError, ValueError, RecursionError) as error:
        raise JsonInputError(f"The file is not valid JSON: {error}.")
