"""The notification list (django-tables2 + django-filter): category and read state, sortable, paginated,
exportable to CSV and XLSX like the other lists."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.middleware.csrf import get_token
from django.utils.html import format_html

from accounts.models import Notification


class NotificationFilter(django_filters.FilterSet):
    category = django_filters.ChoiceFilter(choices=Notification.Category.choices, empty_label="Any category")
    read = django_filters.ChoiceFilter(
        choices=[("unread", "Unread"), ("read", "Read")], method="by_read_state", empty_label="Read or unread",
        label="State",
    )  # fmt: skip

    class Meta:
        model = Notification
        fields = ["category", "read"]

    def by_read_state(self, queryset, name, value):
        return queryset.filter(read_at__isnull=value == "unread")


class NotificationTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name="When", format="Y-m-d H:i T")
    category = tables.Column()
    title = tables.Column(verbose_name="Notification")
    body = tables.Column(verbose_name="Details", orderable=False, visible=False)
    read_at = tables.DateTimeColumn(verbose_name="Read", format="Y-m-d H:i T", default="unread")
    mark = tables.Column(
        accessor="pk",
        verbose_name="",
        orderable=False,
        exclude_from_export=True,
        attrs={"td": {"class": "p-1"}},
    )

    class Meta:
        model = Notification
        fields = ()
        sequence = ("created_at", "category", "title", "body", "read_at", "mark")
        attrs = {"class": "table is-fullwidth is-narrow", "data-testid": "notification-table"}
        row_attrs = {
            "class": lambda record: (
                "" if record.read_at else "has-background-info-light has-text-weight-semibold"
            ),
            "data-testid": "notification-row",
        }
        order_by = ("-created_at",)
        empty_text = "No notifications match."

    def render_title(self, value, record):
        link = format_html('<a href="{}">{}</a>', record.link, value) if record.link else value
        if not record.body:
            return link
        return format_html(
            '{}<br><span class="is-size-7 has-text-weight-normal">{}</span>', link, record.body
        )

    def render_mark(self, value, record):
        """A small form per unread row (no template per row: that would run the context processors each time)."""
        if record.read_at:
            return ""
        return format_html(
            '<form method="post" class="is-inline"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<input type="hidden" name="notification" value="{}">'
            '<button class="button is-small is-light" type="submit" data-testid="mark-read">Mark read</button></form>',
            get_token(self.request),
            value,
        )

    def value_title(self, value):
        return value
