"""Every FMO edit in the Django admin is an audit event; records that services write are read-only there.

`audit_every_admin()` (called from AccountsConfig.ready, after the admin has discovered every app's admin
module) gives each registered ModelAdmin the AuditedAdminMixin, third-party ones (periodic tasks, ...) included,
so a new admin class cannot forget it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, time
from typing import Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from accounts.permissions import request_actor
from accounts.services import audit_record

SECRET_FIELD = re.compile(
    r"password|secret|hash|token|^data$"
)  # allauth's Authenticator.data holds TOTP seeds
MASK = "(hidden)"
LONGEST_VALUE = 1000


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _json(value: Any) -> Any:
    if isinstance(value, datetime | time):
        # The admin's widgets edit whole seconds: saving a form is not a change of created_at's microseconds.
        value = value.replace(microsecond=0)
    value = json.loads(json.dumps(value, cls=_Encoder))
    if isinstance(value, str | list | dict) and len(text := json.dumps(value)) > LONGEST_VALUE:
        return f"({len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]})"
    return value


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The stored values of an object's fields (foreign keys as ids, many-to-many as sorted id lists)."""
    data = {field.name: _json(field.value_from_object(obj)) for field in obj._meta.concrete_fields}
    for field in obj._meta.many_to_many:
        data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True)) if obj.pk else []
    return data


def stored(obj: models.Model) -> dict[str, Any] | None:
    current = type(obj)._base_manager.filter(pk=obj.pk).first() if obj.pk is not None else None
    return snapshot(current) if current is not None else None


def _masked(values: dict[str, Any]) -> dict[str, Any]:
    return {name: MASK if SECRET_FIELD.search(name) else value for name, value in values.items()}


def record_admin_edit(request, obj: models.Model, *, before: dict | None, after: dict | None) -> None:
    """One event per object: admin.add (after), admin.change (changed fields only) or admin.delete (before)."""
    if before is None and after is None:
        return
    if before is not None and after is not None:
        changed = [name for name in after if before.get(name) != after[name]]
        if not changed:
            return
        before, after = {n: before.get(n) for n in changed}, {n: after[n] for n in changed}
    action = "admin.add" if before is None else "admin.delete" if after is None else "admin.change"
    audit_record(
        actor=request_actor(request),
        action=action,
        target=obj,
        before=_masked(before) if before is not None else None,
        after=_masked(after) if after is not None else None,
    )


class AuditedAdminMixin:
    """Records adds, changes (fields before/after) and deletes made through this admin, inlines included."""

    def save_model(self, request, obj, form, change):
        before = stored(obj) if change else None
        super().save_model(request, obj, form, change)
        request._audit_pending = (obj, before)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj, before = getattr(request, "_audit_pending", (form.instance, None))
        record_admin_edit(request, obj, before=before, after=stored(obj))

    def save_formset(self, request, form, formset, change):
        before = {
            inline.instance.pk: stored(inline.instance)
            for inline in formset.initial_forms
            if inline.instance.pk is not None and (inline in formset.deleted_forms or inline.has_changed())
        }
        for inline in formset.deleted_forms:
            if inline.instance.pk is not None:
                record_admin_edit(request, inline.instance, before=before[inline.instance.pk], after=None)
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            record_admin_edit(request, obj, before=None, after=stored(obj))
        for obj, _ in formset.changed_objects:
            record_admin_edit(request, obj, before=before.get(obj.pk), after=stored(obj))

    def delete_model(self, request, obj):
        record_admin_edit(request, obj, before=stored(obj), after=None)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=queryset.db):
            for obj in queryset:
                record_admin_edit(request, obj, before=snapshot(obj), after=None)
            super().delete_queryset(request, queryset)


class ReadOnlyAdminMixin:
    """For records only services write (contracts, invoices, statements, verifications, runs): the FMO reads
    them in the admin; corrections go through the services, which validate and audit them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def audit_every_admin(site: admin.AdminSite = admin.site) -> None:
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, AuditedAdminMixin):
            continue
        base = type(model_admin)
        site.unregister(model)
        site.register(model, type(base.__name__, (AuditedAdminMixin, base), {"__module__": base.__module__}))
