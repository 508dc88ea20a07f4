"""Registrations of this node → ``cluster_registrations``, keyed by SIP call-id.

Events (sofia_reg.c / sofia.c, FreeSWITCH 1.10):

- ``sofia::register`` — profile-name, from-user, from-host, contact, call-id, status,
  expires (*seconds from now*), network-ip/-port, username, realm, user-agent; fired again on
  every refresh, so it is an upsert.
- ``sofia::unregister`` — by call-id; after a TCP/TLS socket closes it carries only
  profile-name, from-user, from-host, call-id, rpid and ``reason=socket-disconnection``.
- ``sofia::expire`` — by call-id, ``expires`` is an absolute epoch. Live nodes keep firing it
  for rows a dead node left in the shared ``sip_registrations`` table, so an expire (or
  unregister) only acts on a call-id this node registered; anything else is ignored, which
  keeps those ghosts from flapping another node's mirror rows.
- ``sofia::register_failure`` — counted (fired on 403 only).

After every (re)connect ``show registrations as json`` (mod_commands.c: the core
``registrations`` table, this switchname's rows; ``{"row_count": N, "rows": [...]}``)
replaces this node's rows. The snapshot lacks the contact as sent, the status and the user
agent: the contact is rebuilt from ``url`` and those columns keep any value an event stored.
"""
import json
import time
from typing import Callable, Dict, List

from esl_apps.mirror import Mirror
from esl_apps.protocol import Event, int_or_none
from fscluster.schema import cluster_registrations

REGISTER = "sofia::register"
UNREGISTER = "sofia::unregister"
EXPIRE = "sofia::expire"
REGISTER_FAILURE = "sofia::register_failure"
SNAPSHOT = "snapshot:registrations"
SHOW_COMMAND = "show registrations as json"
SNAPSHOT_FILL_ONLY = ("contact",)


def row_from_register(event: Event, node: str, now: float) -> dict:
    """The mirror row a ``sofia::register`` event describes (expires made absolute)."""
    get = event.headers.get  # hot path: one lookup per column
    expires = int_or_none(get("expires"))
    return {
        "call_id": get("call-id", ""), "node": node, "profile_name": get("profile-name"),
        "sip_user": get("from-user") or get("username"),
        "sip_host": get("from-host") or get("realm"),
        "contact": get("contact"), "status": get("status"), "network_ip": get("network-ip"),
        "network_port": get("network-port"), "user_agent": get("user-agent"),
        "sip_username": get("username"), "sip_realm": get("realm"),
        "expires": int(now) + expires if expires is not None else None,
    }


def parse_show_json(body: str, command: str) -> List[dict]:
    """``{"row_count": N, "rows": [...]}`` → rows; no ``rows`` key when N is 0."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ValueError(f"{command!r} did not answer JSON: {body.strip()[:120]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows", []), list):
        raise ValueError(f"{command!r}: unexpected JSON shape {body.strip()[:120]!r}")
    return data.get("rows", [])


def rows_from_show(body: str, node: str) -> List[dict]:
    """Mirror rows from ``show registrations as json``; ``url`` is ``sofia/<profile>/<contact>``."""
    rows = []
    for item in parse_show_json(body, SHOW_COMMAND):
        call_id = item.get("token")
        if not call_id:
            continue
        parts = (item.get("url") or "").split("/", 2)
        profile, contact = (parts[1], parts[2]) if len(parts) == 3 else (None, None)
        rows.append({
            "call_id": call_id, "node": node, "profile_name": profile,
            "sip_user": item.get("reg_user"), "sip_host": item.get("realm"),
            "sip_realm": item.get("realm"), "contact": contact,
            "network_ip": item.get("network_ip"), "network_port": item.get("network_port"),
            "expires": int_or_none(item.get("expires")),
        })
    return rows


class RegistrationTracker:
    """Applies registration events and snapshots to the mirror; counts what it owns."""

    def __init__(self, mirror: Mirror, node: str, clock: Callable[[], float] = time.time):
        self.mirror = mirror
        self.node = node
        self.clock = clock
        self.own: set = set()
        self.failures = 0

    def handlers(self) -> Dict[str, Callable]:
        """Key → handler; one subscriber, so events and snapshots apply in stream order."""
        return {REGISTER: self.on_register, UNREGISTER: self.on_unregister,
                EXPIRE: self.on_unregister, REGISTER_FAILURE: self.on_failure,
                SNAPSHOT: self.on_snapshot}

    @property
    def count(self) -> int:
        return len(self.own)

    def on_register(self, event: Event) -> None:
        row = row_from_register(event, self.node, self.clock())
        if row["call_id"]:
            self.own.add(row["call_id"])
            self.mirror.upsert(cluster_registrations, row)

    def on_unregister(self, event: Event) -> None:
        call_id = event.get("call-id")
        if call_id in self.own:
            self.own.discard(call_id)
            self.mirror.delete(cluster_registrations, call_id)

    def on_failure(self, event: Event) -> None:
        self.failures += 1

    def on_snapshot(self, body: str) -> None:
        rows = rows_from_show(body, self.node)
        self.own = {row["call_id"] for row in rows}
        self.mirror.replace(cluster_registrations, rows, fill_only=SNAPSHOT_FILL_ONLY)
