"""Thin Celery tasks of the accounts app."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.notifications_email")
def notifications_email_task(notification_ids: list[int]) -> int:
    """Mail the given notifications to their organisations' members (sent after the commit that made them)."""
    return services.notifications_email(notification_ids=notification_ids)
