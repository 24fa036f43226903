from celery import shared_task
from django.db import connection


@shared_task(name="flexmarket.ping")
def ping() -> dict:
    """Proves a worker is alive and reaches the database; used by health checks and CI."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    return {"pong": True, "database": connection.vendor, "select": value}


@shared_task(name="flexmarket.import_job_run", acks_late=True)
def import_job_run_task(job_id: int) -> str:
    """Thin and idempotent: the job is claimed by a conditional update, so a redelivery changes nothing."""
    from flexmarket.imports import import_job_run

    return import_job_run(job_id=job_id).state
