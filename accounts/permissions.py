"""The role and object permission layer every app uses.

Visibility of objects is enforced in selectors (querysets filtered by organisation); these
classes guard actions by role and organisation status. django-guardian holds per-object
exceptions (e.g. a DSO granted sight of one ESP's baseline): see `object_grant`.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from guardian.shortcuts import assign_perm, get_objects_for_user
from rest_framework import permissions

from accounts.context import Actor
from accounts.selectors import actor_for_request


def request_actor(request) -> Actor:
    """The actor of a request, resolved once (after DRF authentication for API requests)."""
    cached = getattr(request, "_flexmarket_actor", None)
    if cached is None:
        cached = actor_for_request(request)
        request._flexmarket_actor = cached
    return cached


def actor_may_trade(actor: Actor) -> bool:
    return actor.organisation is not None and actor.organisation.is_approved


class IsApprovedMember(permissions.BasePermission):
    """Authenticated, and acting for an approved organisation."""

    message = "Your organisation must be approved by the market operator first."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return actor_may_trade(request_actor(request))


class HasRole(permissions.BasePermission):
    """Use as `HasRole.of("DSO", "TSO")` in `permission_classes`; safe methods are open to approved members."""

    roles: tuple[str, ...] = ()
    write_only = True

    @classmethod
    def of(cls, *roles: str, write_only: bool = True):
        return type(f"HasRole_{'_'.join(roles)}", (cls,), {"roles": roles, "write_only": write_only})

    @property
    def message(self) -> str:
        return f"This needs the role {' or '.join(self.roles)}."

    def has_permission(self, request, view) -> bool:
        if self.write_only and request.method in permissions.SAFE_METHODS:
            return True
        return request_actor(request).has_role(*self.roles)


def role_required(*roles: str):
    """Page decorator: signed in, approved organisation, with one of the roles (or FMO)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            actor = request_actor(request)
            if not actor_may_trade(actor):
                raise PermissionDenied("Your organisation is not approved.")
            if roles and not (actor.has_role(*roles) or actor.is_fmo):
                raise PermissionDenied(f"This page is for {' / '.join(roles)} users.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def object_grant(*, perm: str, user, obj) -> None:
    """Grant one user a per-object permission (django-guardian), e.g. 'settlement.view_baseline'."""
    assign_perm(perm, user, obj)


def objects_granted(*, perm: str, user, klass):
    return get_objects_for_user(user, perm, klass=klass, accept_global_perms=False)
