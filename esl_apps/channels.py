"""Channels of this node → ``cluster_channels``; hangups → ``cluster_cdr_queue``.

``CHANNEL_CREATE``/``ANSWER``/``BRIDGE`` carry the channel's state and caller profile
(``Unique-ID``, ``Call-Direction``, ``Caller-*``, ``Channel-State``, ``Channel-Call-State``,
``Channel-Name`` = ``sofia/<profile>/<dest>``, times in microseconds) and upsert the row;
``CHANNEL_HANGUP_COMPLETE`` deletes it and queues the CDR data once per uuid (the passive
node turns it into ``cluster_cdrs`` later; see DESIGN.md §2.6).

After every (re)connect ``show channels as json`` replaces this node's rows (mod_commands.c
reads the core ``channels`` table of this switchname; with no channel the answer is exactly
``{"row_count": 0}``, no ``rows`` key). The snapshot has no answer time, so a snapshot
leaves ``answered_epoch`` as the events stored it.
"""
import json
from typing import Callable, Dict, Optional

from esl_apps.mirror import Mirror
from esl_apps.protocol import Event
from esl_apps.registrations import parse_show_json
from fscluster.schema import cluster_cdr_queue, cluster_channels

CREATE, ANSWER, BRIDGE = "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE"
HANGUP_COMPLETE = "CHANNEL_HANGUP_COMPLETE"
SNAPSHOT = "snapshot:channels"
SHOW_COMMAND = "show channels as json"
#: Event boilerplate left out of a CDR payload (same on every event of the node).
_BOILERPLATE = ("FreeSWITCH-", "Event-Date-", "Event-Calling-", "Core-UUID")
MAX_CDR_PAYLOAD = 60_000


def _epoch(microseconds: str) -> Optional[int]:
    """FreeSWITCH times are µs since the epoch; ``0`` means 'not yet'."""
    try:
        value = int(microseconds) // 1_000_000
    except (TypeError, ValueError):
        return None
    return value or None


def _profile(channel_name: str) -> Optional[str]:
    parts = (channel_name or "").split("/", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "sofia" else None


def row_from_event(event: Event, node: str) -> dict:
    row = {
        "uuid": event.get("Unique-ID"), "node": node,
        "direction": event.get("Call-Direction"),
        "caller_id_number": event.get("Caller-Caller-ID-Number"),
        "caller_id_name": event.get("Caller-Caller-ID-Name"),
        "destination_number": event.get("Caller-Destination-Number"),
        "state": event.get("Channel-State"), "callstate": event.get("Channel-Call-State"),
        "profile_name": _profile(event.get("Channel-Name")),
        "call_uuid": event.get("Channel-Call-UUID") or None,
        "created_epoch": _epoch(event.get("Caller-Channel-Created-Time")),
    }
    answered = _epoch(event.get("Caller-Channel-Answered-Time"))
    if answered:
        row["answered_epoch"] = answered
    return row


def rows_from_show(body: str, node: str) -> list:
    rows = []
    for item in parse_show_json(body, SHOW_COMMAND):
        if not item.get("uuid"):
            continue
        rows.append({
            "uuid": item["uuid"], "node": node, "direction": item.get("direction"),
            "caller_id_number": item.get("cid_num"), "caller_id_name": item.get("cid_name"),
            "destination_number": item.get("dest"), "state": item.get("state"),
            "callstate": item.get("callstate"), "profile_name": _profile(item.get("name")),
            "call_uuid": item.get("call_uuid") or None,
            "created_epoch": int(item["created_epoch"])
            if str(item.get("created_epoch", "")).isdigit() else None,
        })
    return rows


def cdr_payload(event: Event) -> str:
    """The hangup's headers as JSON, without per-node boilerplate; ``variable_*`` headers go
    first if the payload would not fit the queue column."""
    kept = {name: value for name, value in event.headers.items()
            if not name.startswith(_BOILERPLATE)}
    payload = json.dumps(kept, ensure_ascii=False, sort_keys=True)
    if len(payload.encode("utf-8")) > MAX_CDR_PAYLOAD:
        kept = {name: value for name, value in kept.items() if not name.startswith("variable_")}
        kept["fscluster_truncated"] = "variables dropped: payload over the column size"
        payload = json.dumps(kept, ensure_ascii=False, sort_keys=True)
    return payload


class ChannelTracker:
    """Applies channel events and snapshots to the mirror; counts live channels."""

    def __init__(self, mirror: Mirror, node: str, clock: Callable[[], float]):
        self.mirror = mirror
        self.node = node
        self.clock = clock
        self.own: set = set()
        self.hangups = 0

    def handlers(self) -> Dict[str, Callable]:
        return {CREATE: self.on_channel, ANSWER: self.on_channel, BRIDGE: self.on_channel,
                HANGUP_COMPLETE: self.on_hangup, SNAPSHOT: self.on_snapshot}

    @property
    def count(self) -> int:
        return len(self.own)

    def on_channel(self, event: Event) -> None:
        row = row_from_event(event, self.node)
        if row["uuid"]:
            self.own.add(row["uuid"])
            self.mirror.upsert(cluster_channels, row)

    def on_hangup(self, event: Event) -> None:
        uuid = event.get("Unique-ID")
        if not uuid:
            return
        self.own.discard(uuid)
        self.hangups += 1
        self.mirror.delete(cluster_channels, uuid)
        self.mirror.insert_new(cluster_cdr_queue, {
            "uuid": uuid, "node": self.node, "enqueued_at": self.clock(),
            "payload": cdr_payload(event)})

    def on_snapshot(self, body: str) -> None:
        rows = rows_from_show(body, self.node)
        self.own = {row["uuid"] for row in rows}
        self.mirror.replace(cluster_channels, rows)
