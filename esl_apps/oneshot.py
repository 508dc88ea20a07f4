"""One blocking ``api`` command on a fresh event-socket connection, for short-lived CLIs.

``fscluster health`` runs every second from keepalived: it must start fast and finish within
its timeout, so it uses plain sockets and the sans-io parser instead of the agent's gevent
connection. Every socket operation is bounded by ``timeout``.
"""
import socket

from esl_apps.protocol import Frame, FrameParser, ProtocolError, encode_command
from fscluster.errors import FsclusterError


class OneShotError(FsclusterError):
    """FreeSWITCH did not answer the command (unreachable, refused, or garbage)."""


def _next_frame(sock: socket.socket, parser: FrameParser) -> Frame:
    while True:
        frame = parser.next_frame()
        if frame is not None:
            return frame
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError("closed by FreeSWITCH")
        parser.feed(data)


def api(host: str, port: int, password: str, command: str, timeout: float) -> str:
    """``api <command>`` → the response body; raises :class:`OneShotError`."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            parser = FrameParser()
            if _next_frame(sock, parser).content_type != "auth/request":
                raise OneShotError(f"{host}:{port}: no auth/request")
            sock.sendall(encode_command(f"auth {password}"))
            if not _next_frame(sock, parser).reply_text.startswith("+OK"):
                raise OneShotError(f"{host}:{port}: event-socket password refused")
            sock.sendall(encode_command(f"api {command}"))
            while True:
                frame = _next_frame(sock, parser)
                if frame.content_type == "api/response":
                    body = frame.body.decode("utf-8", "replace")
                    break
            sock.sendall(encode_command("exit"))
            return body
    except (OSError, ProtocolError) as exc:
        raise OneShotError(f"{host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
