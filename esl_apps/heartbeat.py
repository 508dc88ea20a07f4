"""This node's ``cluster_nodes`` row, written every second: the cluster's view of its health.

``last_seen`` says the agent is alive; ``freeswitch_up`` whether its event socket is; the
counts come from the trackers (live, this node only) and from FreeSWITCH's ``HEARTBEAT``
event (``Session-Count``, ``Uptime-msec``, every 20 s by default). The row goes through the
mirror like every other write, so a DB blip delays it without blocking anything. ``role``
and ``vips`` belong to the failover component and are never written here.
"""
import time
from typing import Callable, Dict

from esl_apps.mirror import Mirror
from esl_apps.periodic import Periodic
from esl_apps.protocol import Event, int_or_none
from fscluster.schema import cluster_nodes

HEARTBEAT = "HEARTBEAT"


class Heartbeat(Periodic):
    """Collects the node's figures and upserts its row every ``interval`` seconds."""

    def __init__(self, mirror: Mirror, node: str, figures: Callable[[], Dict[str, object]],
                 interval: float = 1.0, clock: Callable[[], float] = time.time):
        self.mirror = mirror
        self.node = node
        self.figures = figures
        self.interval = interval
        self.clock = clock
        self.sessions = None
        self.uptime_ms = None

    def handlers(self):
        return {HEARTBEAT: self.on_heartbeat}

    def on_heartbeat(self, event: Event) -> None:
        self.sessions = int_or_none(event.get("Session-Count"))
        self.uptime_ms = int_or_none(event.get("Uptime-msec"))

    def row(self) -> dict:
        row = {"node_name": self.node, "last_seen": self.clock(),
               "sessions": self.sessions, "uptime_ms": self.uptime_ms}
        row.update(self.figures())
        return row

    def tick(self) -> None:
        self.mirror.upsert(cluster_nodes, self.row())
