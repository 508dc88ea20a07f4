"""The emulator against the real FreeSWITCH 1.10.12 capture: same frames, same header shapes."""
import re

import pytest

from esl_apps.protocol import FrameParser, parse_event
from fsemu.event import EventFactory, Identity
from fsemu.sofia_reg import Binding, attempt_headers, register_headers
from fsemu import xml_curl_client
from tests import captures
from tests.servers.fsemu import EslClient

pytestmark = pytest.mark.skipif(not captures.FIXTURES.is_dir(), reason="captures not available")


def load_capture():
    """The real session as (outer header names, body) per frame (lengths fixed by the loader)."""
    return [(list(frame.headers), frame.body)
            for frame in FrameParser().frames(captures.esl_session())]


def header_names(body: bytes):
    return [line.split(": ", 1)[0] for line in body.decode().split("\n\n")[0].split("\n")]


def test_capture_loader_sees_every_frame():
    frames = load_capture()
    assert len(frames) == 8
    assert frames[3] == (["Content-Type", "Content-Length"], b"pbx1")
    assert all(body.endswith(b"\n\n") for _, body in frames[5:])


def test_register_events_have_the_captured_header_order():
    frames = load_capture()
    real_attempt, real_register = header_names(frames[5][1]), header_names(frames[6][1])
    factory = EventFactory(Identity("pbx1", "03d84daf-1d9e-4514-a6ff-e8ebcf93edac"))
    binding = Binding("1001", "demo.local", "vip1", "1-3140@127.0.0.1", network_port=5071,
                      user_agent="sipp-acceptance")
    calling = ("sofia_reg.c", "sofia_reg_handle_register_token", 1606)
    attempt = factory.custom("sofia::register_attempt", attempt_headers(binding, "RENEWED"),
                             calling)
    register = factory.custom("sofia::register", register_headers(binding, False), calling)
    assert header_names(attempt.plain().split(b"\n\n", 1)[1]) == real_attempt
    assert header_names(register.plain().split(b"\n\n", 1)[1]) == real_register


def test_register_event_values_match_the_capture():
    real = parse_event(load_capture()[6][1]).headers
    binding = Binding("1001", "demo.local", "vip1", "1-3140@127.0.0.1", network_port=5071,
                      user_agent="sipp-acceptance")
    ours = dict(register_headers(binding, False))
    for name, value in ours.items():
        assert real[name] == value, name


def test_event_frame_encoding_matches_the_capture_byte_for_byte():
    """Re-encode the captured event's own values: the same bytes come out (url encoding,
    header order, framing), so the emulator's serialiser is FreeSWITCH's."""
    names, body = load_capture()[6]
    event = parse_event(body)
    factory_event = EventFactory(Identity("x", "y")).make("CUSTOM", [], ("f", "g", 1))
    factory_event.headers = list(event.headers.items())
    frame = factory_event.plain()
    head, _, payload = frame.partition(b"\n\n")
    assert head.decode().split("\n") == [f"Content-Length: {len(body)}",
                                         "Content-Type: text/event-plain"]
    assert names == ["Content-Length", "Content-Type"]
    assert payload == body


def test_live_session_reproduces_the_captured_frames(fsemu, sqlite_db):  # noqa: F811
    real = load_capture()
    emu = fsemu("pbx1", sqlite_db.url)
    client = EslClient(emu.port)
    greeting = client.frame()
    assert list(greeting.headers) == real[0][0]
    auth = client.send("auth ClueCon")
    assert list(auth.headers) == real[1][0] and auth.reply_text == "+OK accepted"
    sub = client.send("event plain CUSTOM sofia::register_attempt sofia::register")
    assert list(sub.headers) == real[2][0]
    assert sub.reply_text == "+OK event listener enabled plain"
    api = client.send("api switchname")
    assert list(api.headers) == real[3][0] and api.body == real[3][1] == b"pbx1"
    bg = client.send("bgapi status")
    assert list(bg.headers) == real[4][0]
    assert re.fullmatch(r"\+OK Job-UUID: [0-9a-f-]{36}", bg.reply_text)
    assert bg.headers["Job-UUID"] == bg.reply_text.split(": ")[1]
    emu.driver.register_bindings([Binding("1001", "demo.local", "vip1", "1-3140@127.0.0.1",
                                          network_port=5071, user_agent="sipp-acceptance")],
                                 auth_result="RENEWED")
    attempt, register = client.frames(2)
    assert list(attempt.headers) == real[5][0]
    assert header_names(attempt.body) == header_names(real[5][1])
    assert header_names(register.body) == header_names(real[6][1])
    assert parse_event(register.body).get("Core-UUID") == emu.core_uuid
    client.close()


def _form(name):
    body = captures.xml_curl_posts()[name][1].decode()
    return [item.split("=", 1)[0] for item in body.split("&")]


@pytest.mark.parametrize("fixture, build", [
    ("configuration-sofia.conf", lambda c: c.sofia_conf()),
    ("directory-gateways", lambda c: c.gateways("vip1")),
    ("directory-sip_auth-register", lambda c: c.directory_sip_auth("1001", "demo.local")),
    ("directory-sip_auth-invite",
     lambda c: c.directory_sip_auth("1000", "demo.local", method="INVITE", to_user="1001")),
    ("directory-user_call", lambda c: c.user_call("1001", "demo.local")),
])
def test_xml_curl_forms_have_the_captured_fields(fixture, build, monkeypatch):
    sent = []
    monkeypatch.setattr(xml_curl_client, "post",
                        lambda url, body, timeout: sent.append(body) or (200, ""))
    client = xml_curl_client.XmlCurlClient(
        "http://127.0.0.1:1/x", "pbx1", EventFactory(Identity("pbx1", "u")))
    build(client)
    assert [item.split("=", 1)[0] for item in sent[0].split("&")] == _form(fixture)


def test_xml_curl_dialplan_form_carries_the_keys_the_service_reads(monkeypatch):
    sent = []
    monkeypatch.setattr(xml_curl_client, "post",
                        lambda url, body, timeout: sent.append(body) or (200, ""))
    client = xml_curl_client.XmlCurlClient(
        "http://127.0.0.1:1/x", "pbx1", EventFactory(Identity("pbx1", "u")))
    client.dialplan("1000", "1001", "demo.local")
    ours = [item.split("=", 1)[0] for item in sent[0].split("&")]
    real = _form("dialplan")
    assert ours[:19] == real[:19]                       # fixed head + core block
    channel_part = [name for name in real if not name.startswith("variable_")]
    assert [name for name in ours if not name.startswith("variable_")] == channel_part
    assert set(ours) <= set(real)
    assert "Event-Date-GMT=" in sent[0] and "GMT&" in sent[0]
