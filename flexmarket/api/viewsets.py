"""The organisation-scoped base for every API viewset, so forgetting the visibility filter is hard."""

from __future__ import annotations

from rest_framework import viewsets

from accounts.context import Actor
from accounts.permissions import request_actor


class OrganisationScopedMixin:
    """Subclasses set `model` and implement `get_visible_queryset(actor)` with a selector.

    Objects of other organisations are simply not in the queryset, so they answer 404. Ids are integers:
    any other path segment matches no URL and answers 404 too, never a 500 from a failed cast.
    """

    model = None
    lookup_value_regex = "[0-9]+"

    def get_actor(self) -> Actor:
        return request_actor(self.request)

    def get_visible_queryset(self, actor: Actor):
        raise NotImplementedError("Return the selector's queryset for this actor.")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI schema generation: no request user
            return self.model._default_manager.none()
        return self.get_visible_queryset(self.get_actor())


class OrganisationScopedViewSet(OrganisationScopedMixin, viewsets.GenericViewSet):
    pass


class OrganisationScopedReadOnlyViewSet(
    OrganisationScopedMixin,
    viewsets.mixins.ListModelMixin,
    viewsets.mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    pass
