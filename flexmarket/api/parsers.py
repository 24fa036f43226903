"""The API's JSON parser: DRF's, with a nesting-depth limit checked before parsing (flexmarket.jsonio)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.utils import json as drf_json

from flexmarket import jsonio


class BoundedJSONParser(JSONParser):
    """Refuses JSON nested deeper than FLEXMARKET_JSON_MAX_DEPTH, or larger than DATA_UPLOAD_MAX_MEMORY_SIZE,
    with a 400 instead of a RecursionError or an unbounded read."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise ParseError(f"The JSON body is larger than {limit:,} bytes; send it in parts.")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"JSON parse error - the body is not {encoding} text.")
        parse_constant = drf_json.strict_constant if api_settings.STRICT_JSON else None
        try:
            return jsonio.loads(text, parse_constant=parse_constant)
        except jsonio.JsonInputError as error:
            raise ParseError(f"JSON parse error - {error}")
