"""Read-only admin views of background import jobs and of periodic-task failures, for the FMO."""

from django.contrib import admin

from flexmarket.models import ImportJob, TaskFailure


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "owner", "filename", "state", "rows_done", "error_count", "created_at"]
    list_filter = ["state", "kind"]
    search_fields = ["filename", "owner__legal_name"]


@admin.register(TaskFailure)
class TaskFailureAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "task", "target", "error"]
    list_filter = ["task"]
    search_fields = ["target", "error"]
