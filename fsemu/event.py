"""Events as FreeSWITCH builds them, and which of them a listener subscribed to.

Pure: no sockets, no clock of its own (the caller passes ``now``), so tests compare shapes.

Header order of a fired event (checked against the real capture in
``fixtures/freeswitch-1.10.12/esl``): for a CUSTOM event ``Event-Subclass`` then
``Event-Name``; then the core block ``switch_event_prep_for_delivery_detailed``
(switch_event.c) adds — ``Core-UUID``, ``FreeSWITCH-Hostname``, ``FreeSWITCH-Switchname``,
``FreeSWITCH-IPv4``, ``FreeSWITCH-IPv6``, ``Event-Date-Local``, ``Event-Date-GMT``,
``Event-Date-Timestamp`` (µs), ``Event-Calling-File``, ``Event-Calling-Function``,
``Event-Calling-Line-Number``, ``Event-Sequence``; then the event's own headers in the order
the module added them. A body (``BACKGROUND_JOB``) is serialised by ``switch_event_serialize``
as a trailing ``Content-Length`` header, an empty line and the body.
"""
import dataclasses
import itertools
import time
from typing import Iterable, List, Optional, Sequence, Set, Tuple

from esl_apps.protocol import encode_event_plain

Header = Tuple[str, str]

#: switch_event.c EVENT_NAMES, in enum order (what ``event plain NAME`` accepts).
EVENT_NAMES = (
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE",
    "CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN", "OUTBOUND_CHAN",
    "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN",
    "PRESENCE_OUT", "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC",
    "BACKGROUND_JOB", "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT",
    "TRAP", "ADD_SCHEDULE", "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML",
    "NOTIFY", "PHONE_FEATURE", "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE",
    "REQUEST_PARAMS", "CHANNEL_DATA", "GENERAL", "COMMAND", "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO", "RECV_INFO",
    "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START",
    "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA",
    "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA",
    "CALL_SETUP_REQ", "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT",
    "SHUTDOWN_REQUESTED", "ALL")
_NAME_SET = frozenset(EVENT_NAMES)


def event_name(token: str) -> Optional[str]:
    """``switch_name_event``: case-insensitive, ``SWITCH_EVENT_`` prefix allowed; else None."""
    name = token.upper()
    if name.startswith("SWITCH_EVENT_"):
        name = name[len("SWITCH_EVENT_"):]
    return name if name in _NAME_SET else None


@dataclasses.dataclass(frozen=True)
class Identity:
    """What the core block says about the switch (new ``core_uuid`` on every start)."""

    switchname: str
    core_uuid: str
    hostname: str = "fsemu-host"
    ipv4: str = "198.18.0.1"
    ipv6: str = "::1"


@dataclasses.dataclass
class FsEvent:
    """A fired event: its name, CUSTOM subclass, full header list (in order) and body."""

    name: str
    headers: List[Header]
    subclass: str = ""
    body: str = ""
    _plain: Optional[bytes] = dataclasses.field(default=None, repr=False)

    def plain(self) -> bytes:
        """The ``text/event-plain`` frame, serialised once for every listener."""
        if self._plain is None:
            self._plain = encode_event_plain(self.headers, self.body)
        return self._plain


class EventFactory:
    """Builds events with the core header block and a per-start ``Event-Sequence``."""

    def __init__(self, identity: Identity, first_sequence: int = 1):
        self.identity = identity
        self._sequence = itertools.count(first_sequence)

    def make(self, name: str, headers: Iterable[Header], calling: Tuple[str, str, int],
             subclass: str = "", body: str = "", now: Optional[float] = None) -> FsEvent:
        now = time.time() if now is None else now
        ident = self.identity
        calling_file, calling_function, calling_line = calling
        head: List[Header] = [("Event-Subclass", subclass)] if subclass else []
        head += [
            ("Event-Name", name),
            ("Core-UUID", ident.core_uuid),
            ("FreeSWITCH-Hostname", ident.hostname),
            ("FreeSWITCH-Switchname", ident.switchname),
            ("FreeSWITCH-IPv4", ident.ipv4),
            ("FreeSWITCH-IPv6", ident.ipv6),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
            ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))),
            ("Event-Date-Timestamp", str(int(now * 1_000_000))),
            ("Event-Calling-File", calling_file),
            ("Event-Calling-Function", calling_function),
            ("Event-Calling-Line-Number", str(calling_line)),
            ("Event-Sequence", str(next(self._sequence))),
        ]
        return FsEvent(name, head + [(k, str(v)) for k, v in headers], subclass, body)

    def custom(self, subclass: str, headers: Iterable[Header], calling: Tuple[str, str, int],
               now: Optional[float] = None) -> FsEvent:
        return self.make("CUSTOM", headers, calling, subclass=subclass, now=now)


class Subscription:
    """One listener's ``event`` state, as mod_event_socket.c ``parse_command`` keeps it.

    ``event plain A B CUSTOM x y``: names before ``CUSTOM`` are event types; every token
    after ``CUSTOM`` is a subclass. Unknown names are skipped silently; with no known name
    at all the reply is ``-ERR no keywords supplied``. Subscriptions accumulate. ``ALL``
    takes every type *and* every subclass; ``CUSTOM`` without subclasses delivers only
    CUSTOM events that have no subclass (``event_handler``).
    """

    def __init__(self):
        self.enabled = False
        self.format = "plain"
        self.types: Set[str] = set()
        self.subclasses: Set[str] = set()

    def command(self, args: Sequence[str]) -> str:
        """Apply ``event <args…>``; returns the Reply-Text."""
        custom = False
        key_count = 0
        for index, token in enumerate(args):
            if index == 0 and token.lower() in ("plain", "xml", "json"):
                self.format = token.lower()
                continue
            if custom:
                self.subclasses.add(token)
                continue
            name = event_name(token)
            if name is None:
                continue
            key_count += 1
            self.types.add(name)
            if name == "CUSTOM":
                custom = True
        if not key_count:
            return "-ERR no keywords supplied"
        self.enabled = True
        return f"+OK event listener enabled {self.format}"

    def clear(self) -> str:
        """``noevents``."""
        if not self.enabled:
            return "-ERR not listening for events"
        self.enabled = False
        self.types.clear()
        self.subclasses.clear()
        return "+OK no longer listening for events"

    def wants(self, event: FsEvent) -> bool:
        if not self.enabled:
            return False
        if "ALL" in self.types:
            return True
        if event.name not in self.types:
            return False
        return event.name != "CUSTOM" or not event.subclass or event.subclass in self.subclasses
