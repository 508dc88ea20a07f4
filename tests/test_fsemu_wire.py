"""mod_event_socket behaviour of the emulator: pure protocol state, then over real sockets."""
import socket

import pytest

from esl_apps.protocol import parse_event
from fsemu.event import EventFactory, Identity, Subscription
from fsemu.listener import GOODBYE, LOST_EVENTS, SHUTDOWN, Listener
from tests.servers.fsemu import EslClient

API = {"switchname": "pbx1", "empty": ""}


def listener(password="pw"):
    return Listener(password, lambda cmd, arg: API.get(cmd))


def reply_text(outcome):
    return outcome.data.decode().split("Reply-Text: ")[1].split("\n")[0]


def test_commands_before_auth_are_refused_but_keep_the_connection():
    lst = listener()
    outcome = lst.handle("api switchname")
    assert reply_text(outcome) == "-ERR command not found" and not outcome.close
    assert reply_text(lst.handle("auth pw")) == "+OK accepted"
    assert lst.handle("api switchname").data == \
        b"Content-Type: api/response\nContent-Length: 4\n\npbx1"


def test_wrong_password_ends_the_connection():
    outcome = listener().handle("auth nope")
    assert reply_text(outcome) == "-ERR invalid" and outcome.close


def test_exit_is_answered_in_any_state():
    outcome = listener().handle("exit")
    assert reply_text(outcome) == "+OK bye" and outcome.close


def test_api_errors_are_freeswitch_texts():
    lst = listener()
    lst.handle("auth pw")
    assert lst.handle("api nosuch x").data.endswith(b"\n\n-ERR nosuch Command not found!\n")
    assert lst.handle("api empty").data.endswith(b"\n\n-ERR no reply\n")
    assert reply_text(lst.handle("bogus")) == "-ERR command not found"


def test_bgapi_answers_at_once_with_a_job_uuid_and_honours_the_clients():
    lst = listener()
    lst.handle("auth pw")
    outcome = lst.handle("bgapi switchname\nJob-UUID: 11111111-2222-3333-4444-555555555555")
    assert outcome.data == (b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: "
                            b"11111111-2222-3333-4444-555555555555\nJob-UUID: "
                            b"11111111-2222-3333-4444-555555555555\n\n")
    assert outcome.job == ("11111111-2222-3333-4444-555555555555", "switchname", None)


def test_sendevent_fires_the_sent_headers():
    lst = listener()
    lst.handle("auth pw")
    outcome = lst.handle("sendevent CUSTOM\nEvent-Subclass: fscluster::takeover\nvip: vip1")
    assert reply_text(outcome).startswith("+OK ")
    name, subclass, headers = outcome.fire
    assert (name, subclass) == ("CUSTOM", "fscluster::takeover")
    assert headers[:2] == [("Command", "sendevent CUSTOM"), ("vip", "vip1")]
    assert headers[-1] == ("Event-UUID", reply_text(outcome)[4:])
    assert lst.handle("sendevent NOT_A_NAME\nx: 1").fire[0] == "COMMAND"


def test_event_subscription_rules():
    sub = Subscription()
    assert sub.command(["plain", "NOT_AN_EVENT"]) == "-ERR no keywords supplied"
    assert sub.command(["plain", "CHANNEL_CREATE"]) == "+OK event listener enabled plain"
    factory = EventFactory(Identity("pbx1", "u"))
    at = ("f.c", "f", 1)
    create = factory.make("CHANNEL_CREATE", [], at)
    register = factory.custom("sofia::register", [], at)
    assert sub.wants(create) and not sub.wants(register)
    sub.command(["plain", "CUSTOM"])                   # CUSTOM alone: no subclassed event
    assert not sub.wants(register)
    sub.command(["plain", "custom", "sofia::register"])  # accumulates, case-insensitive name
    assert sub.wants(register) and sub.wants(create)
    assert not sub.wants(factory.custom("sofia::expire", [], at))
    assert sub.clear() == "+OK no longer listening for events"
    assert not sub.wants(create)
    assert sub.clear() == "-ERR not listening for events"
    sub.command(["plain", "ALL"])
    assert sub.wants(factory.custom("anything::else", [], at))


def test_event_values_are_url_encoded_per_value():
    event = EventFactory(Identity("pbx1", "u")).make(
        "CUSTOM", [("contact", '"" <sip:a@b>'), ("evil", "x\nEvil: 1")], ("f", "g", 1))
    body = event.plain().split(b"\n\n", 1)[1]
    assert b"contact: %22%22%20%3Csip%3Aa%40b%3E\n" in body
    assert parse_event(body).get("evil") == "x\nEvil: 1"
    assert "Evil" not in parse_event(body).headers


# -- over sockets ---------------------------------------------------------------------------

def test_denied_peer_gets_rude_rejection(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, acl=("198.18.0.0/15",))
    client = EslClient(emu.port)
    frame = client.frame()
    assert frame.content_type == "text/rude-rejection"
    assert frame.body == b"Access Denied, go away.\n"
    assert client.closed()


def test_bad_auth_gets_disconnect_notice_and_close(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, password="secret")
    client = EslClient(emu.port)
    client.frame()
    assert client.send("auth wrong").reply_text == "-ERR invalid"
    notice = client.frame()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == GOODBYE.encode()
    assert client.closed()


def test_garbage_lines_are_unknown_commands_and_oversized_garbage_drops_the_client(
        fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    assert client.send("\x00\xff garbage").reply_text == "-ERR command not found"
    assert client.send("api switchname").body == b"pbx1"
    client.sock.sendall(b"x" * (70 * 1024))           # no end of command in sight
    assert client.frame().content_type == "text/disconnect-notice"
    assert client.closed()
    assert EslClient(emu.port).login().send("api switchname").body == b"pbx1"


def test_auth_timeout_disconnects(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, auth_timeout=0.2)
    client = EslClient(emu.port)
    assert client.frame().content_type == "auth/request"
    assert client.frame().content_type == "text/disconnect-notice"


def test_only_subscribed_events_are_sent(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain CHANNEL_CREATE")
    emu.driver.register(["1000"])                      # not subscribed: nothing
    emu.driver.call("1000", "1001", answer=False)
    events = client.events(2)
    assert [e.name for e in events] == ["CHANNEL_CREATE", "CHANNEL_CREATE"]
    assert client.send("api switchname").body == b"pbx1"   # no stray frame in between


def test_bgapi_background_job_carries_the_output(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain BACKGROUND_JOB")
    reply = client.send("bgapi global_getvar nosuch")
    job = client.events(1)[0]
    assert job.name == "BACKGROUND_JOB"
    assert job.get("Job-UUID") == reply.headers["Job-UUID"]
    assert job.get("Job-Command") == "global_getvar"
    assert job.get("Job-Command-Arg") == "nosuch"
    assert job.body == ""
    client.send("bgapi switchname")
    job = client.events(1)[0]
    assert job.body == "pbx1" and job.get("Content-Length") == "4"


def test_sendevent_reaches_subscribers(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    watcher = EslClient(emu.port).login()
    watcher.send("event plain CUSTOM fscluster::takeover")
    sender = EslClient(emu.port).login()
    reply = sender.send("sendevent CUSTOM\nEvent-Subclass: fscluster::takeover\nvip: vip1")
    event = watcher.events(1)[0]
    assert event.subclass == "fscluster::takeover" and event.get("vip") == "vip1"
    assert event.get("Event-UUID") == reply.reply_text[4:]
    assert event.get("Core-UUID") == emu.core_uuid


def test_noevents_and_exit(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    client.send("event plain ALL")
    assert client.send("noevents").reply_text == "+OK no longer listening for events"
    emu.driver.register(["1000"])
    assert client.send("exit").reply_text == "+OK bye"     # no event came before the reply
    assert client.frame().body == GOODBYE.encode()
    assert client.closed()


def test_listener_that_loses_events_is_killed(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, max_queue=5, max_missed=3)
    client = EslClient(emu.port).login()
    client.send("event plain ALL")
    emu.hang()                                         # nothing is written: the queue fills
    emu.driver.register([str(1000 + i) for i in range(6)])
    emu.resume()
    while not client.closed():          # read until the server hangs up
        pass
    frames = client.pending
    assert frames[-1].content_type == "text/disconnect-notice"
    assert frames[-1].body == LOST_EVENTS.encode()


def test_heartbeat(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url, heartbeat_interval=0.2)
    client = EslClient(emu.port).login()
    client.send("event plain HEARTBEAT")
    emu.driver.call("1000", "1001")
    beat = client.events(1)[0]
    assert beat.name == "HEARTBEAT"
    assert beat.get("Event-Calling-Function") == "send_heartbeat"
    assert beat.get("Session-Count") == "2"
    assert int(beat.get("Uptime-msec")) >= 200
    assert beat.get("Up-Time").startswith("0 years, 0 days, 0 hours, 0 minutes, ")


def test_restart_drops_clients_and_changes_core_uuid(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    before = emu.core_uuid
    client = EslClient(emu.port).login()
    emu.restart()
    notice = client.frame()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body == SHUTDOWN.encode()
    assert client.closed()
    assert emu.core_uuid != before
    client = EslClient(emu.port).login()
    client.send("event plain CUSTOM sofia::register")
    emu.driver.register(["1000"])
    assert client.events(1)[0].get("Core-UUID") == emu.core_uuid


def test_kill_refuses_connections_and_hang_answers_nothing(fsemu, sqlite_db):  # noqa: F811
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port).login()
    emu.kill()
    assert client.closed()                              # no notice: the process died
    assert client.pending == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", emu.port), timeout=2)
    emu.restart()
    emu.hang()
    hung = EslClient(emu.port, timeout=0.3)
    with pytest.raises(socket.timeout):
        hung.frame()
    emu.resume()
    hung.timeout = 10
    assert hung.login().send("api switchname").body == b"pbx1"


def test_unreachable_database_fails_start_cleanly():
    from fsemu import Emulator
    from tests.servers.fsemu import emulator_settings
    emulator = Emulator(emulator_settings("pbx1", "mysql+pymysql://u:p@127.0.0.1:1/none"))
    with pytest.raises(Exception, match="(?i)connect"):
        emulator.start()
    assert emulator.state == "stopped"      # its thread was ended, not left behind
    emulator.stop()                         # and stopping again is harmless
