from allauth.account.decorators import secure_admin_login
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.template.response import TemplateResponse

from accounts import services
from accounts.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Organisation,
    OrganisationRole,
    Role,
    User,
)
from accounts.permissions import request_actor
from flexmarket.errors import DomainError


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


class StatusActionForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)
    roles = forms.MultipleChoiceField(
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Roles to grant; empty means the roles each organisation asked for.",
    )


# action name -> (service, title, submit label, whether roles are chosen)
STATUS_ACTIONS = {
    "approve_organisations": (services.organisation_approve, "Approve applications", "Approve", True),
    "reject_organisations": (services.organisation_reject, "Reject applications", "Reject", False),
    "suspend_organisations": (services.organisation_suspend, "Suspend organisations", "Suspend", False),
    "reinstate_organisations": (
        services.organisation_reinstate,
        "Reinstate organisations",
        "Reinstate",
        False,
    ),
}


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["legal_name", "code", "country", "status", "granted_roles", "created_at"]
    list_filter = ["status", "country", "role_grants__role"]
    search_fields = ["legal_name", "code"]
    inlines = [RoleInline, MembershipInline]
    readonly_fields = ["status", "status_reason", "status_changed_at", "status_changed_by", "requested_roles"]
    actions = list(STATUS_ACTIONS)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("role_grants")

    @admin.display(description="Roles")
    def granted_roles(self, obj):
        return ", ".join(sorted(obj.role_codes)) or "—"

    def _status_action(self, request, queryset, action: str):
        """Ask for a reason (and roles when approving), then call the service for each organisation."""
        service, title, submit_label, with_roles = STATUS_ACTIONS[action]
        form = StatusActionForm(request.POST if "apply" in request.POST else None)
        if not with_roles:
            del form.fields["roles"]
        if form.is_bound and form.is_valid():
            actor = request_actor(request)
            for organisation in queryset:
                kwargs = {"actor": actor, "organisation": organisation, "reason": form.cleaned_data["reason"]}
                if with_roles and form.cleaned_data["roles"]:
                    kwargs["roles"] = form.cleaned_data["roles"]
                try:
                    service(**kwargs)
                    self.message_user(request, f"{submit_label}: {organisation}.", messages.SUCCESS)
                except DomainError as error:
                    self.message_user(request, f"{organisation}: {error.message}", messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "explanation": "Every decision is recorded in the audit trail with its reason.",
            "organisations": queryset,
            "form": form,
            "action": action,
            "submit_label": submit_label,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/organisation/status_action.html", context)

    @admin.action(description="Approve selected applications (grant roles)")
    def approve_organisations(self, request, queryset):
        return self._status_action(request, queryset, "approve_organisations")

    @admin.action(description="Reject selected applications (with a reason)")
    def reject_organisations(self, request, queryset):
        return self._status_action(request, queryset, "reject_organisations")

    @admin.action(description="Suspend selected organisations (with a reason)")
    def suspend_organisations(self, request, queryset):
        return self._status_action(request, queryset, "suspend_organisations")

    @admin.action(description="Reinstate selected suspended organisations")
    def reinstate_organisations(self, request, queryset):
        return self._status_action(request, queryset, "reinstate_organisations")


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
# The admin signs in through allauth, so FMO staff pass TOTP there too (the admin's own form would skip it).
admin.site.login = secure_admin_login(admin.site.login)
