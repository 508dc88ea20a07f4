"""Registration events and snapshots → this node's mirror rows (pure mapping + SQLite)."""
import pytest
from sqlalchemy import select

from esl_apps.mirror import Mirror
from esl_apps.protocol import Event, FrameParser, parse_event
from esl_apps.registrations import RegistrationTracker, row_from_register, rows_from_show
from fscluster.schema import cluster_registrations
from tests.captures import esl_session

SHOW = ('{"row_count":1,"rows":[{"reg_user":"1001","realm":"demo.local",'
        '"token":"1-2665@127.0.0.1","url":"sofia/vip1/sip:1001@127.0.0.1:5071",'
        '"expires":"1795560083","network_ip":"127.0.0.1","network_port":"5071",'
        '"network_proto":"udp","hostname":"pbx1","metadata":""}]}')


def captured_register():
    frames = FrameParser().frames(esl_session())
    events = [parse_event(f.body) for f in frames if f.content_type == "text/event-plain"]
    return next(e for e in events if e.key == "sofia::register")


def event(subclass, **headers):
    return Event(dict({"Event-Name": "CUSTOM", "Event-Subclass": subclass},
                      **{k.replace("_", "-"): v for k, v in headers.items()}))


def test_row_from_captured_register():
    row = row_from_register(captured_register(), "pbx1", now=1000)
    assert row == {
        "call_id": "1-3140@127.0.0.1", "node": "pbx1", "profile_name": "vip1",
        "sip_user": "1001", "sip_host": "demo.local",
        "contact": '"" <sip:1001@127.0.0.1:5071>', "status": "Registered(UDP)",
        "network_ip": "127.0.0.1", "network_port": "5071", "user_agent": "sipp-acceptance",
        "sip_username": "1001", "sip_realm": "demo.local", "expires": 4600}


def test_rows_from_show_real_answer_and_empty():
    assert rows_from_show(SHOW, "pbx1") == [{
        "call_id": "1-2665@127.0.0.1", "node": "pbx1", "profile_name": "vip1",
        "sip_user": "1001", "sip_host": "demo.local", "sip_realm": "demo.local",
        "contact": "sip:1001@127.0.0.1:5071", "network_ip": "127.0.0.1",
        "network_port": "5071", "expires": 1795560083}]
    assert rows_from_show('{"row_count": 0}', "pbx1") == []
    with pytest.raises(ValueError, match="did not answer JSON"):
        rows_from_show("-ERR no reply\n", "pbx1")


def stored(db):
    with db.read.connect() as conn:
        return {r.call_id: r for r in conn.execute(select(cluster_registrations))}


def test_tracker_register_unregister_expire_and_foreign_expire(sqlite_db):
    mirror = Mirror(sqlite_db, "pbx1")
    tracker = RegistrationTracker(mirror, "pbx1", clock=lambda: 1000)
    handlers = tracker.handlers()
    handlers["sofia::register"](captured_register())
    handlers["sofia::register"](event("sofia::register", call_id="c2", profile_name="vip1",
                                      from_user="1002", expires="60"))
    handlers["sofia::register_failure"](event("sofia::register_failure", to_user="1003"))
    mirror.flush()
    assert set(stored(sqlite_db)) == {"1-3140@127.0.0.1", "c2"}
    # Another node's ghost row expiring in the shared table: not ours, nothing happens.
    other = Mirror(sqlite_db, "pbx2")
    other.upsert(cluster_registrations, {"call_id": "ghost", "node": "pbx2"})
    other.flush()
    handlers["sofia::expire"](event("sofia::expire", call_id="ghost", expires="1795560083"))
    assert mirror.pending == 0
    # socket-disconnection unregister carries the call-id only (sofia.c)
    handlers["sofia::unregister"](event("sofia::unregister", call_id="c2",
                                        reason="socket-disconnection"))
    handlers["sofia::expire"](event("sofia::expire", call_id="1-3140@127.0.0.1"))
    mirror.flush()
    assert set(stored(sqlite_db)) == {"ghost"}
    assert (tracker.count, tracker.failures) == (0, 1)


def test_tracker_snapshot_replaces_and_sets_ownership(sqlite_db):
    mirror = Mirror(sqlite_db, "pbx1")
    tracker = RegistrationTracker(mirror, "pbx1")
    tracker.handlers()["sofia::register"](event("sofia::register", call_id="phantom"))
    mirror.flush()
    tracker.handlers()["snapshot:registrations"](SHOW)
    mirror.flush()
    assert set(stored(sqlite_db)) == {"1-2665@127.0.0.1"}
    assert tracker.own == {"1-2665@127.0.0.1"}
