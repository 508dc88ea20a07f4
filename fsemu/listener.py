"""One event-socket connection's protocol state, as mod_event_socket.c ``parse_command`` runs it.

Pure: a command line in, bytes to send (and what to do next) out. The gevent server
(:mod:`fsemu.server`) owns the socket, the event queue and the background jobs.

Facts (mod_event_socket.c, FreeSWITCH 1.10):
- ``exit`` (or ``...``) answers ``+OK bye`` in any state and ends the connection, which then
  gets ``text/disconnect-notice`` (``listener_run`` → ``send_disconnect``).
- Before ``auth``, any other command answers ``-ERR command not found`` and the connection
  stays; a wrong password answers ``-ERR invalid`` and ends it.
- ``api`` runs synchronously on the connection thread (``api_exec`` with ``bg=0``): an
  unknown command is ``-ERR <cmd> Command not found!\\n``; an empty output ``-ERR no reply\\n``.
- ``bgapi`` answers ``+OK Job-UUID: <uuid>`` plus a ``Job-UUID`` header at once (a client
  ``Job-UUID`` header is honoured) and fires ``BACKGROUND_JOB`` when done.
- A reply starting with ``~`` carries its own headers (``Content-Type: command/reply\\n`` +
  the rest); any other reply is ``Reply-Text: <reply>``.
"""
import dataclasses
import uuid
from typing import Callable, List, Optional, Tuple

from fsemu.event import Subscription, event_name

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
SHUTDOWN = "The system is being shut down.\n"
LOST_EVENTS = "killed listener because of lost events\n"
RUDE_MESSAGE = "Access Denied, go away.\n"

#: Runs an API command: ``(command, arg)`` → output, or None when no such command exists.
ApiFunction = Callable[[str, Optional[str]], Optional[str]]


def _typed_body(content_type: str, text: str) -> bytes:
    """A frame as mod_event_socket writes these: ``Content-Type`` first, then
    ``Content-Length`` (``esl_apps.protocol.encode_frame`` puts the length first, as events do)."""
    body = text.encode()
    return b"Content-Type: %s\nContent-Length: %d\n\n" % (content_type.encode(), len(body)) + body


def rude_rejection() -> bytes:
    """``listener_run`` to a peer outside every ``apply-inbound-acl``."""
    return _typed_body("text/rude-rejection", RUDE_MESSAGE)


def disconnect_notice(message: str = GOODBYE) -> bytes:
    """``send_disconnect`` for an inbound (session-less) listener."""
    return _typed_body("text/disconnect-notice", message)


def command_reply(reply: str) -> bytes:
    if reply.startswith("~"):
        return ("Content-Type: command/reply\n" + reply[1:]).encode()
    return f"Content-Type: command/reply\nReply-Text: {reply}\n\n".encode()


def api_response(output: str) -> bytes:
    return _typed_body("api/response", output)


def run_api(api: ApiFunction, command: str, arg: Optional[str], background: bool) -> str:
    """``api_exec``: the text an ``api``/``bgapi`` returns, errors included."""
    output = api(command, arg)
    if output is None:
        return f"-ERR {command} Command not found!\n"
    if not output and not background:
        return "-ERR no reply\n"
    return output


@dataclasses.dataclass
class Outcome:
    """What the server must do after one command."""

    data: bytes = b""
    close: bool = False
    #: a ``bgapi`` to run in the background: (job uuid, command, arg)
    job: Optional[Tuple[str, str, Optional[str]]] = None
    #: a ``sendevent`` to fire: (event name, subclass, headers in the order sent)
    fire: Optional[Tuple[str, str, List[Tuple[str, str]]]] = None


def _split_api(line: str) -> Tuple[str, Optional[str]]:
    command, sep, arg = line.partition(" ")
    return command, (arg if sep else None)


class Listener:
    """Auth state and subscription of one inbound connection."""

    def __init__(self, password: str, api: ApiFunction):
        self._password = password
        self._api = api
        self.authed = False
        self.subscription = Subscription()

    def handle(self, block: str) -> Outcome:
        """One command block (first line the command, then optional ``Name: value`` lines)."""
        line, _, rest = block.partition("\n")
        headers = dict(_header(item) for item in rest.split("\n") if ":" in item)
        cmd = line.rstrip("\r")
        lower = cmd.lower()
        if lower.startswith("exit") or cmd.startswith("..."):
            return Outcome(command_reply("+OK bye"), close=True)
        if not self.authed:
            if lower.startswith("auth "):
                if cmd[5:] == self._password:
                    self.authed = True
                    return Outcome(command_reply("+OK accepted"))
                return Outcome(command_reply("-ERR invalid"), close=True)
            return Outcome(command_reply("-ERR command not found"))
        if lower.startswith("api "):
            command, arg = _split_api(cmd[4:])
            return Outcome(api_response(run_api(self._api, command, arg, background=False)))
        if lower.startswith("bgapi "):
            command, arg = _split_api(cmd[6:])
            job_uuid = headers.get("job-uuid") or str(uuid.uuid4())
            reply = f"~Reply-Text: +OK Job-UUID: {job_uuid}\nJob-UUID: {job_uuid}\n\n"
            return Outcome(command_reply(reply), job=(job_uuid, command, arg))
        if lower.startswith("sendevent"):
            return self._sendevent(cmd, rest)
        if lower.startswith("noevents"):
            return Outcome(command_reply(self.subscription.clear()))
        if lower.startswith("event"):
            args = cmd[5:].split(" ")[1:] if " " in cmd[5:] else []
            return Outcome(command_reply(self.subscription.command([a for a in args if a])))
        return Outcome(command_reply("-ERR command not found"))


    @staticmethod
    def _sendevent(cmd: str, rest: str) -> Outcome:
        """``sendevent NAME`` + header lines (values taken as sent, not decoded): the event
        gets ``Command`` and the sent headers, then ``Event-UUID``; an unknown NAME stays a
        ``COMMAND`` event; the reply is ``+OK <Event-UUID>``."""
        token = cmd[9:].strip()
        name = event_name(token) or "COMMAND"
        sent = [(key, value.lstrip(" ")) for key, sep, value in
                (line.rstrip("\r").partition(":") for line in rest.split("\n")) if sep and key]
        subclass = next((v for k, v in sent if k.lower() == "event-subclass"), "") \
            if name == "CUSTOM" else ""
        event_uuid = str(uuid.uuid4())
        headers = [("Command", cmd)] + [(k, v) for k, v in sent
                                        if k.lower() not in ("event-subclass", "event-name")]
        headers.append(("Event-UUID", event_uuid))
        return Outcome(command_reply(f"+OK {event_uuid}"), fire=(name, subclass, headers))


def _header(item: str) -> Tuple[str, str]:
    name, _, value = item.partition(":")
    return name.strip().lower(), value.strip()
