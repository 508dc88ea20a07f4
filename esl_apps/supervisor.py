"""Keep one event-socket connection alive: reconnect, check identity, re-subscribe, resync.

Loop: connect (capped exponential backoff with jitter between failures) → ``api switchname``
must equal the node name (a mismatch is fatal: this agent would mirror another node's
state under our name) → ``event plain …`` for every key someone handles → run the
``on_connected`` hooks (the resyncs: events were lost while disconnected) → watch: wait
for the connection to die, probing it with ``api switchname`` when it has been silent for
``probe_interval`` (a silent socket is dead once ``idle_timeout`` passes in the reader;
the probe makes a live-but-quiet FreeSWITCH talk, and a hung one time out sooner).

:meth:`request_resync` re-runs the hooks without reconnecting (after a dropped event or a
lost DB batch).
"""
import logging
import random
import time
from typing import Callable, Iterable, List, Optional

import gevent
import gevent.event

from esl_apps.connection import CommandTimeout, Connection, EslError
from fscluster.errors import FsclusterError

log = logging.getLogger("fscluster.supervisor")

#: Subscribed on every connection whatever the handlers: liveness and bgapi results.
BASE_EVENTS = ("HEARTBEAT", "BACKGROUND_JOB")


class SwitchnameMismatch(FsclusterError):
    """The FreeSWITCH on the configured socket is another node: refuse to run."""


def subscribe_command(keys: Iterable[str]) -> str:
    """``event plain NAMES… CUSTOM subclasses…`` (mod_event_socket.c: words after ``CUSTOM``
    are subclasses, matched exactly; names must come before it)."""
    names, subclasses = [], []
    for key in sorted(set(keys) | set(BASE_EVENTS)):
        if "::" in key:
            subclasses.append(key)
        elif key.isupper() and key.replace("_", "").isalnum():
            names.append(key)
    words = ["event", "plain"] + names
    if subclasses:
        words += ["CUSTOM"] + subclasses
    return " ".join(words)


class Backoff:
    """Capped exponential backoff with "equal jitter": delay in [d/2, d], d = base·2ⁿ ≤ cap."""

    def __init__(self, base: float = 0.2, cap: float = 10.0,
                 rng: Callable[[], float] = random.random):
        self.base, self.cap, self.rng = base, cap, rng
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return delay / 2 + delay / 2 * self.rng()

    def reset(self) -> None:
        self.attempt = 0


class Supervisor:
    """Owns the connect/resync loop of one :class:`Connection`; runs in its own greenlet."""

    def __init__(self, connection: Connection, node_name: str,
                 subscription_keys: Callable[[], Iterable[str]],
                 probe_interval: float = 10.0, backoff: Optional[Backoff] = None):
        self.connection = connection
        self.node_name = node_name
        self.subscription_keys = subscription_keys
        self.probe_interval = probe_interval
        self.backoff = backoff or Backoff()
        self.hooks: List[Callable[[], None]] = []
        self.fatal: Optional[FsclusterError] = None
        self.connects = 0
        self.synced = gevent.event.Event()  # set after each successful resync
        self._stopped = False
        self._wake = gevent.event.Event()
        self._resync = False
        self._greenlet = None

    def on_connected(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` after every (re)connect, once subscribed; it may use the connection."""
        self.hooks.append(hook)

    def start(self) -> None:
        self._greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self.connection.stop()
        if self._greenlet is not None:
            self._greenlet.join(timeout=self.connection.timeout * 2)
            self._greenlet.kill()

    @property
    def greenlet(self) -> Optional[gevent.Greenlet]:
        """The running loop (None before :meth:`start`); it ends on stop or a fatal error."""
        return self._greenlet

    def request_resync(self, why: str = "") -> None:
        if not self._resync:
            log.warning("resync requested", extra={"why": why})
        self._resync = True
        self._wake.set()

    def subscribe(self, keys: Iterable[str]) -> None:
        """Add subscriptions now if connected (the full list is sent on every connect)."""
        if self.connection.connected:
            self.connection.send(subscribe_command(keys))

    def run(self) -> None:
        while not self._stopped:
            try:
                self.connection.connect()
                self._session()
            except SwitchnameMismatch as exc:  # reported by the owner, in one line
                self.fatal = exc
                self.connection.stop()
                return
            except EslError as exc:
                log.warning("esl unavailable", extra={"error": str(exc)})
                self.connection.close(str(exc))
            except Exception:  # a bug in a hook must not end supervision: log, reconnect
                log.exception("esl session failed")
                self.connection.close("internal error (see log)")
            if self._stopped:
                return
            self.synced.clear()
            self._wake.clear()
            self._wake.wait(self.backoff.next())

    def _session(self) -> None:
        self.check_switchname()
        self.connection.send(subscribe_command(self.subscription_keys()))
        self.connects += 1
        self._run_hooks("connected")
        self.backoff.reset()
        while not self._stopped:
            gevent.wait([self._wake, self.connection.dead], timeout=1.0, count=1)
            self._wake.clear()
            if not self.connection.connected:
                return
            if self._resync:
                self._run_hooks("resync")
            elif self.connection.idle_for() >= self.probe_interval:
                self._probe()

    def check_switchname(self) -> None:
        switchname = self.connection.api("switchname").strip()
        if switchname != self.node_name:
            raise SwitchnameMismatch(
                f"FreeSWITCH at {self.connection.address} is switchname {switchname!r}, but "
                f"this node is configured as {self.node_name!r} (node.name must equal "
                f"switch.conf.xml's switchname)")

    def _probe(self) -> None:
        try:
            self.connection.api("switchname")
        except CommandTimeout as exc:
            self.connection.close(f"liveness probe failed: {exc}")

    def _run_hooks(self, why: str) -> None:
        self._resync = False
        started = time.monotonic()
        for hook in self.hooks:
            hook()
        self.synced.set()
        log.info("esl synced", extra={"why": why, "esl": self.connection.address,
                                      "duration_ms": round((time.monotonic() - started) * 1000)})
