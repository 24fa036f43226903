from celery import shared_task
from django.db import connection


@shared_task(name="flexmarket.ping")
def ping() -> dict:
    """Proves a worker is alive and reaches the database; used by health checks and CI."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    return {"pong": True, "database": connection.vendor, "select": value}
