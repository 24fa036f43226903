from django.contrib import admin

from accounts.admin_audit import ReadOnlyAdminMixin
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Dispute,
    Invoice,
    MeterUpload,
    Prognosis,
    SettlementPeriod,
    SettlementStatement,
    StatementLine,
    VerificationRun,
    ZoneTemperature,
)


@admin.register(MeterUpload)
class MeterUploadAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "filename", "state", "row_count", "changed_count", "created_at"]
    list_filter = ["state", "owner"]


@admin.register(DeliveryVerification)
class DeliveryVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["contract", "state", "method", "contracted_kwh", "delivered_kwh", "computed_at"]
    list_filter = ["state", "method"]


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "contract",
        "reason",
        "state",
        "outcome",
        "attempts",
        "lease_expires_at",
        "created_at",
    ]
    list_filter = ["state", "reason"]
    search_fields = ["contract__reference", "error"]


class LineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StatementLine
    extra = 0


@admin.register(SettlementStatement)
class SettlementStatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["period", "organisation", "kind", "total_eur", "created_at"]
    list_filter = ["period", "kind"]
    inlines = [LineInline]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["number", "statement", "issued_at"]
    search_fields = ["number"]


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Resolved in the settlement console (dispute_resolve), which corrects the verification and audits it."""

    list_display = ["verification", "state", "opened_by", "created_at", "resolved_at"]
    list_filter = ["state"]


@admin.register(SettlementPeriod)
class SettlementPeriodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Created, computed, approved, locked and adjusted in the settlement console, through the services."""

    list_display = ["name", "start", "end", "state", "pending_contracts", "locked_at"]
    list_filter = ["state"]


admin.site.register([Prognosis, BaselineAccuracy])


@admin.register(ZoneTemperature)
class ZoneTemperatureAdmin(admin.ModelAdmin):
    list_display = ["grid_location", "start", "celsius", "uploaded_by", "updated_at"]
    list_filter = ["grid_location"]
    date_hierarchy = "start"
    raw_id_fields = ["grid_location", "uploaded_by"]
