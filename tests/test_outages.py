"""Redis (broker and cache) or the database down: clear 503s where work must be queued, everything else works,
and /healthz tells a load balancer the truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.db import OperationalError

from accounts.services import api_key_create
from grid import services as grid_services

DEAD_REDIS = "redis://127.0.0.1:1/0"  # port 1: connection refused at once


@pytest.fixture
def broker_down():
    """Point Celery at a Redis that refuses connections, and send tasks for real (not inline).

    The app's connection and producer pools are set aside and put back afterwards; none is closed, because
    kombu keeps producer pools in a global registry and would hand a closed one to the next user.
    """
    from flexmarket.celery import app

    saved = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    app._pool = app.amqp._producer_pool = None
    app.conf.broker_url = DEAD_REDIS
    app.conf.task_always_eager = False
    yield
    app.conf.broker_url, app._pool, app.amqp._producer_pool = saved


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "flexmarket.cache.ResilientRedisCache",
            "LOCATION": DEAD_REDIS,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


def key_client(api_client, actor):
    _, raw = api_key_create(actor=actor, name="EMS")
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return api_client


@pytest.mark.django_db(transaction=True)
def test_an_api_call_that_queues_work_answers_503_when_the_broker_is_unreachable(
    api_client, actor_dso, broker_down
):
    model = grid_services.network_model_create(actor=actor_dso, name="CIGRE", example="cigre_mv")
    response = key_client(api_client, actor_dso).post(f"/api/v1/network-models/{model.pk}/power-flow/", {})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "broker_unavailable"
    assert "task queue is unreachable" in error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    assert response["Retry-After"] == "60"


@pytest.mark.django_db
def test_calls_that_need_no_broker_still_work_while_redis_is_down(
    api_client, actor_dso, broker_down, cache_down
):
    """REDIS_URL is the cache too (API throttling counts there): an outage must not make every call a 500."""
    client = key_client(api_client, actor_dso)
    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/grid-locations/").status_code == 200


def test_with_redis_configured_the_cache_degrades_instead_of_failing():
    env = {**os.environ, "REDIS_URL": DEAD_REDIS, "DJANGO_SETTINGS_MODULE": "flexmarket.settings"}
    code = "import json, flexmarket.settings as s; print(json.dumps(s.CACHES['default']))"
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    cache = json.loads(output.stdout)
    assert cache["BACKEND"] == "flexmarket.cache.ResilientRedisCache"
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 1


@pytest.mark.django_db
def test_healthz_is_ok_when_the_database_and_the_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = DEAD_REDIS
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["broker"] == "down"
    assert "ConnectionError" in body["errors"]["broker"]


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_down(client, monkeypatch):
    from flexmarket import health

    def refuse():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(health.connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


@pytest.mark.django_db(transaction=True)
def test_a_page_that_queues_work_answers_a_503_page_when_the_broker_is_unreachable(
    client, dso_user, actor_dso, broker_down
):
    model = grid_services.network_model_create(actor=actor_dso, name="CIGRE", example="cigre_mv")
    client.force_login(dso_user)
    response = client.post(
        f"/grid/networks/{model.pk}/",
        {"scenario": "peak", "load_scaling": "1.0", "generation_scaling": "1.0"},
    )
    assert response.status_code == 503
    assert "task queue is unreachable" in response.content.decode()
    assert response["X-Request-ID"] in response.content.decode()
