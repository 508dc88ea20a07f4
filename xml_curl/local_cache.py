"""A bounded in-process LRU in front of memcached, for the hottest answers.

Same keys as memcached (they embed the cluster generation), so it is exactly as fresh: a
DB change moves every key at the next generation poll. It saves the memcached round trip on
the warm path and keeps answering when memcached is down; it is per process and bounded in
entries (``cache.local_entries``, 0 disables it), so memory stays predictable.
"""
import time
from collections import OrderedDict
from typing import Callable, Optional, Tuple


class LocalCache:
    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: "OrderedDict[str, Tuple[float, bytes]]" = OrderedDict()

    def get(self, key: str) -> Optional[bytes]:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: bytes, ttl: int) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
