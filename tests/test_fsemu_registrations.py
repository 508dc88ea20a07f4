"""Registrations in the shared DB with FreeSWITCH's hostname rules (SQLite and real MariaDB)."""
import json
import time

import pytest
from sqlalchemy import select, update

from fscluster.fs_tables import registrations, sip_registrations
from fsemu import Binding
from tests.servers.fsemu import EslClient

pytestmark = pytest.mark.integration
SHOW_KEYS = ["reg_user", "realm", "token", "url", "expires", "network_ip", "network_port",
             "network_proto", "hostname", "metadata"]


def rows(db, table):
    with db.write.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


def test_register_writes_freeswitch_rows_and_show_json(fsemu, any_db):  # noqa: F811
    emu = fsemu("pbx1", any_db.url)
    before = int(time.time())
    emu.driver.register_bindings([Binding("1000", "demo.local", "vip1", "c1@x",
                                          network_port=5070)])
    (row,) = rows(any_db, sip_registrations)
    assert (row["hostname"], row["orig_hostname"], row["sub_host"]) == \
        ("pbx1", "pbx1", "demo.local")
    assert row["contact"] == '"" <sip:1000@127.0.0.1:5070>'
    assert row["status"] == "Registered(UDP)" and row["ping_status"] == "Reachable"
    assert before + 3660 <= row["expires"] <= int(time.time()) + 3660
    shown = json.loads(emu.driver.api("show registrations as json"))
    assert shown["row_count"] == 1
    assert list(shown["rows"][0]) == SHOW_KEYS
    assert shown["rows"][0]["url"] == "sofia/vip1/sip:1000@127.0.0.1:5070"
    assert shown["rows"][0]["hostname"] == "pbx1"
    assert shown["rows"][0]["expires"] == str(row["expires"])
    assert emu.driver.api("show channels as json") == '{"row_count": 0}'


def test_other_node_finds_but_does_not_own_rows_until_rehomed(fsemu, any_db):  # noqa: F811
    pbx1 = fsemu("pbx1", any_db.url)
    pbx3 = fsemu("pbx3", any_db.url)
    pbx1.driver.register(["1000"])
    pbx1.kill()
    assert pbx3.driver.api("sofia_contact */1000@demo.local") == \
        "sofia/vip1/sip:1000@127.0.0.1:20000"
    assert pbx3.driver.api("show registrations as json") == '{"row_count": 0}'
    assert "Host:       \tpbx1" in pbx3.driver.api("sofia status profile vip1 reg")
    with any_db.write.begin() as conn:                 # what the takeover does
        conn.execute(update(sip_registrations).values(hostname="pbx3", orig_hostname="pbx3"))
        conn.execute(update(registrations).values(hostname="pbx3"))
    shown = json.loads(pbx3.driver.api("show registrations as json"))
    assert [r["hostname"] for r in shown["rows"]] == ["pbx3"]


def test_expiry_sweep_fires_for_every_node_but_deletes_only_own(fsemu, any_db):  # noqa: F811
    pbx1 = fsemu("pbx1", any_db.url)
    pbx3 = fsemu("pbx3", any_db.url)
    pbx1.driver.register(["1000"], expires=60)
    pbx3.driver.register(["2000"], expires=60)
    pbx1.kill()
    client = EslClient(pbx3.port).login()
    client.send("event plain CUSTOM sofia::expire")
    pbx3.driver.advance(600)
    expired = pbx3.driver.sweep()
    assert sorted(r["sip_user"] for r in expired) == ["1000", "2000"]
    events = client.events(2)
    by_user = {e.get("user"): e for e in events}
    assert set(by_user) == {"1000", "2000"}
    stored = {r["sip_user"]: r["expires"] for r in rows(any_db, sip_registrations)}
    assert list(stored) == ["1000"]                     # pbx1's row stays: not pbx3's to delete
    assert by_user["1000"].get("expires") == str(stored["1000"])   # absolute epoch
    assert [r["reg_user"] for r in rows(any_db, registrations)] == ["1000"]


def test_refresh_on_another_node_rehomes_the_row(fsemu, any_db):  # noqa: F811
    pbx1 = fsemu("pbx1", any_db.url)
    pbx3 = fsemu("pbx3", any_db.url)
    (binding,) = pbx1.driver.register(["1000"])
    client = EslClient(pbx3.port).login()
    client.send("event plain CUSTOM sofia::register")
    assert pbx3.driver.refresh([binding]) == 1
    event = client.events(1)[0]
    assert event.get("update-reg") == "true"
    (row,) = rows(any_db, sip_registrations)
    assert (row["hostname"], row["orig_hostname"]) == ("pbx3", "pbx3")


def test_unregister_and_failure(fsemu, any_db):  # noqa: F811
    emu = fsemu("pbx1", any_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CUSTOM sofia::unregister sofia::register_failure")
    (binding,) = emu.driver.register(["1000"])
    assert emu.driver.fail_auth(Binding("1001", "demo.local", "vip1", "bad@x"))
    failure = client.events(1)[0]
    assert failure.subclass == "sofia::register_failure"
    assert failure.get("to-user") == "1001" and failure.get("registration-type") == "REGISTER"
    assert emu.driver.unregister([binding]) == 1
    gone = client.events(1)[0]
    assert gone.subclass == "sofia::unregister"
    assert (gone.get("call-id"), gone.get("expires")) == (binding.call_id, "0")
    assert rows(any_db, sip_registrations) == [] and rows(any_db, registrations) == []


@pytest.mark.parametrize("core_multi, shown", [(False, 1), (True, 2)])
def test_two_phones_one_user(fsemu, sqlite_db, core_multi, shown):  # noqa: F811
    """sofia keeps both contacts (multiple-registrations=contact); the core table keeps one
    per user@realm unless switch.conf turns multiple-registrations on."""
    emu = fsemu("pbx1", sqlite_db.url, core_multiple_registrations=core_multi)
    phones = [Binding("1000", "demo.local", "vip1", "a@x", network_port=5070),
              Binding("1000", "demo.local", "vip1", "b@x", network_port=5071)]
    emu.driver.register_bindings(phones[:1])
    emu.driver.register_bindings(phones[1:])
    assert len(rows(sqlite_db, sip_registrations)) == 2
    assert emu.driver.api("sofia_contact 1000@demo.local").count("sofia/vip1/") == 2
    assert emu.driver.api("sofia_contact 9999@demo.local") == "error/user_not_registered"
    assert json.loads(emu.driver.api("show registrations as json"))["row_count"] == shown
    assert [r["metadata"] for r in rows(sqlite_db, registrations)] == [None] * shown


def test_registration_storm_is_paced_and_complete(fsemu, any_db):  # noqa: F811
    emu = fsemu("pbx1", any_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CUSTOM sofia::register")
    users = [str(3000 + i) for i in range(300)]
    assert len(emu.driver.register(users, rate=3000)) == 300
    assert sorted(e.get("from-user") for e in client.events(300)) == users
    assert json.loads(emu.driver.api("show registrations as json"))["row_count"] == 300


def test_tcp_socket_close_unregisters_with_a_reason_only(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CUSTOM sofia::unregister")
    tcp = Binding("1000", "demo.local", "vip1", "t@x", network_port=5075, transport="tcp")
    udp = Binding("1001", "demo.local", "vip1", "u@x", network_port=5076)
    emu.driver.register_bindings([tcp, udp])
    assert rows(sqlite_db, sip_registrations)[0]["status"] == "Registered(TCP)"
    assert emu.driver.disconnect([tcp, udp]) == 1
    event = client.events(1)[0]
    assert event.get("reason") == "socket-disconnection"
    assert "contact" not in event.headers and "expires" not in event.headers
    assert [r["call_id"] for r in rows(sqlite_db, sip_registrations)] == ["u@x"]
