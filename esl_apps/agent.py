"""``fscluster-agent``: the gevent service on each PBX node, attached to its FreeSWITCH.

:class:`Agent` wires the parts, each of which receives its clients:

- :class:`~esl_apps.connection.Connection` (the event socket) → :class:`~esl_apps.dispatch.EventBus`
  (one worker per subscriber, so no handler stalls intake);
- :class:`~esl_apps.supervisor.Supervisor` keeps the connection up: switchname check,
  ``event plain`` for every handled key, then the ``on_connected`` hooks (the resyncs);
- :class:`~esl_apps.registrations.RegistrationTracker`, :class:`~esl_apps.channels.ChannelTracker`
  and :class:`~esl_apps.heartbeat.Heartbeat` write through one :class:`~esl_apps.mirror.Mirror`.

Other parts attach without touching this wiring: :meth:`Agent.subscribe` (handlers + live
subscription), :meth:`Agent.on_connected` (after every (re)connect), and
:meth:`Agent.add_component` for anything with ``start()``/``stop()`` (the role/takeover
loop, the local control socket for ``fscluster notify``); they reach FreeSWITCH through
``agent.esl.api()``/``bgapi()`` and the DB through ``agent.db``.
"""
import logging
import signal
import sys
import time
from typing import Callable, Dict, List, Optional

import gevent
import gevent.event

from esl_apps import channels, failover, registrations
from esl_apps.channels import ChannelTracker
from esl_apps.connection import ApiError, Connection, EslError
from esl_apps.dispatch import EventBus, Subscriber
from esl_apps.heartbeat import Heartbeat
from esl_apps.mirror import Mirror
from esl_apps.protocol import Event
from esl_apps.registrations import RegistrationTracker
from esl_apps.supervisor import Supervisor
from fscluster.config import Config
from fscluster.db import Database

log = logging.getLogger("fscluster.agent")


class Agent:
    """One node's agent: build it, :meth:`start` it, :meth:`stop` it (or :meth:`run`)."""

    def __init__(self, config: Config, db: Database, probe_interval: Optional[float] = None,
                 max_delay: float = 0.2):
        node = config.node_name
        self.config = config
        self.db = db
        self.bus = EventBus(on_overflow=lambda name: self.resync(f"{name} queue overflowed"))
        self.esl = Connection(config.esl_host, config.esl_port, config.esl_password,
                              config.esl_timeout, config.esl_idle_timeout,
                              on_event=self._publish)
        self.mirror = Mirror(db, node, max_delay=max_delay, on_lost=self.resync)
        self.supervisor = Supervisor(
            self.esl, node, self.bus.keys,
            probe_interval=probe_interval or config.esl_idle_timeout / 3)
        self.registrations = RegistrationTracker(self.mirror, node)
        self.channels = ChannelTracker(self.mirror, node, time.time)
        self.heartbeat = Heartbeat(self.mirror, node, self._figures)
        self.components: List[object] = []
        self._stopping = gevent.event.Event()
        self.subscribe("registrations", self.registrations.handlers())
        self.subscribe("channels", self.channels.handlers())
        self.subscribe("heartbeat", self.heartbeat.handlers())
        self.on_connected(lambda: self.snapshot(registrations.SHOW_COMMAND,
                                                registrations.SNAPSHOT))
        self.on_connected(lambda: self.snapshot(channels.SHOW_COMMAND, channels.SNAPSHOT))

    # ------------------------------------------------------------------ extension points
    def subscribe(self, name: str, handlers: Dict[str, Callable]) -> Subscriber:
        """Handle event keys (``CHANNEL_CREATE``, ``sofia::profile_start``, …) in a worker of
        their own, and subscribe FreeSWITCH to them (now if connected, and on every connect)."""
        subscriber = self.bus.subscribe(name, handlers)
        try:
            self.supervisor.subscribe(handlers)
        except EslError as exc:  # sent again with the full list on the next connect
            log.warning("live subscription failed", extra={"error": str(exc)})
        return subscriber

    def on_connected(self, hook: Callable[[], None]) -> None:
        self.supervisor.on_connected(hook)

    def add_component(self, component) -> None:
        """Anything with ``start()`` and ``stop()``; started after the agent, stopped before."""
        self.components.append(component)
        if self.supervisor.greenlet is not None:
            component.start()

    def resync(self, why: str) -> None:
        self.supervisor.request_resync(why)

    def snapshot(self, command: str, key: str) -> None:
        """Run ``api command`` and publish its body under ``key`` at the reply's place in the
        event stream, so the subscriber applies it after older events and before newer ones."""
        body = self.esl.api(command, on_reply=lambda text: self.bus.publish(key, text))
        if not body.lstrip().startswith("{"):
            raise ApiError(f"api {command!r}: {body.strip()[:120]!r}")

    # ------------------------------------------------------------------ internals
    def _publish(self, event: Event) -> None:
        self.bus.publish(event.key, event)

    def _figures(self) -> dict:
        return {"freeswitch_up": self.esl.connected, "registrations": self.registrations.count,
                "channels": self.channels.count, "register_failures": self.registrations.failures}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.mirror.start()
        self.heartbeat.start()
        self.supervisor.start()
        for component in self.components:
            component.start()

    def stop(self, drain_seconds: float = 2.0) -> None:
        for component in reversed(self.components):
            component.stop()
        self.supervisor.stop()
        deadline = time.monotonic() + drain_seconds
        while not self.bus.idle() and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self.heartbeat.stop()
        self.bus.stop()
        self.mirror.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        """Run until :meth:`request_stop` (SIGTERM) or a fatal error (``supervisor.fatal``,
        e.g. a switchname mismatch); returns the exit code."""
        self.start()
        gevent.wait([self._stopping, self.supervisor.greenlet], count=1)
        self.stop()
        return 0 if self.supervisor.fatal is None else 1


def main(argv=None) -> int:
    from gevent import monkey
    monkey.patch_all()
    from fscluster.entrypoint import load_config

    config = load_config("fscluster-agent", __doc__.split("\n")[0], argv)
    if config is None:
        return 2
    agent = Agent(config, Database.from_config(config))
    failover.attach(agent)   # role loop + control socket (docs/failover.md)
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, agent.request_stop)
    log.info("agent starting", extra={"node": config.node_name,
                                      "esl": agent.esl.address, "db": agent.db.describe()})
    code = agent.run()
    if agent.supervisor.fatal is not None:  # the one line an operator needs, last
        print(f"fscluster-agent: {agent.supervisor.fatal}", file=sys.stderr)
    else:
        log.info("agent stopped", extra={"node": config.node_name})
    return code


if __name__ == "__main__":
    sys.exit(main())
