"""The transport against a scripted raw server: deadlines, ordering, death, hostile bytes."""
import re

import gevent
import pytest
from hypothesis import given, settings, strategies as st

from esl_apps.connection import (ApiError, AuthFailed, CommandTimeout, Connection,
                                 ConnectionLost)
from esl_apps.protocol import encode_event_plain, encode_frame
from tests.esl_support import (ScriptedEsl, api_response, gwait, reply, standard_respond)


@pytest.fixture
def servers():
    started = []

    def start(respond=None, **kwargs):
        server = ScriptedEsl(respond or standard_respond(), **kwargs)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


def connect(server, events=None, timeout=2.0, idle_timeout=30.0, password="ClueCon"):
    conn = Connection("127.0.0.1", server.port, password, timeout=timeout,
                      idle_timeout=idle_timeout,
                      on_event=None if events is None else events.append)
    conn.connect()
    return conn


def test_auth_api_and_events_in_order(servers):
    server = servers()
    events = []
    conn = connect(server, events)
    assert conn.api("switchname") == "pbx1"
    server.push(encode_event_plain([("Event-Name", "CUSTOM"),
                                    ("Event-Subclass", "sofia::register"),
                                    ("call-id", "a\nEvent-Name: FORGED 100%: x")]))
    gwait(lambda: events, 2, "the event")
    assert events[0].key == "sofia::register"
    assert events[0].get("call-id") == "a\nEvent-Name: FORGED 100%: x"
    assert events[0].name == "CUSTOM"
    conn.stop()
    assert not conn.connected


def test_wrong_password_is_a_clear_auth_error(servers):
    server = servers()
    with pytest.raises(AuthFailed, match="refused the event-socket password"):
        connect(server, password="wrong")


def test_rude_rejection_is_reported(servers):
    body = b"Access Denied, go away.\n"
    server = servers(greeting=encode_frame([("Content-Type", "text/rude-rejection")], body))
    with pytest.raises(ConnectionLost, match="rude-rejection.*Access Denied"):
        connect(server)


def test_no_auth_request_times_out(servers):
    server = servers(greeting=b"")
    with pytest.raises(ConnectionLost, match="no auth/request within 0.3s"):
        connect(server, timeout=0.3)


def test_connect_refused_names_the_address():
    conn = Connection("127.0.0.1", 1, "ClueCon", timeout=1)
    with pytest.raises(ConnectionLost, match="cannot connect to FreeSWITCH at 127.0.0.1:1"):
        conn.connect()


def test_hung_command_times_out_and_late_reply_does_not_shift(servers):
    held = []

    def api(command):
        if command == "slow":
            held.append(command)
            return None  # answered later by hand
        return f"answer to {command}"

    server = servers(standard_respond(api=api))
    conn = connect(server)
    with pytest.raises(CommandTimeout, match="'api slow': no reply .* within 0.2s"):
        conn.api("slow", timeout=0.2)
    assert held
    server.push(api_response("late answer to slow"))  # the abandoned slot consumes it
    assert conn.api("status") == "answer to status"
    assert conn.connected


def test_concurrent_commands_never_swap_replies(servers):
    server = servers(standard_respond(api=lambda command: f"answer to {command}"))
    conn = connect(server)
    results = {}

    def ask(n):
        results[n] = conn.api(f"q{n}")
    gevent.joinall([gevent.spawn(ask, n) for n in range(50)], timeout=10)
    assert results == {n: f"answer to q{n}" for n in range(50)}


def test_bgapi_returns_job_and_result(servers):
    job_uuid = "3c2e6671-68fc-4a22-92fe-885b3edbaa03"

    def respond(command):
        if command.startswith("bgapi "):
            gevent.spawn_later(0.05, server.push, encode_event_plain(
                [("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", job_uuid),
                 ("Job-Command", "status")], body="UP 0 years\n"))
            return reply(f"+OK Job-UUID: {job_uuid}", Job_UUID=job_uuid)
        return standard_respond()(command)

    server = servers(respond)
    conn = connect(server)
    job = conn.bgapi("status")
    assert job.uuid == job_uuid
    assert job.result(timeout=2) == "UP 0 years\n"


def test_api_check_raises_on_err(servers):
    server = servers(standard_respond(api=lambda c: "-ERR nosuch Command not found!\n"))
    conn = connect(server)
    with pytest.raises(ApiError, match="Command not found"):
        conn.api("nosuch", check=True)
    assert conn.api("nosuch").startswith("-ERR")


@pytest.mark.parametrize("garbage, reason", [
    (b"this is not a header line\n\n", "garbage on the event socket: malformed header"),
    (b"Content-Type: api/response\nContent-Length: x\n\n", "bad Content-Length"),
    (b"Content-Type: command/reply\nReply-Text: +OK\n\n", "command/reply with no command"),
])
def test_garbage_kills_the_connection_and_fails_waiters_at_once(servers, garbage, reason):
    server = servers(standard_respond(api=lambda c: None))
    conn = connect(server)
    waiter = gevent.spawn(conn.api, "never", timeout=30)
    gwait(lambda: "api never" in server.commands, 2, "the command to reach the server")
    if "no command" in reason:  # a reply nobody waits for needs no waiter in front of it
        server.push(api_response("answer to never"))
        assert waiter.get(timeout=2) == "answer to never"
    server.push(garbage)
    gwait(lambda: not conn.connected, 2, "the connection to be marked dead")
    assert reason in conn.dead_reason
    if not waiter.ready():
        waiter.join(timeout=2)
        assert isinstance(waiter.exception, ConnectionLost)
    with pytest.raises(ConnectionLost, match="not connected"):
        conn.api("status")


def test_truncated_frame_then_eof_is_reported(servers):
    server = servers()
    conn = connect(server)
    server.push(b"Content-Type: api/response\nContent-Length: 100\n\nonly a part")
    server.drop_clients()
    gwait(lambda: not conn.connected, 2, "EOF to be noticed")
    assert "truncated frame" in conn.dead_reason


def test_silent_socket_is_declared_dead(servers):
    server = servers()
    conn = connect(server, idle_timeout=0.3)
    gwait(lambda: not conn.connected, 3, "the idle timeout")
    assert "no data for 0.3s" in conn.dead_reason


def test_reconnect_on_the_same_object(servers):
    server = servers()
    conn = connect(server)
    server.drop_clients()
    gwait(lambda: not conn.connected, 2, "EOF")
    conn.connect()
    assert conn.api("switchname") == "pbx1"


def test_auth_password_never_in_error_text(servers):
    server = servers(standard_respond(api=lambda c: None), greeting=b"Content-Type: auth/request\n\n")
    server.respond = lambda command: None  # auth never answered
    with pytest.raises(CommandTimeout) as info:
        connect(server, timeout=0.3, password="s3cret-pw")
    assert "s3cret-pw" not in str(info.value)
    assert "'auth'" in str(info.value)


_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda v: not re.search("%[0-9A-Fa-f]{2}", v))  # FreeSWITCH keeps an existing %XX


_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,15}\Z").filter(
    lambda n: n not in ("Content-Length", "Event-Name"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.dictionaries(_names, _values, max_size=6), min_size=1, max_size=5),
       st.integers(min_value=1, max_value=97))
def test_encoded_values_survive_the_socket_in_any_chunking(events, chunk):
    """Whatever the values (newlines, ': ', '%') and however TCP splits the stream, every
    event reaches on_event intact and in order."""
    server = ScriptedEsl(standard_respond())
    received = []
    try:
        conn = connect(server, received)
        wire = b"".join(encode_event_plain([("Event-Name", "CUSTOM")] + sorted(h.items()))
                        for h in events)
        for start in range(0, len(wire), chunk):
            server.push(wire[start:start + chunk])
        gwait(lambda: len(received) == len(events), 5, "every event")
        for sent, got in zip(events, received):
            assert {k: v for k, v in got.headers.items() if k != "Event-Name"} == sent
        conn.stop()
    finally:
        server.stop()
