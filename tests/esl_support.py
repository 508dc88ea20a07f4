"""Test helpers for the agent: a scripted raw event-socket server and gevent-friendly waits.

The scripted server is for what a faithful emulator must never do (garbage, truncated
frames, replies that never come); everything FreeSWITCH-like is tested against ``fsemu``.
Tests here run without monkey-patching, so waits use ``gevent.sleep`` to let the server
and the client greenlets run.
"""
import time
from typing import Callable, List, Optional

import gevent
from gevent.server import StreamServer

from esl_apps.protocol import CommandParser, encode_frame
from fsemu.listener import AUTH_REQUEST


def reply(text: str, **headers) -> bytes:
    pairs = [("Content-Type", "command/reply"), ("Reply-Text", text)]
    pairs += [(name.replace("_", "-"), value) for name, value in headers.items()]
    return encode_frame(pairs)


def api_response(body: str) -> bytes:
    return encode_frame([("Content-Type", "api/response")], body.encode())


def gwait(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.02):
    """Poll ``condition`` (yielding to other greenlets) until truthy or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        gevent.sleep(interval)


class ScriptedEsl:
    """Accepts connections, greets with ``greeting``, answers each command with
    ``respond(command) -> bytes | None`` (None: say nothing). ``push`` sends raw bytes."""

    def __init__(self, respond: Callable[[str], Optional[bytes]], greeting: bytes = AUTH_REQUEST):
        self.respond = respond
        self.greeting = greeting
        self.commands: List[str] = []
        self.clients: list = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.server_port

    def _handle(self, sock, _address) -> None:
        self.clients.append(sock)
        parser = CommandParser()
        try:
            if self.greeting:
                sock.sendall(self.greeting)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for command in parser.commands(data):
                    self.commands.append(command)
                    answer = self.respond(command)
                    if answer:
                        sock.sendall(answer)
        except OSError:
            return
        finally:
            self.clients.remove(sock)

    def push(self, data: bytes) -> None:
        for sock in list(self.clients):
            sock.sendall(data)

    def drop_clients(self) -> None:
        for sock in list(self.clients):
            sock.close()

    def stop(self) -> None:
        self.drop_clients()
        self.server.stop(timeout=1)


def standard_respond(password: str = "ClueCon", switchname: str = "pbx1",
                     api: Optional[Callable[[str], Optional[str]]] = None):
    """auth / event / api like FreeSWITCH; ``api(cmd)`` may override an api answer."""
    def respond(command: str) -> Optional[bytes]:
        if command.startswith("auth "):
            ok = command[5:] == password
            return reply("+OK accepted" if ok else "-ERR invalid")
        if command.startswith("event "):
            return reply("+OK event listener enabled plain")
        if command.startswith("api "):
            text = api(command[4:]) if api else None
            if text is None and command == "api switchname":
                text = switchname
            if text is None and command.startswith("api show "):
                text = '{"row_count": 0}'
            return None if text is None else api_response(text)
        if command == "exit":
            return reply("+OK bye")
        return reply("-ERR command not found")
    return respond
