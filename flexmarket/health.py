"""Cheap liveness checks of the database and the Celery broker, each bounded by a short timeout."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def database_check() -> Check:
    """One `SELECT 1` on this thread's connection, which persists between requests (CONN_MAX_AGE)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any driver error means "down" to a load balancer
        return Check(False, f"{type(error).__name__}: {error}".strip()[:200])
    return Check(True, connection.vendor)


@functools.lru_cache(maxsize=4)
def _redis_client(url: str, timeout: float):
    """One client (and connection pool) per process, so a health check reuses its connection to Redis."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def broker_check(*, url: str | None = None, timeout: float = 1.0) -> Check:
    """Redis: a PING with `timeout`; the embedded filesystem transport: its queue folder is writable."""
    url = url if url is not None else settings.CELERY_BROKER_URL
    scheme = urlparse(url).scheme or url.split(":", 1)[0]
    try:
        if scheme in ("redis", "rediss"):
            _redis_client(url, timeout).ping()
        elif scheme == "filesystem":
            folder = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("data_folder_in", "")
            if not (folder and os.path.isdir(folder) and os.access(folder, os.W_OK)):
                return Check(False, f"filesystem queue folder {folder!r} is not writable")
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=timeout) as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:
        return Check(False, f"{scheme}: {type(error).__name__}: {error}".strip()[:200])
    return Check(True, scheme)
