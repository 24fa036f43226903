"""OpenAPI: the Api-Key authentication, the error responses every operation can give, and honest lists.

drf-spectacular documents only the success response and treats every response that is a list as a
paginated, filterable list. Here the schema says what the API does: only GET collections paginate and
filter, other lists are plain arrays, and each operation lists the error statuses it can answer in the
API's error format (`flexmarket.api.errors`).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; organisation admins create keys on the organisation page.",
        }


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable error code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field; `non_field_errors` for the request as a whole.",
    )
    errors = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Row errors of a bulk import."
    )
    request_id = serializers.CharField(
        required=False, help_text="The `X-Request-ID` of the call, to quote to the market operator."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: field errors, or a business rule refused the action.",
    "401": "No valid credentials (API key or session).",
    "403": "Authenticated, but the organisation is not approved or lacks the role.",
    "404": "No such object, or one you may not see (the two are indistinguishable).",
    "415": "Unsupported request content type.",
    "429": "Throttled; see the Retry-After header.",
    "503": "A dependency (the task queue) is unreachable; retry later.",
}


def is_paginated_collection(view, method: str) -> bool:
    """GET `list` and GET collection actions (detail=False) paginate and filter; nothing else does."""
    if method != "GET" or getattr(view, "detail", None) is not False:
        return False
    action = getattr(view, "action", None)
    return action == "list" or action in getattr(view, "paginated_actions", ())


class AutoSchema(SpectacularAutoSchema):
    def _paginated(self) -> bool:
        return is_paginated_collection(self.view, self.method)

    def get_filter_backends(self):
        return super().get_filter_backends() if self._paginated() else []

    def _get_paginator(self):
        return super()._get_paginator() if self._paginated() else None

    def _error_codes(self) -> list[str]:
        codes = ["403", "429"]
        if self.get_auth():
            codes.append("401")
        has_path_id = "{" in self.path
        # `body_lookup_actions`: actions whose body names an object by id (a missing or invisible one is a 404).
        names_object = getattr(self.view, "action", None) in getattr(self.view, "body_lookup_actions", ())
        if has_path_id or self._paginated() or names_object:
            codes.append("404")  # a missing or invisible object; a page past the end
        query_parameters = any(
            getattr(p, "location", None) == "query"
            # a serializer given as parameters is a set of query parameters (drf-spectacular's convention)
            or isinstance(p, serializers.BaseSerializer)
            or (isinstance(p, type) and issubclass(p, serializers.BaseSerializer))
            for p in self.get_override_parameters()
        )
        if self.method in ("POST", "PUT", "PATCH", "DELETE") or self._paginated() or query_parameters:
            codes.append("400")  # invalid body, filter, page or query value
        if self.method in ("POST", "PUT", "PATCH") and self.map_parsers():
            codes.append("415")
        if getattr(self.view, "action", None) in getattr(self.view, "enqueue_actions", ()):
            codes.append("503")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in sorted(self._error_codes()):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, ["application/json"], direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses
