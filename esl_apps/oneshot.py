"""One blocking ``api`` command on a fresh event-socket connection, for short-lived CLIs.

``fscluster health`` runs every second from keepalived: it must start fast and finish within
its timeout, so it uses plain sockets and the sans-io parser instead of the agent's gevent
connection. Every socket operation is bounded by ``timeout``.
"""
import contextlib
import socket

from esl_apps.protocol import Frame, FrameParser, ProtocolError, encode_command
from fscluster.errors import FsclusterError


class OneShotError(FsclusterError):
    """FreeSWITCH did not answer (unreachable, refused, or garbage); ``reason`` says why
    without the address, for tables that show the address in a column of its own."""

    def __init__(self, target: str, reason: str):
        super().__init__(f"{target}: {reason}")
        self.reason = reason


def _next_frame(sock: socket.socket, parser: FrameParser) -> Frame:
    while True:
        frame = parser.next_frame()
        if frame is not None:
            return frame
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError("closed by FreeSWITCH")
        parser.feed(data)


def _reason(exc: Exception) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ProtocolError):
        return f"protocol: {exc}"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


@contextlib.contextmanager
def session(host: str, port: int, password: str, timeout: float):
    """An authenticated event socket ``(sock, parser)``, closed with ``exit`` afterwards."""
    target = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            parser = FrameParser()
            first = _next_frame(sock, parser)
            if first.content_type != "auth/request":
                raise OneShotError(target, "expected auth/request, got "
                                           f"{first.content_type or 'nothing'}")
            sock.sendall(encode_command(f"auth {password}"))
            reply = _next_frame(sock, parser)
            if not reply.reply_text.startswith("+OK"):
                raise OneShotError(target, "auth rejected: "
                                           f"{reply.reply_text or reply.content_type}")
            yield sock, parser
            sock.sendall(encode_command("exit"))
    except (OSError, ProtocolError) as exc:
        raise OneShotError(target, _reason(exc)) from None


def api(host: str, port: int, password: str, command: str, timeout: float) -> str:
    """``api <command>`` → the response body; raises :class:`OneShotError`."""
    with session(host, port, password, timeout) as (sock, parser):
        sock.sendall(encode_command(f"api {command}"))
        while True:
            frame = _next_frame(sock, parser)
            if frame.content_type == "api/response":
                return frame.body.decode("utf-8", "replace")
