from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organisation,
    OrganisationRole,
    User,
)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class RoleInline(admin.TabularInline):
    model = OrganisationRole
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "code", "country", "status", "created_at"]
    list_filter = ["status", "country", "role_grants__role"]
    search_fields = ["legal_name", "code"]
    inlines = [RoleInline, MembershipInline]
    readonly_fields = ["status", "status_reason", "status_changed_at", "status_changed_by", "requested_roles"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "organisation",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["organisation"]
    readonly_fields = [
        "prefix",
        "hashed_key",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "object_repr",
        "actor",
        "organisation",
        "on_behalf_of_operator",
        "request_id",
    ]
    list_filter = ["action", "organisation"]
    search_fields = ["object_repr", "action", "request_id", "actor__email"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Invitation)
admin.site.register(Notification)
admin.site.site_header = "flexmarket operator console"
