"""The agent's role loop (esl_apps.failover) with a scripted service: what it runs, when."""
import gevent
import pytest

from esl_apps.failover import EventWaits, Failover
from esl_apps.protocol import Event
from fscluster.config import Config
from fscluster.errors import FsclusterError

CONFIG = Config(node_name="pbx3", lease_seconds=0.2)
VIP1, VIP2 = (v.address for v in CONFIG.vips)


class Service:
    def __init__(self):
        self.calls, self.renewals, self.published = [], [], []
        self.fail_takeover = False
        self.claim_ours = True

    def takeover(self, vip, held):
        self.calls.append(("takeover", vip, tuple(held)))
        if self.fail_takeover:
            raise FsclusterError("claim refused")
        return {"steps_ms": {}}

    def release(self, vip, held, reason):
        self.calls.append(("release", vip, reason))
        return {}

    def renew(self, vip):
        self.renewals.append(vip)
        return self.claim_ours

    def publish_role(self, held):
        self.published.append(tuple(held))


def loop(addresses, service=None, ready=lambda: True):
    service = service or Service()
    return Failover(CONFIG, service, lambda: set(addresses), ready=ready), service


def test_reconcile_takes_over_what_is_held_and_publishes_the_role():
    addresses = {VIP1}
    failover, service = loop(addresses)
    failover.reconcile()
    assert service.calls == [("takeover", "vip1", ()),
                             ("release", "vip2", "address not on interface")]
    assert service.published[-1] == ("vip1",)
    addresses.add(VIP2)
    failover.reconcile()
    assert service.calls[-1] == ("takeover", "vip2", ("vip1",))
    assert failover.status()["role"] == "active"


def test_nothing_happens_before_freeswitch_is_connected():
    failover, service = loop({VIP1}, ready=lambda: False)
    failover.reconcile()
    assert service.calls == [] and service.published == []


def test_a_failed_takeover_leaves_the_vip_in_fault():
    service = Service()
    service.fail_takeover = True
    failover, _ = loop({VIP1}, service)
    failover.reconcile()
    assert failover.status()["states"]["vip1"] == "fault"
    assert failover.last_result["vip1"] == {"action": "takeover", "ok": False,
                                            "error": "claim refused"}


def test_leases_renew_only_for_vips_still_on_the_interface_and_a_lost_claim_releases():
    addresses = {VIP1, VIP2}
    failover, service = loop(addresses)
    failover.reconcile()
    addresses.discard(VIP2)                      # keepalived took vip2 away
    renewer = gevent.spawn(failover.renew_forever)
    gevent.sleep(0.12)
    assert set(service.renewals) == {"vip1"}
    service.claim_ours = False                  # someone else owns vip1 now
    gevent.sleep(0.12)
    renewer.kill()
    failover.reconcile()
    assert ("release", "vip1", "claim lost") in service.calls


def test_notify_wakes_the_loop_and_takeover_by_hand_needs_the_address():
    failover, service = loop({VIP1})
    assert failover.notify("VI_vip1", "master") == {"vip": "vip1", "state": "MASTER"}
    assert failover.status()["keepalived"] == {"vip1": "MASTER"}
    with pytest.raises(FsclusterError, match="not on eth0"):
        failover.takeover_now("vip2")
    failover.takeover_now("vip1")
    assert ("takeover", "vip1", ()) in service.calls
    assert failover.status()["states"]["vip1"] == "master"


def test_event_waits_match_after_arming_only():
    waits = EventWaits()
    started = Event({"Event-Name": "CUSTOM", "Event-Subclass": "sofia::profile_start",
                     "profile_name": "vip1"})
    waits.on_event(started)                       # before arming: not kept
    expectation = waits.expect("sofia::profile_start", lambda e: e.get("profile_name") == "vip1")
    assert expectation.wait(0.01) is None
    expectation = waits.expect("sofia::profile_start", lambda e: e.get("profile_name") == "vip1")
    waits.on_event(Event(dict(started.headers, profile_name="vip2")))
    waits.on_event(started)
    assert expectation.wait(0.01) is started
    armed = waits.expect("sofia::recovery_recovered", lambda e: True)
    armed.cancel()
    assert waits._armed == []


def test_only_the_vips_this_node_serves_are_managed():
    service = Service()
    failover = Failover(Config(node_name="pbx1"), service, lambda: {VIP1, VIP2})
    failover.reconcile()
    assert service.calls == [("takeover", "vip1", ())]       # vip2 is pbx2's and pbx3's
    with pytest.raises(FsclusterError, match="not served by pbx1"):
        failover.notify("VI_vip2", "MASTER")
    assert Failover(Config(node_name="other"), service, set).status()["states"] == {}


def test_transitions_recorded_while_the_agent_was_down_are_loaded_once(tmp_path):
    import json
    from esl_apps.failover import load_recorded_notifies
    from fscluster.health import recorded_notify_path
    config = Config(node_name="pbx3", agent_socket=str(tmp_path / "agent.sock"))
    path = recorded_notify_path(config, "VI_vip2")
    with open(path, "w") as handle:
        json.dump({"instance": "VI_vip2", "state": "MASTER", "at": 1.0}, handle)
    failover = Failover(config, Service(), set)
    load_recorded_notifies(config, failover)
    assert failover.status()["keepalived"] == {"vip2": "MASTER"}
    assert not (tmp_path / "keepalived-VI_vip2.state").exists()
