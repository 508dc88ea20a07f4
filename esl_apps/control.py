"""The agent's local control socket: how ``fscluster notify``/``takeover``/``status`` reach it.

A Unix stream socket at ``agent.socket`` (mode 0600: root only, like the event socket it
fronts). One JSON object per line in, one per line out: ``{"cmd": "notify", …}`` →
``{"ok": true, "result": …}`` or ``{"ok": false, "error": "one line"}``. Requests are bounded
in size and time; a bad request gets an error reply, never a traceback. Being a filesystem
socket it also crosses network namespaces, which the netns tests rely on.
"""
import json
import logging
import os
import socket
from typing import Callable, Dict

from fscluster.errors import FsclusterError

log = logging.getLogger("fscluster.control")

MAX_REQUEST = 4096
TIMEOUT = 10.0


class ControlError(FsclusterError):
    """The agent could not be reached or refused the request."""


class ControlServer:
    """Serves ``handlers[cmd](request) -> result`` on a Unix socket (an agent component)."""

    def __init__(self, path: str, handlers: Dict[str, Callable[[dict], object]]):
        self.path, self.handlers = path, handlers
        self._server = None

    def start(self) -> None:
        from gevent import socket as gsocket          # the client side stays gevent-free
        from gevent.server import StreamServer
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)     # left by a crashed agent; we are the only listener
        listener = gsocket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        self._server = StreamServer(listener, self._handle)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
            if os.path.exists(self.path):
                os.unlink(self.path)

    def _handle(self, sock, _address) -> None:
        sock.settimeout(TIMEOUT)
        try:
            line = sock.makefile("rb").readline(MAX_REQUEST + 1)
            reply = self.dispatch(line)
            sock.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        finally:
            sock.close()

    def dispatch(self, line: bytes) -> dict:
        if len(line) > MAX_REQUEST or not line.endswith(b"\n"):
            return {"ok": False, "error": "request too long or not one line"}
        try:
            request = json.loads(line)
            handler = self.handlers[request["cmd"]]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": f"unknown or malformed request; commands: "
                                          f"{', '.join(sorted(self.handlers))}"}
        try:
            return {"ok": True, "result": handler(request)}
        except FsclusterError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported as one line, logged in full
            log.exception("control request failed", extra={"cmd": request.get("cmd")})
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def request(path: str, payload: dict, timeout: float = TIMEOUT):
    """Send one request to the agent at ``path``; returns its result or raises ControlError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = sock.makefile("rb").readline(1 << 20)
    except OSError as exc:
        raise ControlError(f"agent socket {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError(f"agent socket {path}: no valid reply") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "request refused"))
    return reply.get("result")
