"""Takeover/release orchestration against the real DB tables and a scripted FreeSWITCH.

The FreeSWITCH here is a small fake that answers like mod_sofia (the wording of the replies
is the real one, see fixtures/freeswitch-1.10.12/README.md); the emulator-backed end-to-end
runs are in test_failover_netns.py.
"""
import json

import pytest
from sqlalchemy import insert, select

from esl_apps import vip_claims
from esl_apps.protocol import Event
from esl_apps.sofia_status import profile_states
from esl_apps.takeover import TakeoverFailed, VipService
from fscluster.config import Config
from fscluster.fs_tables import channels, fs_metadata, sip_registrations
from fscluster.schema import cluster_events, cluster_nodes, cluster_vips


class Armed:
    def __init__(self, fs, subclass, match):
        self.fs, self.subclass, self.match = fs, subclass, match

    def wait(self, timeout):
        return next((e for e in self.fs.fired_events
                     if e.subclass == self.subclass and self.match(e)), None)

    def cancel(self):
        self.fs.cancelled += 1


class FakeFreeSwitch:
    def __init__(self, recoverable=0, loaded=()):
        self.profiles = {name: "RUNNING (0)" for name in loaded}
        self.recoverable = recoverable
        self.commands, self.fired, self.fired_events = [], [], []
        self.globals = {}
        self.cancelled = 0

    def _event(self, subclass, **headers):
        self.fired_events.append(Event({"Event-Name": "CUSTOM", "Event-Subclass": subclass,
                                        **headers}))

    def api(self, command):
        self.commands.append(command)
        words = command.split()
        if command == "sofia status":
            rows = [f"{n:>25}\tprofile\t  sip:mod_sofia@198.18.0.101:5060\t{s}"
                    for n, s in sorted(self.profiles.items())]
            return "\n".join(["Name\tType\tData\tState"] + rows + ["1 profile 0 aliases", ""])
        if words[:2] == ["sofia", "profile"]:
            name, verb = words[2], words[3]
            if verb in ("start", "restart"):
                self.profiles[name] = "RUNNING (0)"
                self._event("sofia::profile_start", profile_name=name)
                return f"{name} started successfully\n"
            if verb == "stop":
                self.profiles.pop(name, None)
                return f"stopping: {name}"
            if verb == "recover":
                count, self.recoverable = self.recoverable, 0
                self._event("sofia::recovery_recovered", profile_name=name,
                            recovered_calls=str(count))
                return f"Recovered {count} session(s)\n" if count else "No sessions to recover.\n"
        if words[0] == "global_setvar":
            key, value = words[1].split("=", 1)
            self.globals[key] = value
            return "+OK"
        return "-ERR unexpected\n"

    def expect(self, subclass, match):
        return Armed(self, subclass, match)

    def fire(self, subclass, headers):
        self.fired.append((subclass, headers))


@pytest.fixture
def db(any_db):
    fs_metadata.create_all(any_db.write)
    return any_db


def service(db, fs, node="pbx3"):
    return VipService(Config(node_name=node, lease_seconds=3), db, fs, sleep=lambda s: None)


def _rows(db, *cols):
    with db.write.connect() as conn:
        return conn.execute(select(*cols)).fetchall()


def test_profile_states_parses_sofia_status():
    text = FakeFreeSwitch(loaded=["vip1"]).api("sofia status")
    assert profile_states(text) == {"vip1": "RUNNING (0)"}


def test_takeover_runs_every_step_and_records_them(db):
    with db.write.begin() as conn:
        conn.execute(insert(cluster_vips).values(vip_name="vip1", owner_node="pbx1",
                                                 lease_expires=0, epoch=4))
        conn.execute(insert(sip_registrations).values(call_id="a", profile_name="vip1",
                                                      hostname="pbx1", orig_hostname="pbx1"))
        conn.execute(insert(channels).values(uuid="g", name="sofia/vip1/1000@demo.local",
                                             hostname="pbx1"))
    fs = FakeFreeSwitch(recoverable=2)
    detail = service(db, fs).takeover("vip1", held_after=["vip2"])
    assert detail["former_owner"] == "pbx1" and detail["sip_registrations"] == 1
    assert (detail["profile"], detail["recovered_calls"], detail["recovery_confirmed"]) == \
        ("start", 2, True)
    assert detail["ghosts"]["channels"] == 1
    assert set(detail["steps_ms"]) == {"claim", "registrations", "profile", "recover", "announce",
                                      "mirror"}
    assert "sofia profile vip1 recover" in fs.commands
    assert not any(c.strip() == "sofia recover" for c in fs.commands)
    assert fs.globals == {"fscluster_role": "active", "fscluster_vips": "vip1,vip2"}
    assert fs.fired[-1][0] == "fscluster::takeover" and fs.fired[-1][1]["from_node"] == "pbx1"
    assert _rows(db, sip_registrations.c.hostname) == [("pbx3",)]
    assert _rows(db, channels.c.uuid) == []
    event = _rows(db, cluster_events.c.kind, cluster_events.c.from_node, cluster_events.c.detail)
    assert [(k, f) for k, f, _ in event] == [("takeover", "pbx1")]
    assert json.loads(event[0][2])["steps_ms"].keys() == detail["steps_ms"].keys()
    assert _rows(db, cluster_nodes.c.node_name, cluster_nodes.c.role, cluster_nodes.c.vips) == \
        [("pbx3", "active", "vip1,vip2")]


def test_rerun_keeps_a_running_profile_and_a_loaded_one_is_restarted(db):
    fs = FakeFreeSwitch(loaded=["vip1"])
    svc = service(db, fs)
    assert svc.takeover("vip1", [])["profile"] == "restart"      # loaded, not ours before
    assert svc.takeover("vip1", [])["profile"] == "kept"         # re-run: calls untouched
    assert sum("restart" in c for c in fs.commands) == 1
    assert fs.cancelled == 2          # nothing to recover: the armed waits are disarmed


def test_live_owner_stops_the_takeover_before_freeswitch_is_touched(db):
    vip_claims.claim(db, "vip1", "198.18.0.101", "pbx1", 60)
    fs = FakeFreeSwitch()
    svc = VipService(Config(node_name="pbx3", lease_seconds=0.2), db, fs, sleep=lambda s: None)
    with pytest.raises(vip_claims.ClaimRefused):
        svc.takeover("vip1", [])
    assert fs.commands == []


def test_release_stops_only_that_profile_and_frees_the_claim(db):
    fs = FakeFreeSwitch()
    svc = service(db, fs)
    svc.takeover("vip1", [])
    svc.takeover("vip2", ["vip1"])
    detail = svc.release("vip1", ["vip2"], "address not on interface")
    assert detail["profile_stopped"] and detail["claim_released"]
    assert fs.profiles == {"vip2": "RUNNING (0)"}
    assert not any("vip2 stop" in c for c in fs.commands)
    assert vip_claims.owner(db, "vip1") is None and vip_claims.owner(db, "vip2") == "pbx3"
    assert fs.globals["fscluster_vips"] == "vip2"


def test_profile_that_never_starts_fails_the_takeover(db, monkeypatch):
    class Broken(FakeFreeSwitch):
        def api(self, command):
            if command.startswith("sofia profile"):
                self.commands.append(command)
                return "Failure starting vip1\n"
            return super().api(command)
    clock = iter(range(0, 1000, 5))
    svc = VipService(Config(node_name="pbx3"), db, Broken(), monotonic=lambda: next(clock),
                     sleep=lambda s: None)
    with pytest.raises(TakeoverFailed, match="Failure starting vip1"):
        svc.takeover("vip1", [])
