"""``fscluster health VIP``: may this node hold the VIP? keepalived's ``track_script`` asks.

A failing check (exit 1) faults the VIP's keepalived instance on this node, so the VIP moves
to its peer. It fails when: the local FreeSWITCH does not answer on its event socket; this
node holds the VIP's address but the VIP's sofia profile is not RUNNING (checked only while
held, a backup keeps the profile stopped; and not while the agent reports the takeover still
running); or the operator drained the VIP here
(``fscluster release``/``failback`` leave a marker file beside the agent socket). The check
reads the interface and FreeSWITCH only — not the DB — so a DB outage alone never moves VIPs.
Bounded: its calls take at most ~1.5 s, under the script's ``timeout`` in keepalived.conf.
"""
import os
from typing import List, Optional, Sequence, Set

from fscluster.config import Config, Vip

ESL_TIMEOUT = 1.0


# ---------------------------------------------------------------------- files beside the socket
def _beside_socket(config: Config, name: str) -> str:
    return os.path.join(os.path.dirname(config.agent_socket) or ".", name)


def recorded_notify_path(config: Config, instance: str) -> str:
    """Where ``fscluster notify`` records a transition the agent could not take."""
    return _beside_socket(config, f"keepalived-{instance}.state")


def marker_path(config: Config, vip: str) -> str:
    return _beside_socket(config, f"drain-{vip}")


def set_drain(config: Config, vip: str, on: bool) -> None:
    path = marker_path(config, vip)
    if on:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("drained by fscluster\n")
    elif os.path.exists(path):
        os.unlink(path)


def drained(config: Config, vip: str) -> bool:
    return os.path.exists(marker_path(config, vip))


# ---------------------------------------------------------------------- the decision
def problems(vips: Sequence[Vip], on_interface: Set[str], drained_vips: Set[str],
             profile_states: Optional[dict], taking_over: Set[str] = frozenset()) -> List[str]:
    """Why this node must not hold these VIPs (empty: healthy). ``profile_states`` is the
    parsed ``sofia status`` ({profile: state}), or None when FreeSWITCH did not answer;
    ``taking_over``: VIPs whose takeover the agent is running (their profile may not be up
    yet, which is no reason to move them)."""
    if profile_states is None:
        return ["FreeSWITCH does not answer on its event socket"]
    found = []
    for vip in vips:
        if vip.name in drained_vips:
            found.append(f"{vip.name} is drained on this node")
        elif vip.address in on_interface and vip.name not in taking_over and \
                not profile_states.get(vip.name, "").startswith("RUNNING"):
            found.append(f"{vip.name} is held but its sofia profile is "
                         f"{profile_states.get(vip.name, 'not loaded')}")
    return found


def agent_taking_over(config: Config) -> Set[str]:
    """VIPs the local agent is taking over right now (empty when it does not answer)."""
    from esl_apps.control import ControlError, request
    try:
        status = request(config.agent_socket, {"cmd": "status"}, timeout=ESL_TIMEOUT / 2)
    except ControlError:
        return set()
    return {vip for vip, state in (status or {}).get("states", {}).items()
            if state == "taking_over"}


def sofia_status(config: Config) -> Optional[dict]:
    """``sofia status`` of the local FreeSWITCH as {profile: state}; None if unreachable."""
    from esl_apps import oneshot
    from esl_apps.sofia_status import profile_states
    try:
        return profile_states(oneshot.api(config.esl_host, config.esl_port, config.esl_password,
                                          "sofia status", ESL_TIMEOUT))
    except oneshot.OneShotError:
        return None
