"""Loaders for the real FreeSWITCH 1.10.12 captures in ../shared/fixtures (see its README).

The captures were anonymised after capture (host name and address replaced), which changed
the length of the event bodies but not their declared Content-Length; the loader recomputes
those lengths, leaving every other byte as FreeSWITCH sent it.
"""
import pathlib
import re

from esl_apps.protocol import encode_frame

_CANDIDATES = [pathlib.Path(__file__).resolve().parents[2] / "shared",
               pathlib.Path("/work/shared")]
SHARED = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
FIXTURES = SHARED / "fixtures" / "freeswitch-1.10.12"
XML_CURL = FIXTURES / "xml_curl"


def esl_session() -> bytes:
    raw = (FIXTURES / "esl" / "session-auth-api-bgapi-register.raw").read_bytes()
    head = re.compile(rb"Content-Length: \d+\nContent-Type: text/event-plain\n\n")
    starts = [m.start() for m in head.finditer(raw)] + [len(raw)]
    out = raw[:starts[0]]
    for begin, end in zip(starts, starts[1:]):
        body = raw[begin:end].split(b"\n\n", 1)[1]
        out += encode_frame([("Content-Type", "text/event-plain")], body)
    return out


def xml_curl_names() -> list:
    return sorted(path.stem for path in XML_CURL.glob("*.http"))


def xml_curl_post(name: str) -> tuple:
    """(request head text, form body bytes) of one mod_xml_curl POST: the body is everything
    after the blank line (its Content-Length may be stale, like the events')."""
    raw = (XML_CURL / f"{name}.http").read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not body:
        head, _, body = raw.partition(b"\n\n")
    return head.decode(), body


def xml_curl_posts() -> dict:
    """{fixture name: (request head text, form body bytes)} for every mod_xml_curl POST."""
    return {name: xml_curl_post(name) for name in xml_curl_names()}
