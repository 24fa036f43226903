"""JSON from participants, bounded in nesting depth.

Python's json module recurses per nesting level, so `[[[[...]]]]` 5,000 deep raised RecursionError (a 500),
and a few hundred levels still make every later recursive walk of the document (serializers, shapely,
pandapower) costly or fail.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings


class JsonInputError(ValueError):
    """The text is not JSON we accept; the message says why."""


def nesting_depth(value: Any, *, stop_at: int | None = None) -> int:
    """The deepest nesting of lists and dicts in a parsed document (iterative: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)] if isinstance(value, list | dict) else []
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if stop_at is not None and deepest > stop_at:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, list | dict))
    return deepest


def check_depth(value: Any, *, max_depth: int | None = None) -> Any:
    """Raise JsonInputError if the parsed `value` nests deeper than the limit; return it otherwise."""
    limit = settings.FLEXMARKET_JSON_MAX_DEPTH if max_depth is None else max_depth
    if nesting_depth(value, stop_at=limit) > limit:
        raise JsonInputError(f"The JSON is nested more than {limit} levels deep.")
    return value


def loads(text: str | bytes, *, max_depth: int | None = None, **options) -> Any:
    """json.loads with a depth limit; every failure is a JsonInputError with a readable message.

    The C parser recurses per level and raises RecursionError past about 1,000 levels; shallower documents
    are parsed and then walked without recursion."""
    try:
        value = json.loads(text, **options)
    except RecursionError:
        limit = settings.FLEXMARKET_JSON_MAX_DEPTH if max_depth is None else max_depth
        raise JsonInputError(f"The JSON is nested more than {limit} levels deep.")
    except UnicodeDecodeError:
        raise JsonInputError("The file is not UTF-8 text.")
    except (TypeError, ValueError) as error:
        raise JsonInputError(f"The file is not valid JSON: {error}.")
    return check_depth(value, max_depth=max_depth)
