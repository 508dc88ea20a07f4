"""The event-socket transport: greenswitch's ``InboundESL`` with what it gets wrong fixed.

greenswitch (0.0.19) keeps connect/auth and the handler registry (``register_handle``), but it
URL-decodes a whole event before splitting it, waits forever for the auth request and for
every reply, lets two concurrent ``send()``s swap replies, never notices a dead or silent
socket (``connected`` stays True) and runs every handler in one greenlet. This subclass:

- reads with the sans-io :class:`~esl_apps.protocol.FrameParser` (split, then decode per value);
- puts a lock and a deadline around every command; a reply that comes after its deadline is
  matched to its own (abandoned) slot, so replies can never shift onto a later command;
- bounds connect, the ``auth/request`` wait and ``auth`` by ``timeout``;
- marks the connection dead on EOF, socket error, garbage, or ``idle_timeout`` seconds without
  a byte, and fails every waiting command and background job at once;
- hands each event to ``on_event`` from the reader greenlet: that callback only enqueues
  (see :mod:`esl_apps.dispatch`), so handlers never stall intake.

The connection object is reusable: :meth:`connect` after a death starts afresh, so the
handler registry and whoever holds a reference survive reconnects (see
:mod:`esl_apps.supervisor`).
"""
import collections
import logging
import time
from typing import Callable, Dict, Optional

import gevent
import gevent.event
import gevent.lock
from gevent import socket
from greenswitch.esl import InboundESL

from esl_apps.protocol import Event, Frame, FrameParser, ProtocolError, encode_command, \
    encode_sendevent, parse_event
from fscluster.errors import FsclusterError

log = logging.getLogger("fscluster.esl")

#: One read is parsed and published before the reader yields; 16 KiB is ~18 storm events
#: (~0.5 ms). Larger reads (256 KiB, ~10 ms each) starved the mirror's DB round trips, which
#: resume only when the reader yields: its writes then queued up behind parsing instead of
#: running beside it (see docs/agent.md, Benchmark).
RECV_BYTES = 16 * 1024


class EslError(FsclusterError):
    """Base of the event-socket errors; the message is one line meant for an operator."""


class ConnectionLost(EslError):
    """Not connected, or the connection died while a command waited."""


class CommandTimeout(EslError):
    """A command got no reply within its deadline (the connection stays up)."""


class AuthFailed(EslError):
    """FreeSWITCH refused the password or this client's address."""


class ApiError(EslError):
    """An ``api`` command answered ``-ERR …`` (raised only when the caller asks for it)."""


def describe(command: str) -> str:
    """A loggable name for a command: never the ``auth`` password."""
    if command.startswith("auth"):
        return "auth"
    return command.split("\n", 1)[0][:80]


class _Slot:
    """One command waiting for its reply; ``on_reply`` runs in the reader, in stream order."""

    __slots__ = ("result", "on_reply")

    def __init__(self, on_reply):
        self.result = gevent.event.AsyncResult()
        self.on_reply = on_reply


class Job:
    """A ``bgapi`` command: its Job-UUID now, its ``BACKGROUND_JOB`` body later."""

    def __init__(self, uuid: str, result: gevent.event.AsyncResult, command: str):
        self.uuid = uuid
        self._result = result
        self._command = command

    def result(self, timeout: float) -> str:
        try:
            return self._result.get(timeout=timeout)
        except gevent.Timeout:
            raise CommandTimeout(
                f"bgapi {self._command!r} (Job-UUID {self.uuid}) did not finish within "
                f"{timeout:g}s") from None


class Connection(InboundESL):
    """One inbound event-socket connection with deadlines and death detection."""

    def __init__(self, host: str, port: int, password: str, timeout: float = 5.0,
                 idle_timeout: float = 60.0, on_event: Optional[Callable[[Event], None]] = None):
        super().__init__(host, port, password, timeout)
        self.idle_timeout = idle_timeout
        self.on_event = on_event or (lambda event: None)
        self._lock = gevent.lock.Semaphore()
        self._pending: collections.deque = collections.deque()
        self._jobs: Dict[str, gevent.event.AsyncResult] = {}
        self._dead = gevent.event.Event()
        self._dead.set()
        self._auth_request = gevent.event.Event()
        self._reader = None
        self.sock = None
        self.dead_reason = "never connected"
        self.last_data = 0.0

    # ------------------------------------------------------------------ lifecycle
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Connect and authenticate within ``timeout``; raises an :class:`EslError`."""
        self.close("reconnecting")
        self._pending.clear()
        self._jobs.clear()
        self._auth_request = gevent.event.Event()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to FreeSWITCH at {self.address}: "
                                 f"{exc.strerror or exc}") from None
        sock.settimeout(self.idle_timeout)
        self.sock = sock
        self.last_data = time.monotonic()
        self.connected = True
        self._dead = gevent.event.Event()
        self.dead_reason = ""
        self._reader = gevent.spawn(self.receive_events, sock, FrameParser())
        if not self._auth_request.wait(self.timeout):
            self.close(f"no auth/request within {self.timeout:g}s")
        if not self.connected:
            raise ConnectionLost(f"FreeSWITCH at {self.address}: {self.dead_reason}")
        self.authenticate()

    def authenticate(self) -> None:
        try:
            reply = self.send(f"auth {self.password}")
        except CommandTimeout:
            self.close("auth got no reply")
            raise
        if reply.reply_text != "+OK accepted":
            self.close("authentication refused")
            raise AuthFailed(f"FreeSWITCH at {self.address} refused the event-socket password "
                             f"({reply.reply_text or 'no Reply-Text'})")

    def close(self, reason: str) -> None:
        """Mark the connection dead (idempotent): waiters fail at once, the socket closes."""
        if self._dead.is_set():
            return
        self.connected = False
        self.dead_reason = reason
        error = ConnectionLost(f"FreeSWITCH at {self.address}: {reason}")
        while self._pending:
            self._pending.popleft().result.set_exception(error)
        for result in self._jobs.values():
            result.set_exception(error)
        self._jobs.clear()
        if self.sock is not None:
            self.sock.close()
        self._auth_request.set()
        self._dead.set()
        if reason not in ("reconnecting", "stopped"):
            log.warning("esl connection lost", extra={"esl": self.address, "reason": reason})

    def stop(self) -> None:
        """Say ``exit`` politely (bounded), then close."""
        if self.connected:
            try:
                self.send("exit", timeout=min(self.timeout, 1.0))
            except EslError:
                pass
        self.close("stopped")
        if self._reader is not None:
            self._reader.join(timeout=self.timeout)

    @property
    def dead(self) -> gevent.event.Event:
        """Set once this connection (the current socket) is dead."""
        return self._dead

    def idle_for(self) -> float:
        return time.monotonic() - self.last_data

    # ------------------------------------------------------------------ reading
    def receive_events(self, sock, parser: FrameParser) -> None:
        """The reader greenlet: bytes → frames → :meth:`handle_event`; never runs handlers."""
        while sock is self.sock and self.connected:
            try:
                data = sock.recv(RECV_BYTES)
            except socket.timeout:
                self.close(f"no data for {self.idle_timeout:g}s (silent socket)")
                return
            except OSError as exc:
                if self.connected and sock is self.sock:
                    self.close(f"socket error: {exc.strerror or exc}")
                return
            if not data:
                leftover = parser.buffered
                self.close("connection closed by FreeSWITCH" + (
                    f" in the middle of a frame ({leftover} bytes of a truncated frame)"
                    if leftover else ""))
                return
            self.last_data = time.monotonic()
            parser.feed(data)
            try:
                while True:
                    frame = parser.next_frame()
                    if frame is None:
                        break
                    self.handle_event(frame)
            except ProtocolError as exc:
                self.close(f"garbage on the event socket: {exc}")
                return
            gevent.sleep(0)  # let handler workers drain between reads

    def handle_event(self, frame: Frame) -> None:
        kind = frame.content_type
        if kind == "text/event-plain":
            event = parse_event(frame.body)
            if event.name == "BACKGROUND_JOB":
                result = self._jobs.pop(event.get("Job-UUID"), None)
                if result is not None:
                    result.set(event.body)
            self.on_event(event)
        elif kind in ("command/reply", "api/response"):
            if not self._pending:
                raise ProtocolError(f"{kind} with no command waiting")
            slot = self._pending.popleft()
            job_uuid = frame.headers.get("Job-UUID")
            if job_uuid:
                self._jobs[job_uuid] = gevent.event.AsyncResult()
            if slot.on_reply is not None:
                slot.on_reply(frame)
            slot.result.set(frame)
        elif kind == "auth/request":
            self._auth_request.set()
        elif kind == "text/rude-rejection":
            self.close("FreeSWITCH rejected this client's address (text/rude-rejection): "
                       + frame.body.decode("utf-8", "replace").strip()[:200])
        elif kind == "text/disconnect-notice":
            self.close("FreeSWITCH sent text/disconnect-notice")
        else:
            log.debug("esl frame ignored", extra={"content_type": kind})

    # ------------------------------------------------------------------ commands
    def send(self, data: str, timeout: Optional[float] = None,
             on_reply: Optional[Callable[[Frame], None]] = None,
             payload: Optional[bytes] = None) -> Frame:
        """Send one command and return its reply frame, within ``timeout`` (default: ours).

        ``payload``: the encoded bytes when the command is not one line (``sendevent``)."""
        timeout = self.timeout if timeout is None else timeout
        name = describe(data)
        payload = encode_command(data) if payload is None else payload  # refused before queueing
        deadline = time.monotonic() + timeout
        if not self.connected:
            raise ConnectionLost(f"{name!r}: not connected to FreeSWITCH at {self.address} "
                                 f"({self.dead_reason})")
        if not self._lock.acquire(timeout=timeout):
            raise CommandTimeout(f"{name!r}: connection busy for {timeout:g}s")
        try:
            if not self.connected:
                raise ConnectionLost(f"{name!r}: FreeSWITCH at {self.address}: "
                                     f"{self.dead_reason}")
            slot = _Slot(on_reply)
            self._pending.append(slot)
            try:
                self.sock.sendall(payload)
            except OSError as exc:
                self.close(f"send failed: {exc.strerror or exc}")
            try:
                return slot.result.get(timeout=max(0.0, deadline - time.monotonic()))
            except gevent.Timeout:
                # The slot stays queued: its late reply is consumed by it, not by the next one.
                raise CommandTimeout(f"{name!r}: no reply from FreeSWITCH at {self.address} "
                                     f"within {timeout:g}s") from None
        finally:
            self._lock.release()

    def sendevent(self, name: str, headers, timeout: Optional[float] = None) -> Frame:
        """``sendevent NAME`` with one ``Header: value`` line per header (mod_event_socket.c)."""
        return self.send(f"sendevent {name}", timeout,
                         payload=encode_sendevent(name, headers))

    def api(self, command: str, timeout: Optional[float] = None, check: bool = False,
            on_reply: Optional[Callable[[str], None]] = None) -> str:
        """``api <command>`` → the response body. ``check`` raises :class:`ApiError` on -ERR.

        ``on_reply(body)`` runs in the reader greenlet at the reply's place in the stream:
        events before it were read earlier, events after it later (a resync uses this to
        slot a snapshot between the events it supersedes and those it does not)."""
        hook = None if on_reply is None else (lambda frame: on_reply(_text(frame)))
        body = _text(self.send(f"api {command}", timeout, hook))
        if check and body.startswith("-ERR"):
            raise ApiError(f"api {command!r}: {body.strip()[:200]}")
        return body

    def bgapi(self, command: str, timeout: Optional[float] = None) -> Job:
        """``bgapi <command>``: returns at once with the :class:`Job` to await."""
        results = []

        def grab(frame):  # in the reader, before the BACKGROUND_JOB can be read
            results.append(self._jobs.get(frame.headers.get("Job-UUID", "")))

        reply = self.send(f"bgapi {command}", timeout, grab)
        uuid = reply.headers.get("Job-UUID", "")
        if not uuid or not results or results[0] is None:
            raise ApiError(f"bgapi {command!r}: {reply.reply_text or 'no Job-UUID'}")
        return Job(uuid, results[0], command)


def _text(frame: Frame) -> str:
    return frame.body.decode("utf-8", "replace")
