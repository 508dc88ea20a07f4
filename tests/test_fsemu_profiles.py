"""Profiles, channels and call recovery as mod_sofia / switch_core_sqldb do them."""
import http.server
import json
import threading
import urllib.parse

import pytest
from sqlalchemy import select

from fscluster.fs_tables import calls, channels, recovery
from fsemu import ProfileSettings
from tests.servers.fsemu import EslClient

pytestmark = pytest.mark.integration


def rows(db, table):
    with db.write.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


def test_channels_calls_and_show_channels(fsemu, any_db):  # noqa: F811
    emu = fsemu("pbx1", any_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE "
                "CHANNEL_HANGUP_COMPLETE")
    call = emu.driver.call("1000", "1001")
    names = [e.name for e in client.events(5)]
    assert names == ["CHANNEL_CREATE", "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_ANSWER",
                     "CHANNEL_BRIDGE"]
    shown = json.loads(emu.driver.api("show channels as json"))
    assert shown["row_count"] == 2
    assert {r["uuid"] for r in shown["rows"]} == set(call.uuids)
    assert all(r["hostname"] == "pbx1" and r["callstate"] == "ACTIVE" for r in shown["rows"])
    assert [(c["caller_uuid"], c["callee_uuid"]) for c in rows(any_db, calls)] == \
        [tuple(call.uuids)]
    emu.driver.hangup(call)
    done = client.events(2)
    assert [e.name for e in done] == ["CHANNEL_HANGUP_COMPLETE"] * 2
    assert done[0].get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done[0].get("variable_sofia_profile_name") == "vip1"
    assert emu.driver.api("show channels as json") == '{"row_count": 0}'
    assert rows(any_db, channels) == [] and rows(any_db, calls) == []
    assert rows(any_db, recovery) == []


def test_profile_recover_takes_only_that_profile_bare_recover_takes_everything(
        fsemu, any_db):  # noqa: F811
    pbx1 = fsemu("pbx1", any_db.url, profiles=("vip1",))
    pbx2 = fsemu("pbx2", any_db.url, profiles=("vip2",))
    pbx3 = fsemu("pbx3", any_db.url, profiles=("vip1", "vip2"))
    dead_call = pbx1.driver.call("1000", "1001", profile="vip1")
    live_call = pbx2.driver.call("2000", "2001", profile="vip2")
    assert {r["hostname"] for r in rows(any_db, recovery)} == {"pbx1", "pbx2"}
    pbx1.kill()
    client = EslClient(pbx3.port).login()
    client.send("event plain CUSTOM sofia::recovery_recovered")
    assert pbx3.driver.api("sofia profile vip1 recover") == "Recovered 2 session(s)\n"
    assert client.events(1)[0].get("recovered_calls") == "2"
    owners = {r["uuid"]: (r["hostname"], r["runtime_uuid"]) for r in rows(any_db, recovery)}
    for uuid in dead_call.uuids:
        assert owners[uuid] == ("pbx3", pbx3.core_uuid)
    for uuid in live_call.uuids:
        assert owners[uuid] == ("pbx2", pbx2.core_uuid)
    ghosts = [r for r in rows(any_db, channels) if r["hostname"] == "pbx1"]
    assert {r["uuid"] for r in ghosts} == set(dead_call.uuids)     # left behind, as FS does
    assert json.loads(pbx3.driver.api("show channels as json"))["row_count"] == 2
    assert pbx3.driver.api("sofia profile vip1 recover") == "No sessions to recover.\n"
    # the dangerous one: a bare recover also grabs the other *live* node's calls
    assert pbx3.driver.api("sofia recover") == "Recovered 2 session(s)\n"
    owners = {r["uuid"]: r["hostname"] for r in rows(any_db, recovery)}
    assert all(owners[uuid] == "pbx3" for uuid in live_call.uuids)


def test_profile_stop_restart_rules(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, min_restart_uptime=3600)
    assert emu.driver.api("sofia profile vip1 restart") == (
        "Profile vip1 must be up for at least 3600 seconds to stop/restart.\n"
        "Please wait 3600 seconds\n")
    emu.stop()
    emu = fsemu("pbx1", sqlite_db.url, profiles=("vip1", "vip2"))
    client = EslClient(emu.port).login()
    client.send("event plain CHANNEL_HANGUP_COMPLETE CUSTOM sofia::profile_start")
    emu.driver.call("1000", "1001", profile="vip1")
    kept = emu.driver.call("2000", "2001", profile="vip2")
    assert emu.driver.api("sofia profile vip1 restart") == "restarting: vip1"
    events = client.events(3)
    assert [e.name for e in events[:2]] == ["CHANNEL_HANGUP_COMPLETE"] * 2
    assert events[0].get("Hangup-Cause") == "MANAGER_REQUEST"
    assert events[2].subclass == "sofia::profile_start"
    assert events[2].get("profile_name") == "vip1"
    assert events[2].get("profile_uri") == "sip:mod_sofia@127.0.0.1:5090"
    assert {r["uuid"] for r in rows(sqlite_db, channels)} == set(kept.uuids)
    assert emu.driver.api("sofia profile vip1 start") == \
        "Reload XML [Success]\nvip1 started successfully\n"
    assert emu.driver.api("sofia profile nosuch start") == \
        "Reload XML [Success]\nFailure starting nosuch\n"
    assert emu.driver.api("sofia profile nosuch stop") == "Invalid Profile [nosuch]"
    assert emu.driver.api("sofia profile vip2 stop") == "stopping: vip2"
    emu.driver.wait_profiles_running(names=["vip1"])
    status = emu.driver.api("sofia status").split("\n")
    assert status[0].split() == ["Name", "Type", "Data", "State"]
    assert status[2].split("\t") == [f"{'vip1':>25}", "profile",
                                     f"  {'sip:mod_sofia@127.0.0.1:5090':>40}", "RUNNING (0)"]
    assert status[-2] == "1 profile 0 aliases"


def test_core_commands(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    api = emu.driver.api
    assert api("global_getvar fscluster_role") == "-ERR no reply\n"
    assert api("global_setvar fscluster_role=active") == "+OK"
    assert api("global_getvar fscluster_role") == "active"
    assert api("switchname") == "pbx1"
    assert api("status").startswith("UP 0 years, 0 days, ")
    assert api("nosuch thing") == "-ERR nosuch Command not found!\n"
    assert api("show registrations").endswith("\n0 total.\n")


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in xml_curl service: records forms, serves a sofia.conf with vip1 only."""

    forms = []
    SOFIA = ('<document type="freeswitch/xml"><section name="configuration">'
             '<configuration name="sofia.conf"><profiles><profile name="vip1"><settings>'
             '<param name="sip-ip" value="198.18.0.10"/><param name="sip-port" value="5080"/>'
             '</settings></profile></profiles></configuration></section></document>')

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = dict(urllib.parse.parse_qsl(body))
        self.forms.append((self.headers["User-Agent"], form))
        text = self.SOFIA if form.get("key_value") == "sofia.conf" else \
            '<document type="freeswitch/xml"><section name="result">' \
            '<result status="not found"/></section></document>'
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def xml_curl_recorder():
    _Recorder.forms = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/fscluster"
    server.shutdown()
    server.server_close()


def test_boot_reads_sofia_conf_through_xml_curl(fsemu, sqlite_db, xml_curl_recorder):  # noqa: F811,E501
    emu = fsemu("pbx1", sqlite_db.url, xml_curl_url=xml_curl_recorder,
                profiles=(ProfileSettings("vip2"),))          # static XML: not used
    assert emu.driver.profiles_running() == ["vip1"]
    boot = _Recorder.forms[0][1]
    assert (boot["section"], boot["key_value"]) == ("configuration", "sofia.conf")
    assert "profile" not in boot and "reconfig" not in boot
    assert boot["Event-Calling-Function"] == "config_sofia"


def test_profile_start_fetches_sofia_conf_and_gateways_through_xml_curl(
        fsemu, sqlite_db, xml_curl_recorder):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, xml_curl_url=xml_curl_recorder, autostart_profiles=(),
                profiles=(ProfileSettings("vip2"),))
    assert emu.driver.api("sofia profile vip1 start").endswith("vip1 started successfully\n")
    emu.driver.wait_profiles_running(names=["vip1"])
    assert "sip:mod_sofia@198.18.0.10:5080" in emu.driver.api("sofia status")
    assert {agent for agent, _ in _Recorder.forms} == {"freeswitch-xml/1.0"}
    conf, gateways = [form for _, form in _Recorder.forms[1:3]]
    assert (conf["section"], conf["key_value"], conf["profile"], conf["reconfig"]) == \
        ("configuration", "sofia.conf", "vip1", "true")
    assert conf["hostname"] == "pbx1" and conf["Core-UUID"] == emu.core_uuid
    assert (gateways["section"], gateways["purpose"], gateways["profile"]) == \
        ("directory", "gateways", "vip1")
    # a usable document without the profile: start fails (static XML is not consulted)
    assert emu.driver.api("sofia profile vip2 start").endswith("Failure starting vip2\n")


def test_kill_leaves_rows_restart_keeps_or_loses_state(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    emu.driver.register(["1000"])
    call = emu.driver.call("1000", "1001")
    emu.kill()
    assert {r["uuid"] for r in rows(sqlite_db, channels)} == set(call.uuids)   # ghosts
    emu.restart(keep_state=True)
    assert rows(sqlite_db, channels) == [] and rows(sqlite_db, calls) == []   # own rows cleared
    assert json.loads(emu.driver.api("show registrations as json"))["row_count"] == 1
    assert {r["hostname"] for r in rows(sqlite_db, recovery)} == {"pbx1"}    # recoverable
    emu.restart(keep_state=False)
    assert emu.driver.api("show registrations as json") == '{"row_count": 0}'
    assert rows(sqlite_db, recovery) == []


def test_graceful_restart_hangs_up_calls_first(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CHANNEL_HANGUP_COMPLETE")
    emu.driver.call("1000", "1001")
    emu.restart()
    hangups = client.events(2)
    assert {e.get("Hangup-Cause") for e in hangups} == {"SYSTEM_SHUTDOWN"}
    assert client.frame().content_type == "text/disconnect-notice"
    assert rows(sqlite_db, recovery) == []
