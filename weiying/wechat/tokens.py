"""The access-token cache every process shares: rows of AccessToken in the database by
default, Redis when REDIS_URL is set.

`get(key, fetch)` returns a token that is valid for at least REFRESH_MARGIN more seconds.
When it is not, one process refreshes it under a lock while the others wait for that
lock and then read what it stored, so a burst of workers makes one call to Tencent, not one
each. `invalidate(key)` drops a token Tencent called expired (40014/42001).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from weiying.core.secrets import decrypt_text, encrypt_text

logger = logging.getLogger(__name__)

REFRESH_MARGIN = 300  # seconds before expiry at which a token is renewed
LOCK_TIMEOUT = 15

# fetch() -> (token, lifetime in seconds)
Fetch = Callable[[], tuple[str, int]]


class Store(Protocol):
    def read(self, key: str) -> tuple[str, dt.datetime] | None: ...
    def write(self, key: str, value: str, expires_at: dt.datetime) -> None: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str) -> Any: ...


class DatabaseStore:
    """Rows of AccessToken; the refresh lock is the row lock (SELECT … FOR UPDATE on
    PostgreSQL, the database write lock on SQLite)."""

    def read(self, key: str) -> tuple[str, dt.datetime] | None:
        from weiying.wechat.models import AccessToken

        row = AccessToken.objects.filter(key=key).values_list("value_enc", "expires_at").first()
        if row is None or not row[0]:
            return None
        return decrypt_text(row[0]), row[1]

    def write(self, key: str, value: str, expires_at: dt.datetime) -> None:
        from weiying.wechat.models import AccessToken

        AccessToken.objects.update_or_create(
            key=key, defaults={"value_enc": encrypt_text(value), "expires_at": expires_at}
        )

    def delete(self, key: str) -> None:
        from weiying.wechat.models import AccessToken

        AccessToken.objects.filter(key=key).update(value_enc="", expires_at=timezone.now())

    @contextmanager
    def lock(self, key: str) -> Any:
        from weiying.wechat.models import AccessToken

        with transaction.atomic():
            AccessToken.objects.get_or_create(
                key=key, defaults={"value_enc": "", "expires_at": timezone.now()}
            )
            list(AccessToken.objects.select_for_update().filter(key=key).values_list("pk"))
            yield


class RedisStore:
    """Redis keys with a TTL; the refresh lock is a redis-py lock."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def read(self, key: str) -> tuple[str, dt.datetime] | None:
        raw = self.redis.hgetall(f"weiying:token:{key}")
        if not raw:
            return None
        expires = dt.datetime.fromtimestamp(float(raw[b"expires_at"]), tz=dt.UTC)
        return decrypt_text(raw[b"value"].decode()), expires

    def write(self, key: str, value: str, expires_at: dt.datetime) -> None:
        name = f"weiying:token:{key}"
        self.redis.hset(name, mapping={"value": encrypt_text(value),
                                       "expires_at": str(expires_at.timestamp())})
        self.redis.expireat(name, int(expires_at.timestamp()) + 60)

    def delete(self, key: str) -> None:
        self.redis.delete(f"weiying:token:{key}")

    @contextmanager
    def lock(self, key: str) -> Any:
        with self.redis.lock(f"weiying:token-lock:{key}", timeout=LOCK_TIMEOUT,
                             blocking_timeout=LOCK_TIMEOUT):
            yield


_store: Store | None = None


def store() -> Store:
    global _store
    if _store is None:
        _store = RedisStore(settings.REDIS_URL) if settings.REDIS_URL else DatabaseStore()
    return _store


def reset_store() -> None:
    """Forget the chosen store (tests switch between database and Redis)."""
    global _store
    _store = None


def _fresh(found: tuple[str, dt.datetime] | None) -> str | None:
    if found is None:
        return None
    value, expires_at = found
    if expires_at - timezone.now() > dt.timedelta(seconds=REFRESH_MARGIN):
        return value
    return None


def get(key: str, fetch: Fetch) -> str:
    """A valid token for `key`, refreshed through `fetch` when it is missing or close to
    expiry; at most one process fetches at a time."""
    cache = store()
    value = _fresh(cache.read(key))
    if value is not None:
        return value
    with cache.lock(key):
        value = _fresh(cache.read(key))  # another process may have refreshed it meanwhile
        if value is not None:
            return value
        started = time.monotonic()
        token, lifetime = fetch()
        cache.write(key, token, timezone.now() + dt.timedelta(seconds=int(lifetime)))
        logger.info("token refreshed", extra={"key": key,
                                              "ms": int((time.monotonic() - started) * 1000)})
        return token


def invalidate(key: str) -> None:
    store().delete(key)
