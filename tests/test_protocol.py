"""The sans-io ESL parser against the real capture, hostile input and round-trips."""
import re

import pytest
from hypothesis import given, settings, strategies as st

from esl_apps.protocol import (CommandParser, FrameParser, ProtocolError, encode_command,
                               encode_event_plain, encode_frame, parse_event, url_encode)
from tests.captures import esl_session as load_capture

def test_capture_frames_in_order():
    frames = FrameParser().frames(load_capture())
    assert [f.content_type for f in frames] == [
        "auth/request", "command/reply", "command/reply", "api/response", "command/reply",
        "text/event-plain", "text/event-plain", "text/event-plain"]
    assert frames[1].reply_text == "+OK accepted"
    assert frames[3].body == b"pbx1"  # api/response body has no trailing newline
    assert frames[4].headers["Job-UUID"] == "3c2e6671-68fc-4a22-92fe-885b3edbaa03"


def test_capture_event_values_decoded_per_value():
    register = parse_event(FrameParser().frames(load_capture())[6].body)
    assert register.key == "sofia::register"
    assert register.get("contact") == '"" <sip:1001@127.0.0.1:5071>'
    assert register.get("call-id") == "1-3140@127.0.0.1"
    assert register.get("Event-Date-GMT") == "Tue, 24 Nov 2026 21:41:24 GMT"


def test_capture_events_reencode_byte_for_byte():
    """Our encoder is FreeSWITCH's: decoding then encoding gives back the captured bytes."""
    for frame in FrameParser().frames(load_capture())[5:]:
        event = parse_event(frame.body)
        assert encode_event_plain(event.headers.items()) == encode_frame(
            [("Content-Type", "text/event-plain")], frame.body)


def test_byte_at_a_time_equals_whole():
    data = load_capture()
    parser = FrameParser()
    frames = []
    for i in range(len(data)):
        frames += parser.frames(data[i:i + 1])
    assert frames == FrameParser().frames(data)


def test_forged_header_stays_a_value():
    frame = FrameParser().frames(encode_event_plain(
        [("Event-Name", "CUSTOM"), ("from-user", "x\nEvent-Name: HEARTBEAT")]))[0]
    event = parse_event(frame.body)
    assert event.name == "CUSTOM" and event.get("from-user") == "x\nEvent-Name: HEARTBEAT"


@pytest.mark.parametrize("garbage", [b"no colon here\n\n", b"Content-Length: x\n\n",
                                     b"Content-Length: -1\n\n"])
def test_garbage_raises_protocol_error(garbage):
    with pytest.raises(ProtocolError):
        FrameParser().frames(garbage)


def test_unbounded_header_is_refused():
    with pytest.raises(ProtocolError):
        FrameParser(max_header_bytes=1024).frames(b"A: " + b"x" * 2000)


def test_huge_content_length_is_refused():
    with pytest.raises(ProtocolError):
        FrameParser(max_body_bytes=100).frames(b"Content-Length: 101\n\n")


def test_truncated_frame_waits_for_more():
    parser = FrameParser()
    assert parser.frames(b"Content-Type: api/response\nContent-Length: 10\n\nabc") == []
    assert parser.frames(b"defghij")[0].body == b"abcdefghij"


def test_commands_refuse_newlines_and_parse_on_server_side():
    with pytest.raises(ValueError):
        encode_command("api status\n\napi fsctl shutdown")
    parser = CommandParser()
    assert parser.commands(encode_command("auth ClueCon") + b"api sta") == ["auth ClueCon"]
    assert parser.commands(b"tus\n\n") == ["api status"]


def test_url_encode_matches_freeswitch_examples():
    assert url_encode("Tue, 24 Nov 2026 21:41:24 GMT") == "Tue,%2024%20Nov%202026%2021%3A41%3A24%20GMT"
    assert url_encode("sofia/vip1/1000@demo.local") == "sofia/vip1/1000%40demo.local"
    assert url_encode("%41") == "%41"  # switch_url_encode keeps existing escapes


values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200).filter(
    lambda v: not re.search(r"%[0-9A-Fa-f]{2}", v))
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,30}", fullmatch=True).filter(
    lambda n: n != "Content-Length")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(names, values, max_size=20), st.text(max_size=100))
def test_event_roundtrip(headers, body):
    frame = FrameParser().frames(encode_event_plain(headers.items(), body))[0]
    event = parse_event(frame.body)
    decoded = {k: v for k, v in event.headers.items() if k != "Content-Length"}
    assert decoded == headers
    assert event.body == body


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_arbitrary_bytes_never_crash_otherwise(data):
    parser = FrameParser(max_header_bytes=256, max_body_bytes=1024)
    try:
        for frame in parser.frames(data):
            if frame.content_type == "text/event-plain":
                parse_event(frame.body)
    except ProtocolError:
        pass


_PIECES = list("%aZ09fFx+ \n:é€\x00\\") + ["%C3", "%A9", "%E2%82", "%0A", "%3A%20", "%zz", "%4"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_PIECES), max_size=20).map("".join))
def test_fast_value_decoding_equals_unquote(value):
    """parse_event's memoised decoder is exactly urllib's unquote (not unquote_plus)."""
    from urllib.parse import unquote
    from esl_apps.protocol import parse_event
    wire = value.replace("\n", "%0A")  # a raw newline cannot be inside a header line
    event = parse_event(b"Event-Name: CUSTOM\nx: " + wire.encode() + b"\n\n")
    assert event.get("x") == unquote(wire, errors="replace")
