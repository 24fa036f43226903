import pytest
from django.conf import settings
from django.db import connection


@pytest.fixture(autouse=True)
def _needs_postgres_and_redis(request):
    """Killing workers needs what production runs: PostgreSQL and the Redis broker (SQLite's file broker
    cannot redeliver a message whose worker died)."""
    if request.node.get_closest_marker("worker") and (
        connection.vendor != "postgresql" or not settings.REDIS_URL
    ):
        pytest.skip("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
