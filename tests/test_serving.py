"""Serving: persistent database connections by default on PostgreSQL, and a /healthz that costs one query."""

from __future__ import annotations

import pytest
from django.db import close_old_connections, connection

from flexmarket import health
from flexmarket.settings import database_from_env

POSTGRES = "postgres://flex:secret@db.example:5432/flexmarket"


def test_postgresql_connections_persist_for_ten_minutes_with_health_checks_by_default():
    config = database_from_env({"DATABASE_URL": POSTGRES})
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["CONN_MAX_AGE"] == 600
    assert config["CONN_HEALTH_CHECKS"] is True


def test_connection_age_and_health_checks_follow_the_environment():
    config = database_from_env(
        {"DATABASE_URL": POSTGRES, "DB_CONN_MAX_AGE": "0", "DB_CONN_HEALTH_CHECKS": "off"}
    )
    assert config["CONN_MAX_AGE"] == 0
    assert config["CONN_HEALTH_CHECKS"] is False
    assert database_from_env({"DATABASE_URL": POSTGRES, "DB_CONN_MAX_AGE": "60"})["CONN_MAX_AGE"] == 60


def test_sqlite_closes_its_connection_after_each_request_by_default():
    config = database_from_env({"DATABASE_URL": "sqlite:////tmp/flexmarket-test.sqlite3"})
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["CONN_MAX_AGE"] == 0


@pytest.mark.django_db
def test_healthz_runs_a_single_query(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_healthz_reuses_the_database_connection_between_requests(client, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()  # the next request connects with the new setting
    client.get("/healthz")
    first = connection.connection
    close_old_connections()  # what Django does when a request finishes
    assert client.get("/healthz").status_code == 200
    assert first is not None and connection.connection is first


@pytest.mark.django_db(transaction=True)
def test_healthz_reconnects_per_request_when_persistence_is_off(client, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()
    client.get("/healthz")
    first = connection.connection
    close_old_connections()
    assert client.get("/healthz").status_code == 200
    assert connection.connection is not first


def test_the_broker_check_keeps_one_redis_client_per_process(monkeypatch):
    made = []

    class FakeRedis:
        @classmethod
        def from_url(cls, url, **options):
            made.append(url)
            return cls()

        def ping(self):
            return True

    monkeypatch.setattr("redis.Redis", FakeRedis)
    health._redis_client.cache_clear()
    try:
        checks = [health.broker_check(url="redis://broker.example:6379/9") for _ in range(3)]
    finally:
        health._redis_client.cache_clear()
    assert all(check.ok for check in checks)
    assert made == ["redis://broker.example:6379/9"]
