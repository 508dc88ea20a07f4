"""Nothing lost when a DB node or memcached dies, under load: xml_curl lookups of existing
users (real ``fscluster-xmlcurl`` processes) and a registration storm mirrored by the real
``fscluster-agent``, in front of a real 3-node Galera cluster behind HAProxy.

Each test asserts zero failed lookups and zero registrations lost or duplicated in the
mirror once the cluster is back, and prints the longest lookup stall (not asserted: speed
belongs to ``make bench``, see bench/db.py). The cluster is restored to 3 Synced nodes after
each test.
"""
import pytest

from tests.db_resilience_support import LookupLoad, PbxStack
from tests.servers.haproxy import backend_server_of
from tests.servers.proc import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(workdir, galera_front):
    pbx = PbxStack(workdir, galera_front)
    try:
        pbx.start()
        yield pbx
    finally:
        pbx.close()


@pytest.fixture
def restore(galera_cluster, galera_front):
    yield
    galera_cluster.restore()
    galera_front.wait_servers_up(60)


def _under_load(stack, service, fault):
    """Run ``fault()`` while lookups (through ``service``) and a storm run; then check."""
    load = LookupLoad(service.url, stack.users)
    load.start()
    storm = stack.storm()
    try:
        wait_for(lambda: load.done > 50 and len(storm.call_ids) > 100, 30, "load running")
        fault()
        done = load.done
        wait_for(lambda: load.done > done + 50, 60, "lookups after recovery")
    finally:
        storm.stop()
        load.stop()
    lost, extra = stack.mirror_difference()
    print(f"\nlookups={load.done} failed={len(load.failures)} "
          f"longest_stall_ms={load.max_stall_ms:.0f} registrations={len(storm.call_ids)} "
          f"lost={len(lost)} extra={len(extra)}")
    if load.failures:   # what the service and Galera said, for whoever reads the CI log
        print(service.log_text()[-6000:])
        print(stack.front.cluster.view_changes())
    assert load.failures == []
    assert storm.call_ids and not lost and not extra
    return load


def test_writer_killed_then_rejoins(stack, galera_cluster, galera_front, restore):
    def fault():
        writer = backend_server_of(galera_front.write_port)
        galera_cluster.kill(writer)
        galera_front.wait_status(writer, "DOWN", 10)
        galera_cluster.start_node(writer)       # rejoins by IST (or SST)
        galera_front.wait_status(writer, "UP", 60)
    _under_load(stack, stack.cold, fault)      # cold: every lookup reads Galera


def _selects(node) -> int:
    """SELECTs this node has run (the agent's and our status queries are SHOWs, not SELECTs)."""
    return int(dict(node.sql("SHOW GLOBAL STATUS LIKE 'Com_select'"))["Com_select"])


def test_desynced_node_gets_no_reads(stack, galera_cluster, galera_front, restore):
    desynced = galera_cluster.node("db2")
    others = [node for node in galera_cluster.nodes if node is not desynced]

    def fault():
        galera_cluster.desync(desynced.name)
        galera_front.wait_status(desynced.name, "DOWN", 10)
        before, elsewhere = _selects(desynced), sum(_selects(n) for n in others)
        wait_for(lambda: sum(_selects(n) for n in others) > elsewhere + 100, 30,
                 "lookups reading from the other nodes")
        assert _selects(desynced) == before
        galera_cluster.desync(desynced.name, on=False)
        galera_front.wait_status(desynced.name, "UP", 30)
    _under_load(stack, stack.cold, fault)


def _every_user_answers(stack):
    """One round of every seeded user through the warm service, all answered."""
    probe = LookupLoad(stack.warm.url, stack.users, max_requests=len(stack.users))
    probe.run()
    assert probe.failures == [] and probe.done == len(stack.users)


def test_memcached_killed_then_restarted(stack, restore):
    def fault():
        stack.memcached.kill()
        _every_user_answers(stack)   # from the DB while memcached is down
        stack.memcached.start()
    _under_load(stack, stack.warm, fault)


def test_quorum_lost_lookups_from_cache_agent_buffers_nothing_written_to_minority(
        stack, galera_cluster, galera_front, restore):
    survivor, *victims = galera_cluster.nodes

    def fault():
        for node in victims:
            galera_cluster.kill(node.name, wait_evicted=False)  # both at once
        galera_cluster.wait_evicted()
        wait_for(lambda: survivor.status()["wsrep_cluster_status"] != "Primary", 30,
                 "survivor in a non-primary component")
        committed = survivor.status()["wsrep_last_committed"]
        galera_front.wait_status(survivor.name, "DOWN", 10)
        _every_user_answers(stack)   # the warm cache answers while no DB can
        # The agent's writes wait in its buffer; none reaches the minority node.
        assert survivor.status()["wsrep_last_committed"] == committed
        galera_cluster.restore()
        galera_front.wait_servers_up(60)
    _under_load(stack, stack.warm, fault)
