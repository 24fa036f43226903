from django.contrib import admin

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
)


@admin.register(MeterUpload)
class MeterUploadAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "filename", "state", "row_count", "changed_count", "created_at"]
    list_filter = ["state", "owner"]


@admin.register(DeliveryVerification)
class DeliveryVerificationAdmin(admin.ModelAdmin):
    list_display = ["contract", "state", "method", "contracted_kwh", "delivered_kwh", "computed_at"]
    list_filter = ["state", "method"]


class LineInline(admin.TabularInline):
    model = StatementLine
    extra = 0


@admin.register(SettlementStatement)
class SettlementStatementAdmin(admin.ModelAdmin):
    list_display = ["period", "organisation", "kind", "total_eur", "created_at"]
    list_filter = ["period", "kind"]
    inlines = [LineInline]


admin.site.register([Prognosis, Dispute, SettlementPeriod, Invoice, BaselineAccuracy])
