from django import forms
from django.contrib import admin, messages

from accounts.admin_audit import ReadOnlyAdminMixin
from accounts.permissions import request_actor
from flexmarket.errors import DomainError
from trading import services
from trading.models import (
    AvailabilityAgreement,
    ClearingReplay,
    ClearingRun,
    Contract,
    FlexOffer,
    FlexRequest,
    Market,
    MarketSession,
    Product,
)
from trading.services import limits
from trading.services.limits import REACTIVE_FIELDS


class ProductInline(admin.StackedInline):
    model = Product
    extra = 0


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "time_zone", "is_active"]
    filter_horizontal = ["grid_locations"]
    inlines = [ProductInline]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "market",
        "kind",
        "direction",
        "clearing_rule",
        "network_aware",
        "gate_closure_rule",
        "baseline_method",
        "is_active",
    ]
    list_filter = ["market", "kind", "clearing_rule", "network_aware", "is_active"]
    fieldsets = [
        (None, {"fields": ["market", "name", "code", "kind", "direction", "is_active"]}),
        (
            "Trading and clearing",
            {
                "fields": [
                    "clearing_rule",
                    "network_aware",
                    "gate_closure_rule",
                    "gate_closure_local_time",
                    "gate_closure_minutes_before",
                    "sessions_ahead_days",
                    "solver_time_limit_seconds",
                    "solver_mip_gap",
                    "fee_eur_per_mwh",
                ]
            },
        ),
        (
            "Order rules (enforced at submission)",
            {
                "fields": [
                    ("min_quantity_kw", "quantity_step_kw"),
                    ("price_floor", "price_cap"),
                    ("min_duration_ptus", "max_duration_ptus"),
                    "max_ramp_kw",
                    ("accepts_initiator_orders", "accepts_aggressor_orders", "accepts_block_offers"),
                ]
            },
        ),
        (
            "Verification and settlement",
            {
                "fields": [
                    "baseline_method",
                    "baseline_params",
                    "delivery_tolerance",
                    "penalty_rule",
                    "penalty_factor",
                    "penalty_price",
                ]
            },
        ),
    ]


@admin.register(MarketSession)
class MarketSessionAdmin(admin.ModelAdmin):
    list_display = ["product", "delivery_day", "gate_closure", "state"]
    list_filter = ["state", "product"]
    date_hierarchy = "delivery_day"
    actions = ["clear_or_rerun"]

    @admin.action(description="Clear now (closed) or re-run the clearing (cleared)")
    def clear_or_rerun(self, request, queryset):
        actor = request_actor(request)
        for session in queryset:
            try:
                run = services.session_clear(
                    session=session, actor=actor, rerun=session.state == MarketSession.State.CLEARED
                )
                self.message_user(request, f"{session}: run #{run.pk} {run.state}.", messages.SUCCESS)
            except DomainError as error:
                self.message_user(request, f"{session}: {error.message}", messages.ERROR)


@admin.register(ClearingRun)
class ClearingRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "session",
        "state",
        "is_current",
        "solver_status",
        "objective",
        "cleared_volume_kwh",
        "created_at",
    ]
    list_filter = ["state", "is_current"]


@admin.register(ClearingReplay)
class ClearingReplayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "session",
        "state",
        "pricing_rule",
        "price_cap",
        "reproduced",
        "organisation",
        "created_at",
    ]
    list_filter = ["state", "pricing_rule", "reproduced"]


class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "grid_location",
        "product",
        "ptu_start",
        "price",
        "order_mode",
        "state",
        "created_at",
    ]
    list_filter = ["state", "order_mode", "product"]
    search_fields = ["owner__legal_name", "external_id"]
    raw_id_fields = ["owner", "grid_location", "session", "created_by"]

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(FlexRequest, OrderAdmin)


class FlexOfferAdminForm(forms.ModelForm):
    """The admin keeps an offer's reactive range to the rules offer_submit applies (limits.clean_reactive); the
    admin builds the form's model fields."""

    def clean(self):
        cleaned = super().clean()
        product = cleaned.get("product")
        if product is not None:
            try:
                limits.clean_reactive(
                    product=product, **{name: cleaned.get(name) for name in REACTIVE_FIELDS}
                )
            except DomainError as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(FlexOffer)
class FlexOfferAdmin(OrderAdmin):
    form = FlexOfferAdminForm
    list_display = [*OrderAdmin.list_display, "q_min_kvar", "q_max_kvar", "q_price"]
    raw_id_fields = [
        *OrderAdmin.raw_id_fields,
        "asset",
        "portfolio",
        "answers_request",
        "availability_agreement",
    ]


@admin.register(Contract)
class ContractAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["reference", "buyer", "seller", "grid_location", "product", "state", "created_at"]
    list_filter = ["state", "product"]
    search_fields = ["reference"]
    raw_id_fields = ["request", "offer", "session", "clearing_run"]


@admin.register(AvailabilityAgreement)
class AvailabilityAgreementAdmin(admin.ModelAdmin):
    list_display = [
        "dso",
        "esp",
        "grid_location",
        "product",
        "capacity_kw",
        "valid_from",
        "valid_to",
        "state",
    ]
    list_filter = ["state"]
