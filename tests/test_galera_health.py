"""The Galera verdict (pure) and the agent-check line HAProxy reads."""
import pytest

from fscluster.galera_agent import CachedVerdict, agent_reply
from fscluster.galera_health import Health, assess, check

SYNCED = {"wsrep_ready": "ON", "wsrep_connected": "ON", "wsrep_cluster_status": "Primary",
          "wsrep_local_state": "4", "wsrep_local_state_comment": "Synced",
          "wsrep_cluster_size": "3"}


def test_synced_primary_ready_node_is_healthy():
    health = assess(SYNCED)
    assert health.ok and health.reason == "" and health.cluster_size == "3"


@pytest.mark.parametrize("change, reason", [
    ({"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"},
     "not Synced: Donor/Desynced"),
    ({"wsrep_local_state": "1", "wsrep_local_state_comment": "Joining"}, "not Synced: Joining"),
    ({"wsrep_cluster_status": "non-Primary", "wsrep_ready": "OFF"},
     "non-Primary component (quorum lost)"),
    ({"wsrep_ready": "OFF"}, "wsrep_ready=OFF"),
    ({"wsrep_connected": "OFF"}, "not connected to the cluster"),
    ({"wsrep_local_state": ""}, "wsrep is off (not a Galera node)"),
])
def test_node_up_but_unfit_is_taken_out_with_reason(change, reason):
    health = assess(dict(SYNCED, **change))
    assert not health.ok and health.reason == reason


def test_agent_reply_is_one_line_haproxy_understands():
    assert agent_reply(Health(True, "")) == b"up\n"
    assert agent_reply(Health(False, "not Synced: Donor/Desynced")) == \
        b"down # not Synced: Donor/Desynced\n"
    # a reason can never break the line protocol
    assert agent_reply(Health(False, "x\ny\r\u00e9")).count(b"\n") == 1


def test_cached_verdict_queries_once_per_interval():
    calls, now = [], [0.0]
    verdict = CachedVerdict(lambda: calls.append(1) or Health(True, ""), 0.5, lambda: now[0])
    verdict.get(), verdict.get()
    now[0] = 0.6
    verdict.get()
    assert len(calls) == 2


def test_unreachable_node_is_unhealthy_not_an_exception():
    from tests.servers.proc import free_port
    health = check("127.0.0.1", free_port(), "u", "p", timeout=0.5)
    assert not health.ok and health.reason.startswith("unreachable: (2003)")
