"""The event-socket wire protocol, sans I/O: bytes in, typed frames out (and back).

Shared by the agent's transport, the FreeSWITCH emulator and the tests, so framing is written
once. Facts from FreeSWITCH 1.10 ``mod_event_socket.c`` / ``switch_event.c``:

- A frame is ``Name: value`` header lines ended by an empty line; ``Content-Length`` (bytes)
  announces a body that follows the empty line, with no terminator of its own (an
  ``api/response`` body ends without a newline and the next frame follows directly).
- Outer headers are not URL-encoded. Inside a ``text/event-plain`` body, each *value* is
  URL-encoded (``switch_url_encode``, :data:`URL_UNSAFE` plus bytes outside 0x20–0x7E; an
  existing ``%XX`` is kept as it is). So a body is split into lines first and each value is
  decoded after — decoding first (as greenswitch does) lets ``%0A…%3A%20`` forge headers.
- An event may carry its own body (``BACKGROUND_JOB``'s result): the event's
  ``Content-Length`` header counts the bytes after the event's own empty line.
- Client commands are one line (``api status``) ended by an empty line.

The parsers bound what an incomplete or hostile peer can make them buffer
(:class:`ProtocolError`), like h11 does.
"""
import dataclasses
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import quote

#: switch_utils.h SWITCH_URL_UNSAFE; switch_url_encode_opt also encodes < 0x20 and > 0x7E.
URL_UNSAFE = "\r\n #%&+:;<=>?@[\\]^`{|}\""
_URL_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in URL_UNSAFE)
_NEEDS_ENCODING = re.compile("[^" + re.escape(_URL_SAFE) + "]")
_KEPT_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that are not the event-socket protocol (or too many of them)."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One message on the socket: outer headers (as sent) and the raw body."""

    headers: Dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")


@dataclasses.dataclass(frozen=True)
class Event:
    """A decoded ``text/event-plain`` event: headers (values decoded) and its own body."""

    headers: Dict[str, str]
    body: str = ""

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    @property
    def subclass(self) -> str:
        return self.headers.get("Event-Subclass", "")

    @property
    def key(self) -> str:
        """What handlers register for: the subclass of a CUSTOM event, else the name."""
        return self.subclass if self.name == "CUSTOM" else self.name

    def get(self, header: str, default: str = "") -> str:
        return self.headers.get(header, default)


def parse_headers(text: str) -> Dict[str, str]:
    """``Name: value`` lines → dict (outer frame headers, and an event's before decoding).

    Names are taken as sent; a line without ``": "`` or with an empty name is a
    :class:`ProtocolError`. The hot path of a storm (about a quarter of the agent's CPU):
    split the text and let dict() reject a line without ": "; anything unusual (CR, empty
    lines, a bad line) takes the line-by-line path, which names the bad line."""
    try:
        headers = dict([line.split(": ", 1) for line in text.split("\n")])
    except ValueError:
        return _parse_lines(text)
    if "\r" in text or "" in headers:
        return _parse_lines(text)
    return headers


def _parse_lines(text: str) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        name, colon, value = line.partition(": ")
        if not colon or not name:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        headers[name] = value.rstrip("\r")
    return headers


class FrameParser:
    """Incremental frame reader: ``feed(bytes)``, then ``next_frame()`` until it returns None.

    After a :class:`ProtocolError` the stream cannot be resynchronised; the caller drops the
    connection (as FreeSWITCH itself does with a client that sends garbage).
    """

    def __init__(self, max_header_bytes: int = MAX_HEADER_BYTES,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self._buffer = bytearray()
        self._headers: Optional[Dict[str, str]] = None
        self._length = 0
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Optional[Frame]:
        if self._headers is None:
            # Frames may be separated by stray newlines; skip them.
            while self._buffer[:1] == b"\n":
                del self._buffer[:1]
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > self._max_header:
                    raise ProtocolError(f"header block over {self._max_header} bytes")
                return None
            if end > self._max_header:
                raise ProtocolError(f"header block over {self._max_header} bytes")
            # UTF-8 never makes a "\n" out of other bytes: decode first, then split
            headers = parse_headers(self._buffer[:end].decode("utf-8", "replace"))
            del self._buffer[:end + 2]
            length = headers.get("Content-Length", "0")
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length[:20]!r}")
            self._length = int(length)
            if self._length > self._max_body:
                raise ProtocolError(f"body of {self._length} bytes is over the limit")
            self._headers = headers
        if len(self._buffer) < self._length:
            return None
        body = bytes(self._buffer[:self._length])
        del self._buffer[:self._length]
        frame, self._headers = Frame(self._headers, body), None
        return frame

    def frames(self, data: bytes = b"") -> List[Frame]:
        """Feed ``data`` and return every frame now complete."""
        if data:
            self.feed(data)
        out = []
        while True:
            frame = self.next_frame()
            if frame is None:
                return out
            out.append(frame)

    @property
    def buffered(self) -> int:
        return len(self._buffer)


_DECODED: Dict[str, str] = {}
_HEX_BYTE = {a + b: bytes.fromhex(a + b) for a in "0123456789ABCDEFabcdef"
             for b in "0123456789ABCDEFabcdef"}


def _decode(value: str) -> str:
    """``urllib.parse.unquote`` (never ``unquote_plus``: '+' stays '+'), several times faster
    and memoised: most encoded values of a storm repeat (subclass, dates, Core-UUID); the
    memo is bounded (cleared when full). A '%' not followed by two hex digits stays as it is.

    The usual value (ASCII, no backslash: FreeSWITCH encodes everything else) is decoded in
    C: ``%XX`` → ``\\xXX`` through the ``unicode_escape`` codec gives the bytes as code points
    0–255, and latin-1 → UTF-8 turns them into text. Anything else (a stray '%', raw
    non-ASCII, a backslash) takes the byte loop. Both equal ``unquote`` (property-tested)."""
    decoded = _DECODED.get(value)
    if decoded is None:
        decoded = _decode_in_c(value)
        if decoded is None:
            decoded = _decode_bytes(value)
        if len(_DECODED) >= 4096:
            _DECODED.clear()
        _DECODED[value] = decoded
    return decoded


def _decode_in_c(value: str) -> Optional[str]:
    if "\\" in value:  # the codec would read it as an escape of its own
        return None
    try:
        return (value.replace("%", "\\x").encode("ascii").decode("unicode_escape")
                .encode("latin-1").decode("utf-8", "replace"))
    except UnicodeError:  # raw non-ASCII, or a '%' without two hex digits
        return None


def _decode_bytes(value: str) -> str:
    head, *items = value.split("%")
    out = [head.encode()]
    for item in items:
        byte = _HEX_BYTE.get(item[:2])
        if byte is None:
            out += (b"%", item.encode())
        else:
            out += (byte, item[2:].encode())
    return b"".join(out).decode("utf-8", "replace")


def parse_event(body: bytes) -> Event:
    """Decode a ``text/event-plain`` body: split lines, then URL-decode each value."""
    head, sep, rest = body.partition(b"\n\n")
    headers = parse_headers(head.decode("utf-8", "replace"))
    for name, value in headers.items():
        if "%" in value:
            headers[name] = _decode(value)
    event_body = b""
    if sep and "Content-Length" in headers:
        length = headers["Content-Length"]
        if not length.isdigit():
            raise ProtocolError(f"bad event Content-Length {length[:20]!r}")
        event_body = rest[:int(length)]
    return Event(headers, event_body.decode("utf-8", "replace"))


def int_or_none(value) -> Optional[int]:
    """A numeric header value (``expires``, ``Session-Count``, ``variable_billsec``) as an
    int; None when absent or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def url_encode(value: str) -> str:
    """``switch_url_encode`` (double_encode off): what FreeSWITCH does to event values.

    Bytes outside 0x20–0x7E and :data:`URL_UNSAFE` become ``%XX``; an existing ``%XX`` is
    kept. (Split around kept ``%XX``, then ``quote`` the rest: same output as a byte loop,
    several times faster — the emulator encodes every value of every event.)"""
    if not _NEEDS_ENCODING.search(value):
        return value
    parts = _KEPT_ESCAPE.split(value)
    parts[::2] = [quote(part, safe=_URL_SAFE) for part in parts[::2]]
    return "".join(parts)


def encode_frame(headers: Sequence[Tuple[str, str]], body: bytes = b"") -> bytes:
    """One outer frame; ``Content-Length`` is added first when there is a body."""
    lines = [f"Content-Length: {len(body)}"] if body else []
    lines += [f"{name}: {value}" for name, value in headers if name != "Content-Length"]
    return ("\n".join(lines) + "\n\n").encode("utf-8") + body


def encode_event_plain(headers: Iterable[Tuple[str, str]], body: str = "") -> bytes:
    """An event as mod_event_socket sends it in ``plain`` format."""
    pairs = [(name, value) for name, value in headers if name != "Content-Length"]
    payload_body = body.encode("utf-8")
    if payload_body:
        pairs.append(("Content-Length", str(len(payload_body))))
    text = "".join(f"{name}: {url_encode(str(value))}\n" for name, value in pairs) + "\n"
    payload = text.encode("utf-8") + payload_body
    return encode_frame([("Content-Type", "text/event-plain")], payload)


def encode_command(command: str) -> bytes:
    """A client command line. Newlines inside would start a second command: refused."""
    if "\n" in command or "\r" in command:
        raise ValueError("an event-socket command cannot contain a newline")
    return f"{command}\n\n".encode("utf-8")


def encode_sendevent(name: str, headers: Iterable[Tuple[str, str]]) -> bytes:
    """``sendevent NAME`` and its header block; a newline in any part would forge headers."""
    lines = [f"sendevent {name}"] + [f"{key}: {value}" for key, value in headers]
    if any("\n" in line or "\r" in line for line in lines):
        raise ValueError("a sendevent header cannot contain a newline")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class CommandParser:
    """Server side: client bytes in, command lines out (bounded like :class:`FrameParser`).

    ``sendmsg``/``sendevent`` carry header blocks; they come out as the whole block."""

    def __init__(self, max_bytes: int = MAX_HEADER_BYTES):
        self._buffer = bytearray()
        self._max = max_bytes

    def commands(self, data: bytes) -> List[str]:
        self._buffer += data
        out = []
        while True:
            while self._buffer[:1] in (b"\n", b"\r"):
                del self._buffer[:1]
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > self._max:
                    raise ProtocolError(f"command over {self._max} bytes")
                return out
            out.append(self._buffer[:end].decode("utf-8", "replace").replace("\r", ""))
            del self._buffer[:end + 2]
