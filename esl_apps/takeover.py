"""Take over and release one VIP's service: claim, registrations, profile, recovery, announce.

The steps follow DESIGN.md §2.5; each is idempotent, so re-running a takeover that crashed
half-way finishes it, and each is timed into the ``cluster_events`` row:

1. ``claim`` — the VIP's lease in ``cluster_vips`` (:mod:`esl_apps.vip_claims`); a node that
   cannot write (no Galera primary) or that finds a live owner stops here.
2. ``registrations`` — re-home the former owner's rows of the profile and re-create from the
   mirror those a graceful stop deleted (:mod:`esl_apps.rehome`).
3. ``profile`` — bump the cache generation so this node's ``sofia.conf`` includes the profile,
   then ``sofia profile vipN start`` (``restart`` if loaded from before; left alone when this
   node already served it) and wait for ``CUSTOM sofia::profile_start``.
4. ``recover`` — ``sofia profile vipN recover`` (never a bare ``sofia recover``: it would take
   the other active node's live calls too), confirmed by ``CUSTOM sofia::recovery_recovered``;
   then delete the former owner's ghost ``channels``/``calls`` rows and mirror rows.
5. ``announce`` — ``global_setvar fscluster_role`` / ``fscluster_vips`` and ``CUSTOM
   fscluster::takeover``. The service is restored here: the recorded ``duration_ms`` ends.
6. ``mirror`` — the agent's ``cluster_registrations`` rows of the profile follow to this node.

Release stops only that VIP's profile, so registrations of the other VIPs stay.
FreeSWITCH is reached through the narrow :class:`FreeSwitch` interface (``api``, ``expect``
an event, ``fire`` an event); the agent adapts its ESL connection to it.
"""
import json
import logging
import re
import time
from typing import Callable, Dict, Iterable, List, Optional, Protocol

from sqlalchemy import insert, update

from esl_apps import rehome, vip_claims
from esl_apps.protocol import Event
from esl_apps.sofia_status import profile_states
from fscluster.config import Config
from fscluster.db import Database
from fscluster.errors import FsclusterError
from fscluster.schema import cluster_events, cluster_nodes

log = logging.getLogger("fscluster.takeover")

#: mod_sofia refuses stop/restart until a profile has been up 10 s ("Please wait N seconds"),
#: so both waits cover that.
PROFILE_START_TIMEOUT = 12.0
PROFILE_STOP_TIMEOUT = 12.0
RECOVER_CONFIRM_TIMEOUT = 5.0
_RECOVERED = re.compile(r"Recovered (\d+) session")


class TakeoverFailed(FsclusterError):
    """A step could not be completed; the VIP is not served by this node."""


class Expectation(Protocol):
    def wait(self, timeout: float) -> Optional[Event]:
        """The first matching event after arming, or None at the deadline (then disarmed)."""

    def cancel(self) -> None:
        """Disarm without waiting."""


class FreeSwitch(Protocol):
    def api(self, command: str) -> str:
        """``api <command>``: the reply body (bounded by the connection's timeout)."""

    def expect(self, subclass: str, match: Callable[[Event], bool]) -> Expectation:
        """Arm a wait for ``CUSTOM <subclass>`` matching ``match`` (before the command)."""

    def fire(self, subclass: str, headers: Dict[str, str]) -> None:
        """``sendevent CUSTOM`` with ``Event-Subclass: <subclass>`` and ``headers``."""


def profile_running(fs: FreeSwitch, profile: str) -> bool:
    return profile_states(fs.api("sofia status")).get(profile, "").startswith("RUNNING")


class _Steps:
    """Per-step wall time in ms, in order."""

    def __init__(self, monotonic: Callable[[], float]):
        self.monotonic = monotonic
        self.started = monotonic()
        self.durations: Dict[str, float] = {}
        self._mark = self.started

    def done(self, name: str) -> None:
        now = self.monotonic()
        self.durations[name] = round((now - self._mark) * 1000, 2)
        self._mark = now

    @property
    def total_ms(self) -> float:
        return round((self.monotonic() - self.started) * 1000, 2)


class VipService:
    """Takeover/release of VIPs on this node; receives its DB and FreeSWITCH clients."""

    def __init__(self, config: Config, db: Database, fs: FreeSwitch,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.config, self.db, self.fs = config, db, fs
        self.node = config.node_name
        self.clock, self.monotonic, self.sleep = clock, monotonic, sleep

    # ------------------------------------------------------------------ takeover
    def takeover(self, vip_name: str, held_after: Iterable[str]) -> dict:
        """Serve ``vip_name`` from this node; returns the recorded event detail."""
        vip = self.config.vip(vip_name)
        steps = _Steps(self.monotonic)
        claim = vip_claims.claim(self.db, vip.name, vip.address, self.node,
                                 self.config.lease_seconds, self.clock, self.sleep)
        steps.done("claim")
        counts = self.db.retrying(
            lambda conn: rehome.rehome_registrations(conn, vip.name, self.node, self.clock()))
        steps.done("registrations")
        self.db.bump_generation()
        profile_action = self._start_profile(vip.name, keep_running=claim.renewed)
        steps.done("profile")
        recovered, confirmed = self._recover(vip.name)
        ghosts = self.db.retrying(
            lambda conn: rehome.remove_ghost_calls(conn, vip.name, self.node))
        steps.done("recover")
        held = sorted(set(held_after) | {vip.name})
        self._announce("fscluster::takeover", vip.name, held, claim.former_owner)
        steps.done("announce")
        restored_ms = steps.total_ms
        mirrored = self.db.retrying(
            lambda conn: rehome.rehome_mirror(conn, vip.name, self.node, self.clock()))
        steps.done("mirror")
        detail = {"steps_ms": steps.durations, "former_owner": claim.former_owner,
                  "mirror_registrations": mirrored, "with_mirror_ms": steps.total_ms,
                  "renewed": claim.renewed, "epoch": claim.epoch, "profile": profile_action,
                  "recovered_calls": recovered, "recovery_confirmed": confirmed,
                  **counts, "ghosts": ghosts}
        self._record("takeover", vip.name, claim.former_owner, restored_ms, detail, held)
        log.info("takeover done", extra={"vip": vip.name, "from_node": claim.former_owner,
                                         "duration_ms": restored_ms, **steps.durations})
        return detail

    def _start_profile(self, profile: str, keep_running: bool) -> str:
        states = profile_states(self.fs.api("sofia status"))
        loaded = profile in states
        if loaded and keep_running and states[profile].startswith("RUNNING"):
            return "kept"
        verb = "restart" if loaded else "start"
        deadline = self.monotonic() + PROFILE_START_TIMEOUT
        while True:
            started = self.fs.expect("sofia::profile_start",
                                     lambda e: e.get("profile_name") == profile)
            reply = self.fs.api(f"sofia profile {profile} {verb}")
            if "Failure" in reply or "Please wait" in reply or reply.startswith("-ERR"):
                # sofia.conf may not list the profile yet (a cache that has not seen the new
                # generation), or a restart comes too soon: try again until the deadline.
                started.cancel()
                if self.monotonic() >= deadline:
                    raise TakeoverFailed(f"sofia profile {profile} {verb}: {reply.strip()[:200]}")
                self.sleep(0.2)
                continue
            if started.wait(max(0.0, deadline - self.monotonic())) is None \
                    and not profile_running(self.fs, profile):
                raise TakeoverFailed(f"profile {profile} did not start within "
                                     f"{PROFILE_START_TIMEOUT:g}s")
            return verb

    def _recover(self, profile: str):
        confirmation = self.fs.expect("sofia::recovery_recovered",
                                      lambda e: e.get("profile_name", profile) == profile)
        reply = self.fs.api(f"sofia profile {profile} recover")
        match = _RECOVERED.search(reply)
        recovered = int(match.group(1)) if match else 0
        if recovered == 0:
            confirmation.cancel()
            return 0, True
        confirmed = confirmation.wait(RECOVER_CONFIRM_TIMEOUT) is not None
        if not confirmed:
            log.warning("recovery not confirmed by sofia::recovery_recovered",
                        extra={"vip": profile, "recovered_calls": recovered})
        return recovered, confirmed

    # ------------------------------------------------------------------ release
    def release(self, vip_name: str, held_after: Iterable[str], reason: str) -> dict:
        """Stop serving ``vip_name``: its profile only, then give the claim up."""
        vip = self.config.vip(vip_name)
        steps = _Steps(self.monotonic)
        stopped = self._stop_profile(vip.name)
        steps.done("profile")
        try:
            owned = vip_claims.release(self.db, vip.name, self.node)
            self.db.bump_generation()
        except FsclusterError as exc:    # the lease lapses by itself
            log.warning("release: claim not cleared", extra={"vip": vip.name, "error": str(exc)})
            owned = None
        steps.done("claim")
        held = sorted(set(held_after) - {vip.name})
        self._announce("fscluster::release", vip.name, held, None)
        steps.done("announce")
        detail = {"steps_ms": steps.durations, "reason": reason, "profile_stopped": stopped,
                  "claim_released": owned}
        self._record("release", vip.name, None, steps.total_ms, detail, held)
        log.info("release done", extra={"vip": vip.name, "reason": reason,
                                        "duration_ms": steps.total_ms})
        return detail

    def _stop_profile(self, profile: str) -> bool:
        if profile not in profile_states(self.fs.api("sofia status")):
            return False
        deadline = self.monotonic() + PROFILE_STOP_TIMEOUT
        reply = self.fs.api(f"sofia profile {profile} stop")
        while profile in profile_states(self.fs.api("sofia status")):
            if self.monotonic() >= deadline:
                raise TakeoverFailed(f"profile {profile} still loaded after "
                                     f"{PROFILE_STOP_TIMEOUT:g}s: {reply.strip()[:120]}")
            self.sleep(0.1)
            if "Please wait" in reply:       # refused: up for less than 10 s
                reply = self.fs.api(f"sofia profile {profile} stop")
        return True

    # ------------------------------------------------------------------ both
    def renew(self, vip_name: str) -> bool:
        """Keep our lease alive; False means another node took the claim."""
        return vip_claims.renew(self.db, vip_name, self.node, self.config.lease_seconds,
                                self.clock)

    def _announce(self, subclass: str, vip: str, held: List[str], former: Optional[str]):
        role = "active" if held else "passive"
        self.fs.api(f"global_setvar fscluster_role={role}")
        self.fs.api(f"global_setvar fscluster_vips={','.join(held)}")
        self.fs.fire(subclass, {"vip": vip, "node": self.node, "role": role,
                                "held_vips": ",".join(held), "from_node": former or ""})

    def publish_role(self, held: List[str]) -> None:
        """Mark this node active (with its VIPs) or passive in ``cluster_nodes``."""
        role = "active" if held else "passive"
        values = {"role": role, "vips": ",".join(held), "last_seen": self.clock()}

        def work(conn):
            if not conn.execute(update(cluster_nodes).where(
                    cluster_nodes.c.node_name == self.node).values(**values)).rowcount:
                conn.execute(insert(cluster_nodes).values(node_name=self.node, **values))
        self.db.retrying(work, deadline=vip_claims.CLAIM_DB_DEADLINE)

    def _record(self, kind: str, vip: str, former: Optional[str], total_ms: float,
                detail: dict, held: List[str]) -> None:
        def work(conn):
            conn.execute(insert(cluster_events).values(
                created_at=self.clock(), node=self.node, kind=kind, vip=vip, from_node=former,
                duration_ms=total_ms, detail=json.dumps(detail, sort_keys=True)))
        try:
            self.db.retrying(work, deadline=vip_claims.CLAIM_DB_DEADLINE)
            self.publish_role(held)
        except FsclusterError as exc:
            log.warning("could not record role change", extra={"vip": vip, "error": str(exc)})
