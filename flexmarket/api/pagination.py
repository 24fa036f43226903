from rest_framework import pagination
from rest_framework.exceptions import ValidationError


def _positive_int_or_400(request, name: str, *, default: int, maximum: int | None = None) -> int:
    if name not in request.query_params:
        return default
    raw = request.query_params[name]
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"from 1 to {maximum}" if maximum is not None else "of at least 1"
        raise ValidationError({name: [f"Give a whole number {bound}."]})
    return value


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` (from 1) and `?page_size=` (1 to 1000). Anything else is a 400 rather than silently ignored;
    a page past the last one is a 404."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        return _positive_int_or_400(
            request, self.page_size_query_param, default=self.page_size, maximum=self.max_page_size
        )

    def get_page_number(self, request, paginator):
        return _positive_int_or_400(request, self.page_query_param, default=1)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
