"""The agent's failover component: the role loop that turns VIPs on the interface into service.

Every ``interval`` seconds, at once when the interface's addresses change (``ip monitor``)
and when ``fscluster notify`` reports a keepalived transition, it reads the interface's
addresses, lets :class:`~esl_apps.roles.RoleMachine` decide, and runs the resulting takeovers
and releases one at a time through :class:`~esl_apps.takeover.VipService` (only while
FreeSWITCH is connected). While it serves a VIP a second greenlet renews the VIP's lease every
lease/4 s; a lease found in another node's hands releases the VIP (no split brain). A drain marker
(``fscluster release``/``failback``) is honoured by ``fscluster health``, which makes
keepalived move the VIP away; this loop then releases it like any other lost address.

:class:`EslFreeSwitch` adapts the agent's ESL connection to the narrow interface the
takeover needs (``api``, arm-then-wait for an event, ``sendevent``).
"""
import functools
import json
import logging
import os
import time
from typing import Callable, Dict, List, Optional, Set

import gevent
import gevent.event
import gevent.lock

from esl_apps.cdr import CdrProcessor
from esl_apps.protocol import Event
from esl_apps.roles import Action, RoleMachine, Step
from esl_apps.takeover import VipService
from fscluster.config import Config
from fscluster.errors import FsclusterError
from fscluster.interfaces import interface_addresses, monitor_argv
from fscluster.health import recorded_notify_path
from fscluster.keepalived_conf import instance_name, vip_for_instance, vips_served_by

log = logging.getLogger("fscluster.failover")

#: Events a takeover waits for.
WAITED_EVENTS = ("sofia::profile_start", "sofia::recovery_recovered")


class _Expectation:
    def __init__(self, owner: "EventWaits", key: str, match: Callable[[Event], bool]):
        self.owner, self.key, self.match = owner, key, match
        self.result = gevent.event.AsyncResult()

    def wait(self, timeout: float) -> Optional[Event]:
        try:
            return self.result.get(timeout=timeout)
        except gevent.Timeout:
            return None
        finally:
            self.cancel()

    def cancel(self) -> None:
        self.owner.discard(self)


class EventWaits:
    """Arm a wait before sending a command, so an event that beats the reply is not missed."""

    def __init__(self):
        self._armed: List[_Expectation] = []

    def handlers(self) -> Dict[str, Callable[[Event], None]]:
        return {key: self.on_event for key in WAITED_EVENTS}

    def expect(self, key: str, match: Callable[[Event], bool]) -> _Expectation:
        expectation = _Expectation(self, key, match)
        self._armed.append(expectation)
        return expectation

    def discard(self, expectation: _Expectation) -> None:
        if expectation in self._armed:
            self._armed.remove(expectation)

    def on_event(self, event: Event) -> None:
        for expectation in list(self._armed):
            if expectation.key == event.key and expectation.match(event):
                expectation.result.set(event)
                self.discard(expectation)


def _header_value(value: str) -> str:
    """One line: a newline in a value would forge extra headers in ``sendevent``."""
    return value.replace("\r", " ").replace("\n", " ")


class EslFreeSwitch:
    """:class:`~esl_apps.takeover.FreeSwitch` over the agent's ESL connection."""

    def __init__(self, connection, waits: EventWaits):
        self.connection, self.waits = connection, waits

    def api(self, command: str) -> str:
        return self.connection.api(command)

    def expect(self, subclass: str, match: Callable[[Event], bool]):
        return self.waits.expect(subclass, match)

    def fire(self, subclass: str, headers: Dict[str, str]) -> None:
        block = [("Event-Subclass", subclass)] + [
            (name, _header_value(value)) for name, value in headers.items()]
        reply = self.connection.sendevent("CUSTOM", block)
        if not reply.reply_text.startswith("+OK"):
            log.warning("sendevent refused", extra={"subclass": subclass,
                                                    "reply": reply.reply_text[:120]})


class Failover:
    """The role loop of one node (a component of the agent: ``start()``/``stop()``)."""

    def __init__(self, config: Config, service: VipService, addresses: Callable[[], Set[str]],
                 interval: float = 1.0, clock: Callable[[], float] = time.time,
                 watch_argv: Optional[List[str]] = None,
                 ready: Callable[[], bool] = lambda: True):
        self.config, self.service, self.addresses = config, service, addresses
        self.watch_argv, self.ready = watch_argv, ready
        self.interval, self.clock = interval, clock
        #: only the VIPs this node's keepalived can give it (it is their master or backup)
        self.vips = vips_served_by(config, config.node_name)
        self.machine = RoleMachine(config.node_name, [vip.name for vip in self.vips])
        self.last_result: Dict[str, dict] = {}
        self._wake = gevent.event.Event()
        self._lost: Set[str] = set()
        self._greenlets: List[gevent.Greenlet] = []
        self._lock = gevent.lock.RLock()

    # ------------------------------------------------------------------ inputs
    def notify(self, instance: str, state: str) -> dict:
        """A keepalived transition (from ``fscluster notify``): record it, reconcile now."""
        vip = vip_for_instance(self.config, instance)
        if vip.name not in self.machine.states:
            raise FsclusterError(f"{vip.name} is not served by {self.config.node_name}")
        self.machine.notified(vip.name, state.upper())
        self._wake.set()
        return {"vip": vip.name, "state": state.upper()}

    def held_vips(self) -> Set[str]:
        on_interface = self.addresses()
        return {vip.name for vip in self.vips if vip.address in on_interface}

    # ------------------------------------------------------------------ the loop
    def reconcile(self) -> None:
        """One level-triggered pass: act on the difference between interface and states."""
        if not self.ready():
            return          # FreeSWITCH not connected: nothing can be started or stopped
        with self._lock:
            for step in self.machine.observe(self.held_vips(), self.clock()):
                self._run(step)
            for vip in self._lost:
                step = self.machine.claim_lost(vip)
                if step:
                    log.warning("claim lost to another node", extra={"vip": vip})
                    self._run(step)
            self._lost.clear()
            try:
                self.service.publish_role(self.machine.held())
            except FsclusterError as exc:
                log.warning("role not published", extra={"error": str(exc)})

    def _run(self, step: Step) -> None:
        held = [v for v in self.machine.held() if v != step.vip]
        try:
            if step.action is Action.TAKEOVER:
                result = self.service.takeover(step.vip, held)
            else:
                result = self.service.release(step.vip, held, step.reason)
            ok = True
        except Exception as exc:  # noqa: BLE001 - any failure leaves the VIP in FAULT/BACKUP
            log.error(f"{step.action.value} failed", extra={"vip": step.vip, "error": str(exc)})
            result, ok = {"error": str(exc)}, False
        self.machine.finished(step, ok, self.clock())
        self.last_result[step.vip] = {"action": step.action.value, "ok": ok, **result}

    def renew_forever(self) -> None:
        """Renew the leases of served VIPs every lease/4 s, apart from the reconcile loop so a
        long takeover of one VIP never lets another VIP's lease lapse."""
        while True:
            # Only what we can still serve: a VIP keepalived took away, or a dead FreeSWITCH,
            # lets the lease lapse so the new holder's claim goes through.
            try:
                serving = set(self.machine.held()) & self.held_vips() if self.ready() else set()
            except FsclusterError as exc:
                log.warning("interface unreadable", extra={"error": str(exc)})
                serving = set()
            for vip in sorted(serving):
                try:
                    if not self.service.renew(vip):
                        self._lost.add(vip)
                        self._wake.set()
                except FsclusterError as exc:   # cut from the DB: keep serving, VRRP decides
                    log.warning("lease renewal failed", extra={"vip": vip, "error": str(exc)})
            gevent.sleep(self.config.lease_seconds / 4)

    def watch_forever(self) -> None:
        """Wake the loop on every address change of the interface (``ip monitor``); the
        once-a-second pass stays the safety net if the monitor dies."""
        from gevent import subprocess as gsubprocess
        while True:
            try:
                proc = gsubprocess.Popen(self.watch_argv, stdout=gsubprocess.PIPE,
                                         stderr=gsubprocess.DEVNULL)
            except OSError as exc:
                log.warning("address monitor failed", extra={"error": str(exc)})
                gevent.sleep(5)
                continue
            try:
                for _line in proc.stdout:
                    self._wake.set()
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            gevent.sleep(1)

    def run_forever(self) -> None:
        while True:
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - the loop must survive (e.g. ip failed)
                log.error("reconcile failed", extra={"error": str(exc)})
            self._wake.wait(self.interval)
            self._wake.clear()

    # ------------------------------------------------------------------ by hand
    def takeover_now(self, vip_name: str) -> dict:
        """``fscluster takeover VIP``: run the takeover now (idempotent) if we hold the VIP."""
        vip = self.config.vip(vip_name)
        if vip.name not in self.machine.states:
            raise FsclusterError(f"{vip.name} is not served by {self.config.node_name} "
                                 f"(its keepalived peers are {vip.master} and {vip.backup})")
        if vip.name not in self.held_vips():
            raise FsclusterError(f"{vip.name} ({vip.address}) is not on {self.config.interface} "
                                 f"of {self.config.node_name}: keepalived has not given it here")
        with self._lock:
            if vip.name in self.machine.held():
                others = [v for v in self.machine.held() if v != vip.name]
                return self.service.takeover(vip.name, others)
            self.machine.retry_now(vip.name)
            self.reconcile()
            return self.last_result.get(vip.name, {})

    def status(self) -> dict:
        return {"node": self.config.node_name, "role": self.machine.role,
                "states": {vip: s.value for vip, s in self.machine.states.items()},
                "keepalived": dict(self.machine.keepalived), "last": self.last_result}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if not self._greenlets:
            self._greenlets = [gevent.spawn(self.run_forever), gevent.spawn(self.renew_forever)]
            if self.watch_argv:
                self._greenlets.append(gevent.spawn(self.watch_forever))

    def stop(self) -> None:
        gevent.killall(self._greenlets)
        self._greenlets = []


def load_recorded_notifies(config: Config, failover: Failover) -> None:
    """Transitions ``fscluster notify`` recorded while the agent was down (for status/logs)."""
    for vip in failover.vips:
        path = recorded_notify_path(config, instance_name(vip))
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            failover.notify(record["instance"], record["state"])
            os.unlink(path)
        except (OSError, ValueError, KeyError, FsclusterError):
            continue


def attach(agent, addresses: Optional[Callable[[], Set[str]]] = None) -> Failover:
    """Add the role loop and the control socket to an :class:`~esl_apps.agent.Agent`."""
    from esl_apps.control import ControlServer
    config = agent.config
    waits = EventWaits()
    agent.subscribe("failover", waits.handlers())
    service = VipService(config, agent.db, EslFreeSwitch(agent.esl, waits), sleep=gevent.sleep)
    watch_argv = None
    if addresses is None:
        addresses = functools.partial(interface_addresses, config.interface)
        watch_argv = monitor_argv(config.interface)
    failover = Failover(config, service, addresses, watch_argv=watch_argv,
                        ready=lambda: agent.esl.connected)
    load_recorded_notifies(config, failover)
    control = ControlServer(config.agent_socket, {
        "notify": lambda req: failover.notify(str(req["instance"]), str(req["state"])),
        "takeover": lambda req: failover.takeover_now(str(req["vip"])),
        "status": lambda req: failover.status()})
    agent.add_component(control)
    agent.add_component(failover)
    # Passive duty (DESIGN.md §2.6): only while this node holds no VIP.
    agent.add_component(CdrProcessor(agent.db, config.node_name,
                                     is_passive=lambda: failover.machine.role == "passive"))
    return failover
