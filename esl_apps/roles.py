"""The node's role per VIP, as an explicit state machine driven by what is on the interface.

Pure: no sockets, no SQL, no clock of its own. keepalived is the authority on *who holds a
VIP* — it adds the address to the interface before it runs ``notify`` and removes it when it
leaves MASTER — so the agent decides from the addresses actually configured, every second
(level-triggered). A ``notify`` only wakes the loop early and is logged; a lost or
out-of-order notification therefore cannot leave a node half-active.

States of one VIP on this node::

    UNKNOWN ──held──▶ TAKING_OVER ──ok──▶ MASTER ──not held / lost claim──▶ RELEASING
       │                   │  ▲                                                │
       │              failed│  │held, after RETRY_SECONDS                      ▼ ok/failed
       └──not held──▶ RELEASING      FAULT ◀──────────────────────────────── BACKUP
                                        └──not held──▶ RELEASING

``UNKNOWN`` is the state at agent start: a VIP not held is released once (the profile may
be loaded from before a crash), a held one is taken over (every step is idempotent).
"""
import dataclasses
import enum
import logging
from typing import Dict, Iterable, List, Optional, Set

log = logging.getLogger("fscluster.roles")

#: Seconds before a failed takeover of a still-held VIP is tried again.
RETRY_SECONDS = 5.0


class VipState(enum.Enum):
    UNKNOWN = "unknown"
    BACKUP = "backup"
    TAKING_OVER = "taking_over"
    MASTER = "master"
    RELEASING = "releasing"
    FAULT = "fault"


class Action(enum.Enum):
    TAKEOVER = "takeover"
    RELEASE = "release"


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing the agent must do now for one VIP."""

    action: Action
    vip: str
    reason: str


#: The only transitions allowed; anything else is a bug and raises.
TRANSITIONS = {
    VipState.UNKNOWN: {VipState.TAKING_OVER, VipState.RELEASING},
    VipState.BACKUP: {VipState.TAKING_OVER},
    VipState.TAKING_OVER: {VipState.MASTER, VipState.FAULT},
    VipState.MASTER: {VipState.RELEASING},
    VipState.RELEASING: {VipState.BACKUP},
    VipState.FAULT: {VipState.TAKING_OVER, VipState.RELEASING},
}


class RoleMachine:
    """Per-VIP states of this node, the steps they call for, and the node's role."""

    def __init__(self, node: str, vips: Iterable[str]):
        self.node = node
        self.states: Dict[str, VipState] = {vip: VipState.UNKNOWN for vip in vips}
        self.keepalived: Dict[str, str] = {}          # last notify per VIP, for status
        self._failed_at: Dict[str, float] = {}

    # ------------------------------------------------------------------ inputs
    def notified(self, vip: str, state: str) -> None:
        """keepalived said INSTANCE → STATE; recorded and logged, acted on by :meth:`observe`."""
        self.keepalived[vip] = state
        log.info("keepalived notify", extra={"vip": vip, "keepalived_state": state,
                                             "role_state": self.states[vip].value})

    def observe(self, held: Set[str], now: float) -> List[Step]:
        """Compare the VIPs on the interface with our states; return the steps to run.

        Each returned step has already moved its VIP into TAKING_OVER or RELEASING; report
        its outcome with :meth:`finished`.
        """
        steps = []
        for vip, state in self.states.items():
            if vip in held:
                if state in (VipState.UNKNOWN, VipState.BACKUP) or (
                        state is VipState.FAULT
                        and now - self._failed_at.get(vip, 0.0) >= RETRY_SECONDS):
                    self._move(vip, VipState.TAKING_OVER, "address on interface")
                    steps.append(Step(Action.TAKEOVER, vip, "address on interface"))
            elif state in (VipState.UNKNOWN, VipState.MASTER, VipState.FAULT):
                self._move(vip, VipState.RELEASING, "address not on interface")
                steps.append(Step(Action.RELEASE, vip, "address not on interface"))
        return steps

    def claim_lost(self, vip: str) -> Optional[Step]:
        """Another live node owns the VIP in the DB: stop serving it (no split brain)."""
        if self.states[vip] is not VipState.MASTER:
            return None
        self._move(vip, VipState.RELEASING, "claim lost")
        return Step(Action.RELEASE, vip, "claim lost")

    def retry_now(self, vip: str) -> None:
        """Let the next :meth:`observe` retry a FAULT VIP without waiting (by hand)."""
        self._failed_at.pop(vip, None)

    def finished(self, step: Step, ok: bool, now: float) -> None:
        if step.action is Action.TAKEOVER:
            if ok:
                self._move(step.vip, VipState.MASTER, "takeover done")
            else:
                self._failed_at[step.vip] = now
                self._move(step.vip, VipState.FAULT, "takeover failed")
        else:
            # A failed release still leaves the node not serving as far as we can tell;
            # the next observe() retries the takeover path only if the address comes back.
            self._move(step.vip, VipState.BACKUP, "released" if ok else "release failed")

    # ------------------------------------------------------------------ outputs
    def held(self) -> List[str]:
        """VIPs this node serves now (MASTER)."""
        return sorted(v for v, s in self.states.items() if s is VipState.MASTER)

    @property
    def role(self) -> str:
        """``active`` while serving any VIP, else ``passive`` (the node that does CDRs)."""
        return "active" if self.held() else "passive"

    def _move(self, vip: str, new: VipState, reason: str) -> None:
        old = self.states[vip]
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"{vip}: illegal role transition {old.value} -> {new.value}")
        self.states[vip] = new
        log.info("role transition", extra={"node": self.node, "vip": vip, "from": old.value,
                                           "to": new.value, "reason": reason})
