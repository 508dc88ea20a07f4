"""The HAProxy agent that runs beside each Galera node and says whether it may take traffic.

HAProxy's ``agent-check`` connects to this port and reads one line: ``up`` or
``down # <reason>`` (HAProxy configuration manual, "agent-check"). HAProxy's manual
recommends agents over ``external-check``, which needs ``insecure-fork-wanted`` and forks
a process per check. The verdict is :func:`fscluster.galera_health.check` on the local
mariadbd, remembered for ``cache_seconds`` so that several PBXs (and their plain port
checks) cost at most one status query per interval.
"""
import logging
import socketserver
import threading
import time
from typing import Callable, Tuple

from fscluster.galera_health import Health

log = logging.getLogger("fscluster.galera_agent")


def agent_reply(health: Health) -> bytes:
    """The agent-check line for a verdict (the reason is kept to safe printable ASCII)."""
    if health.ok:
        return b"up\n"
    reason = "".join(c if 32 <= ord(c) < 127 else " " for c in health.reason)[:200]
    return f"down # {reason}\n".encode("ascii")


class CachedVerdict:
    """The last verdict, refreshed when older than ``cache_seconds`` (one query at a time)."""

    def __init__(self, probe: Callable[[], Health], cache_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self._probe, self._ttl, self._clock = probe, cache_seconds, clock
        self._lock = threading.Lock()
        self._value, self._at = None, float("-inf")

    def get(self) -> Health:
        with self._lock:
            if self._value is None or self._clock() - self._at >= self._ttl:
                previous = self._value
                self._value, self._at = self._probe(), self._clock()
                if previous is None or previous.ok != self._value.ok:
                    log.info("galera node verdict", extra={"ok": self._value.ok,
                                                           "reason": self._value.reason})
            return self._value


class AgentServer(socketserver.ThreadingTCPServer):
    """Answer each connection with the current verdict, then close it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: Tuple[str, int], verdict: CachedVerdict):
        self.verdict = verdict
        super().__init__(listen, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(2.0)
        try:
            self.request.sendall(agent_reply(self.server.verdict.get()))
        except OSError:
            pass  # a plain TCP health check closes before reading: nothing to do
