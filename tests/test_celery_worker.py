import pytest

from flexmarket.tasks import ping


@pytest.mark.worker
def test_real_worker_executes_ping_task(celery_worker, settings):
    result = ping.delay()
    value = result.get(timeout=60)
    assert value["pong"] is True
    assert value["select"] == 1
    assert value["database"] == (
        "postgresql" if "postgres" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    )
