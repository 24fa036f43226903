"""Django's Redis cache that degrades to an empty cache (like DummyCache) while Redis is unreachable.

REDIS_URL is both the Celery broker and the cache. The cache holds only throttling counters and other
short-lived entries, so an outage must not turn every request into a 500: reads miss, writes are
dropped, and a warning is logged (at most once a minute per process).
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("flexmarket.cache")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
WARNING_INTERVAL_SECONDS = 60


class ResilientRedisCache(RedisCache):
    _last_warning = 0.0

    def _unreachable(self, error: Exception, fallback):
        now = time.monotonic()
        if now - ResilientRedisCache._last_warning >= WARNING_INTERVAL_SECONDS:
            ResilientRedisCache._last_warning = now
            logger.warning("Redis cache unreachable, acting as an empty cache: %s", error)
        return fallback

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().add(key, value, timeout, version)
        except UNREACHABLE as error:
            return self._unreachable(error, True)

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except UNREACHABLE as error:
            return self._unreachable(error, default)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            super().set(key, value, timeout, version)
        except UNREACHABLE as error:
            self._unreachable(error, None)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().touch(key, timeout, version)
        except UNREACHABLE as error:
            return self._unreachable(error, False)

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except UNREACHABLE as error:
            return self._unreachable(error, False)

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except UNREACHABLE as error:
            return self._unreachable(error, {})

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except UNREACHABLE as error:
            return self._unreachable(error, False)

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except UNREACHABLE as error:
            self._unreachable(error, None)
            raise ValueError(f"Key '{key}' not found (cache unreachable).") from error

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except UNREACHABLE as error:
            return self._unreachable(error, [])

    def delete_many(self, keys, version=None):
        try:
            return super().delete_many(keys, version)
        except UNREACHABLE as error:
            return self._unreachable(error, None)

    def clear(self):
        try:
            return super().clear()
        except UNREACHABLE as error:
            return self._unreachable(error, False)
