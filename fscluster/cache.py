"""One place for the cache: memcached through pymemcache, keyed by the cluster generation.

Failure policy, stated once: the cache is an accelerator, never a source of truth. Every
memcached error (down, timeout, bad reply) is a miss on read and a no-op on write
(``ignore_exc=True``), with short timeouts, so a dead memcached costs one failed connect per
request and never an error to FreeSWITCH. Keys are hashed (SHA-1), so hostile
``user@domain`` strings can never break memcached's key rules (≤ 250 bytes, no whitespace).
"""
import hashlib
import logging
import threading
import time
from typing import Callable, Optional, Sequence, Tuple

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

log = logging.getLogger("fscluster.cache")

KEY_PREFIX = "fsc"


def cache_key(generation: int, *parts: str) -> str:
    """A memcached-safe key for ``parts`` under ``generation`` (hash of the raw parts)."""
    digest = hashlib.sha1("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}:{generation}:{parts[0][:16] if parts else ''}:{digest}"


class Cache:
    """A memcached client with the fail-open policy above; ``servers=()`` disables it."""

    def __init__(self, servers: Sequence[Tuple[str, int]], timeout: float = 0.2,
                 socket_module=None):
        self.enabled = bool(servers)
        self._servers = list(servers)
        self._timeout = timeout
        self._client = None
        if self.enabled:
            kwargs = {"connect_timeout": timeout, "timeout": timeout, "ignore_exc": True,
                      "retry_attempts": 1, "retry_timeout": 1, "dead_timeout": 2,
                      "use_pooling": True, "max_pool_size": 64}
            if socket_module is not None:
                kwargs["socket_module"] = socket_module
            self._client = HashClient(list(servers), **kwargs)

    def get(self, key: str) -> Optional[bytes]:
        if not self.enabled:
            return None
        try:
            return self._client.get(key)
        except Exception as exc:  # pymemcache raises a few non-IO errors even with ignore_exc
            log.debug("cache get failed", extra={"error": type(exc).__name__})
            return None

    def set(self, key: str, value: bytes, ttl: int) -> None:
        if not self.enabled:
            return
        try:
            self._client.set(key, value, expire=ttl, noreply=True)
        except Exception as exc:
            log.debug("cache set failed", extra={"error": type(exc).__name__})

    def flush_local(self) -> bool:
        """Empty this node's memcached (the cluster-wide way is bumping the generation)."""
        if not self.enabled:
            return False
        emptied = True
        for server in self._servers:  # one plain client each: here errors must show
            client = Client(server, connect_timeout=self._timeout, timeout=self._timeout)
            try:
                emptied = client.flush_all(noreply=False) and emptied
            except Exception as exc:
                log.warning("memcached flush failed", extra={"server": f"{server[0]}:{server[1]}",
                                                             "error": type(exc).__name__})
                emptied = False
            finally:
                client.close()
        return emptied

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class GenerationClock:
    """The cluster's cache generation as this process knows it, refreshed at most every
    ``interval`` seconds. If the DB cannot be read, the last known value stays (the warm
    cache keeps serving); a refresh never blocks more than one caller at a time. ``0`` means
    "not read yet": callers must then bypass the cache (a key under a guessed generation could
    hit answers of any age)."""

    def __init__(self, read: Callable[[], int], interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self._read = read
        self._interval = interval
        self._clock = clock
        self._value = 0
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> int:
        if self._clock() - self._checked >= self._interval and self._lock.acquire(False):
            try:
                self.refresh()
            finally:
                self._lock.release()
        return self._value

    def refresh(self) -> int:
        try:
            self._value = self._read()
        except Exception as exc:
            log.warning("cache generation unreadable; keeping the last one",
                        extra={"generation": self._value, "error": type(exc).__name__})
        self._checked = self._clock()
        return self._value
