"""``sendevent`` on the agent's connection (the takeover's ``fscluster::takeover`` event), and
the one-shot ``api`` the health check uses, against a scripted event socket."""
import gevent
import pytest

from esl_apps import oneshot
from esl_apps.connection import Connection
from esl_apps.protocol import CommandParser, encode_sendevent
from tests.esl_support import ScriptedEsl, reply, standard_respond


def respond_with_sendevent():
    standard = standard_respond(api=lambda cmd: "RUNNING" if cmd == "sofia status" else None)

    def respond(command):
        if command.startswith("sendevent "):
            return reply("+OK")
        return standard(command)
    return respond


@pytest.fixture
def server():
    scripted = ScriptedEsl(respond_with_sendevent())
    yield scripted
    scripted.stop()


def test_encode_sendevent_is_one_block_and_refuses_forged_headers():
    data = encode_sendevent("CUSTOM", [("Event-Subclass", "fscluster::takeover"), ("vip", "vip1")])
    assert CommandParser().commands(data) == [
        "sendevent CUSTOM\nEvent-Subclass: fscluster::takeover\nvip: vip1"]
    with pytest.raises(ValueError):
        encode_sendevent("CUSTOM", [("vip", "vip1\nEvent-Name: SHUTDOWN")])


def test_sendevent_then_api_keep_their_replies(server):
    conn = Connection("127.0.0.1", server.port, "ClueCon", timeout=2)
    conn.connect()
    try:
        assert conn.sendevent("CUSTOM", [("Event-Subclass", "fscluster::takeover")]) \
            .reply_text == "+OK"
        with pytest.raises(ValueError):          # refused before anything is queued ...
            conn.send("api status\napi switchname")
        assert conn.api("switchname") == "pbx1"  # ... so replies do not shift
    finally:
        conn.stop()
    assert "sendevent CUSTOM\nEvent-Subclass: fscluster::takeover" in server.commands


def _oneshot(*args):
    """Blocking sockets: run in a real thread so the scripted (gevent) server can answer."""
    return gevent.get_hub().threadpool.apply(oneshot.api, args)


def test_oneshot_api_and_its_errors(server):
    assert _oneshot("127.0.0.1", server.port, "ClueCon", "sofia status", 2) == "RUNNING"
    with pytest.raises(oneshot.OneShotError, match="auth rejected"):
        _oneshot("127.0.0.1", server.port, "wrong", "sofia status", 2)
    with pytest.raises(oneshot.OneShotError, match="127.0.0.1:1"):
        _oneshot("127.0.0.1", 1, "ClueCon", "sofia status", 1)
