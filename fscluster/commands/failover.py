"""``fscluster notify|health|takeover|release|failback|status``: the failover by hand and for
keepalived.

``notify`` and ``health`` are what keepalived runs (rendered into keepalived.conf); the rest
are for the operator. ``notify`` hands the transition to the local agent over its control
socket; if the agent is down it records the transition in a file beside the socket (the
agent loads it at start, and its once-a-second reconcile acts on the interface anyway).
"""
import json
import os
import sys
import time

from fscluster import health as health_mod
from fscluster.config import Config
from fscluster.errors import FsclusterError
from fscluster.interfaces import interface_addresses
from fscluster.keepalived_conf import vip_for_instance, vips_served_by

#: Longest a release/failback waits for keepalived to move the VIP away.
MOVE_TIMEOUT = 20.0
KEEPALIVED_STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")


def register(sub):
    p = sub.add_parser("notify", help="(keepalived notify) hand a VRRP transition to the agent")
    p.add_argument("words", nargs="+", metavar="[INSTANCE] NAME STATE [PRIORITY]")
    p.set_defaults(func=notify)
    p = sub.add_parser("health", help="(keepalived track_script) exit 1 if this node must not "
                                      "hold the VIP(s)")
    p.add_argument("vip", nargs="?", help="one VIP (default: every VIP this node serves)")
    p.set_defaults(func=health)
    for name, func, text in (
            ("takeover", takeover, "run the takeover of a VIP this node holds now"),
            ("release", release, "stop serving a VIP here: keepalived moves it away"),
            ("failback", failback, "hand a VIP back to its preferred master")):
        p = sub.add_parser(name, help=text)
        p.add_argument("vip")
        p.set_defaults(func=func)
    sub.add_parser("status", help="every node: role, VIPs, registrations, channels, last "
                                  "failover").set_defaults(func=status)


# ---------------------------------------------------------------------- keepalived side
def parse_notify(words):
    """keepalived passes ``INSTANCE|GROUP NAME STATE PRIORITY``; by hand ``NAME STATE``."""
    if words and words[0].upper() in ("INSTANCE", "GROUP"):
        kind, words = words[0].upper(), words[1:]
    else:
        kind = "INSTANCE"
    if len(words) not in (2, 3) or words[1].upper() not in KEEPALIVED_STATES:
        raise FsclusterError("notify: expected [INSTANCE] NAME MASTER|BACKUP|FAULT|STOP "
                             "[PRIORITY]")
    return kind, words[0], words[1].upper()


def notify(config, args):
    from esl_apps.control import ControlError, request
    kind, name, state = parse_notify(args.words)
    if kind == "GROUP":
        return 0                      # no sync groups in the rendered config
    vip = vip_for_instance(config, name)
    record = {"instance": name, "state": state, "at": time.time()}
    try:
        request(config.agent_socket, {"cmd": "notify", **record}, timeout=3)
    except ControlError as exc:
        path = health_mod.recorded_notify_path(config, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        print(f"fscluster: agent not reachable ({exc}); {vip.name} {state} recorded in {path}",
              file=sys.stderr)
    return 0


def health(config, args):
    vips = [config.vip(args.vip)] if args.vip else vips_served_by(config, config.node_name)
    found = health_mod.problems(
        vips, interface_addresses(config.interface),
        {vip.name for vip in vips if health_mod.drained(config, vip.name)},
        health_mod.sofia_status(config), health_mod.agent_taking_over(config))
    for problem in found:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if found else 0


# ---------------------------------------------------------------------- by hand
def takeover(config, args):
    from esl_apps.control import request
    vip = config.vip(args.vip)
    health_mod.set_drain(config, vip.name, False)
    if vip.address not in interface_addresses(config.interface):
        print(f"{vip.name} is not on this node; drain cleared, so keepalived gives it here "
              f"when its holder fails (nopreempt: a healthy holder keeps it)")
        return 0
    result = request(config.agent_socket, {"cmd": "takeover", "vip": vip.name}, timeout=60)
    steps = ", ".join(f"{k} {v} ms" for k, v in (result or {}).get("steps_ms", {}).items())
    print(f"{vip.name} served by {config.node_name}" + (f" ({steps})" if steps else ""))
    return 0


def _move_away(config: Config, vip_name: str, keep_drained: bool) -> str:
    vip = config.vip(vip_name)
    if vip.address not in interface_addresses(config.interface):
        raise FsclusterError(f"{vip.name} is not on {config.node_name}; run this on the node "
                             f"holding {vip.address}")
    health_mod.set_drain(config, vip.name, True)
    deadline = time.monotonic() + MOVE_TIMEOUT
    try:
        while vip.address in interface_addresses(config.interface):
            if time.monotonic() >= deadline:
                raise FsclusterError(f"keepalived did not move {vip.name} within "
                                     f"{MOVE_TIMEOUT:g}s (is its peer healthy?)")
            time.sleep(0.2)
    finally:
        if not keep_drained:
            health_mod.set_drain(config, vip.name, False)
    return vip.name


def release(config, args):
    name = _move_away(config, args.vip, keep_drained=True)
    print(f"{name} released by {config.node_name} (drained here until `fscluster takeover "
          f"{name}`)")
    return 0


def failback(config, args):
    vip = config.vip(args.vip)
    if vip.master == config.node_name:
        raise FsclusterError(f"{vip.name}: this node ({vip.master}) is its preferred master")
    _move_away(config, vip.name, keep_drained=False)
    print(f"{vip.name} handed back: keepalived moved it to its peer ({vip.master} when healthy)")
    return 0


def status(config, args):
    from fscluster.db import Database
    from fscluster.status import cluster_status, render_status
    db = Database.from_config(config)
    try:
        print(render_status(cluster_status(db, config)))
    finally:
        db.dispose()
    return 0
