from django.contrib import admin

from accounts.admin_audit import ReadOnlyAdminMixin
from grid.models import (
    FlexAsset,
    GridLocation,
    NetworkModel,
    NetworkModelLoad,
    Portfolio,
    PowerFlowRun,
    PrequalificationCheck,
    ZoneBusMapping,
)


@admin.register(GridLocation)
class GridLocationAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "dso", "voltage_level", "status", "status_source", "archived_at"]
    list_filter = ["status", "voltage_level", "dso", "status_source"]
    search_fields = ["name", "code"]
    readonly_fields = [
        "min_lon",
        "min_lat",
        "max_lon",
        "max_lat",
        "display_geometry",
        "created_at",
        "updated_at",
    ]
    change_form_template = "admin/grid/gridlocation/change_form.html"

    def render_change_form(self, request, context, *args, **kwargs):
        from grid.views import map_settings

        obj = kwargs.get("obj")
        context["zone_geometry"] = obj.geometry if obj else None
        context["map_settings"] = map_settings()
        return super().render_change_form(request, context, *args, **kwargs)


class PrequalificationCheckInline(admin.TabularInline):
    model = PrequalificationCheck
    extra = 0
    fields = ["item", "checked", "note", "checked_by", "checked_at"]
    readonly_fields = ["checked_by", "checked_at"]


@admin.register(FlexAsset)
class FlexAssetAdmin(admin.ModelAdmin):
    inlines = [PrequalificationCheckInline]
    list_display = [
        "name",
        "owner",
        "asset_type",
        "grid_location",
        "max_up_kw",
        "max_down_kw",
        "prequalification",
    ]
    list_filter = ["prequalification", "asset_type", "owner", "grid_location__dso"]
    search_fields = ["name", "connection_ean"]
    raw_id_fields = ["grid_location", "brp", "prequalified_by"]


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "grid_location", "created_at"]
    list_filter = ["owner"]
    filter_horizontal = ["assets"]


@admin.register(NetworkModel)
class NetworkModelAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "dso", "source", "bus_count", "line_count", "created_at"]
    list_filter = ["dso"]
    exclude = ["network_json"]


@admin.register(PowerFlowRun)
class PowerFlowRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "network_model",
        "scenario",
        "state",
        "attempts",
        "lease_expires_at",
        "max_line_loading_percent",
        "min_voltage_pu",
        "created_at",
    ]
    list_filter = ["state"]


@admin.register(NetworkModelLoad)
class NetworkModelLoadAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "dso", "example", "state", "attempts", "network_model", "created_at"]
    list_filter = ["state"]
    exclude = ["network_json"]


admin.site.register(ZoneBusMapping)


@admin.register(PrequalificationCheck)
class PrequalificationCheckAdmin(admin.ModelAdmin):
    list_display = ["asset", "item", "checked", "checked_by", "checked_at", "note"]
    list_filter = ["item", "checked", "asset__grid_location__dso"]
    search_fields = ["asset__name", "asset__connection_ean", "note"]
    raw_id_fields = ["asset", "checked_by"]
