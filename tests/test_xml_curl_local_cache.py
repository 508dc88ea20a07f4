"""The per-process LRU: bounded, expiring, disabled at 0."""
from xml_curl.local_cache import LocalCache


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_lru_bound_and_expiry():
    clock = Clock()
    cache = LocalCache(2, clock)
    cache.set("a", b"1", 10)
    cache.set("b", b"2", 1)
    assert cache.get("a") == b"1"          # a is now the most recent
    cache.set("c", b"3", 10)               # evicts b, the least recent
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, b"1", b"3")
    clock.now += 10
    assert cache.get("a") is None and len(cache) == 1


def test_zero_entries_disables_it():
    cache = LocalCache(0)
    cache.set("a", b"1", 10)
    assert cache.get("a") is None and len(cache) == 0
