"""The cache's fail-open policy against a real memcached, key safety, and the generation clock."""
import pytest

from fscluster.cache import Cache, GenerationClock, cache_key
from tests.servers.memcached import Memcached
from tests.servers.proc import free_port


@pytest.mark.parametrize("part", ["1000@demo.local", "a b\r\nc", "x" * 10_000, "\x00<'\">",
                                  "ü@例え.jp"])
def test_keys_are_memcached_safe(part):
    key = cache_key(7, "directory", part)
    assert len(key) <= 250 and not any(c.isspace() or ord(c) < 33 for c in key)
    assert key.startswith("fsc:7:")
    assert cache_key(8, "directory", part) != key


@pytest.mark.integration
def test_get_set_on_real_memcached(memcached_server):
    cache = Cache([memcached_server.address])
    cache.set("fsc:test:1", b"<document/>", ttl=60)
    assert cache.get("fsc:test:1") == b"<document/>"


@pytest.mark.integration
def test_dead_memcached_is_a_miss_not_an_error(workdir):
    server = Memcached(workdir).start()
    cache = Cache([server.address], timeout=0.2)
    cache.set("k", b"v", ttl=60)
    server.kill()
    assert cache.get("k") is None
    cache.set("k", b"v", ttl=60)  # no exception either


def test_nothing_listening_is_a_miss():
    cache = Cache([("127.0.0.1", free_port())], timeout=0.1)
    assert cache.get("k") is None
    assert cache.flush_local() is False


def test_disabled_cache():
    cache = Cache([])
    cache.set("k", b"v", 10)
    assert cache.get("k") is None


def test_generation_clock_polls_at_most_every_interval_and_survives_db_errors():
    now = [0.0]
    reads = []
    values = iter([5, 6, RuntimeError("db down"), 9])

    def read():
        value = next(values)
        reads.append(value)
        if isinstance(value, Exception):
            raise value
        return value

    clock = GenerationClock(read, interval=1.0, clock=lambda: now[0])
    assert clock.current() == 5
    now[0] = 0.5
    assert clock.current() == 5 and len(reads) == 1
    now[0] = 1.0
    assert clock.current() == 6
    now[0] = 2.0
    assert clock.current() == 6  # DB error keeps the last known generation
    now[0] = 3.0
    assert clock.current() == 9
