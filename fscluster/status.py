"""``fscluster status``: the cluster as the DB sees it — one place, readable in a terminal.

Every node of the config with its role and VIPs (``cluster_nodes``, written by each agent),
the VIP leases (``cluster_vips``), registrations and channels per node (FreeSWITCH's own
``sip_registrations`` and ``channels`` tables, counted by ``hostname``) and the last
takeover/release with its per-step timings (``cluster_events``).
"""
import json
import time
from typing import Optional

from sqlalchemy import inspect, select

from esl_apps.rehome import channel_counts, registration_counts
from fscluster import table
from fscluster.config import Config
from fscluster.db import Database
from fscluster.schema import cluster_events, cluster_nodes, cluster_vips


def _fs_counts(conn, counter, table_name: str) -> dict:
    """Counts from a FreeSWITCH table, or {} before FreeSWITCH has created it."""
    return counter(conn) if inspect(conn).has_table(table_name) else {}


def cluster_status(db: Database, config: Config, now: Optional[float] = None) -> dict:
    now = time.time() if now is None else now

    def read(conn):
        nodes = {row.node_name: row._asdict() for row in conn.execute(select(cluster_nodes))}
        vips = [row._asdict() for row in conn.execute(select(cluster_vips)
                                                      .order_by(cluster_vips.c.vip_name))]
        last = conn.execute(select(cluster_events).where(
            cluster_events.c.kind.in_(("takeover", "release")))
            .order_by(cluster_events.c.event_id.desc()).limit(1)).first()
        return nodes, vips, last, _fs_counts(conn, registration_counts, "sip_registrations"), \
            _fs_counts(conn, channel_counts, "channels")
    nodes, vips, last, regs, chans = db.retrying(read, deadline=5.0)
    rows = []
    for name in sorted(set(config.nodes) | set(nodes)):
        node = nodes.get(name, {})
        seen = node.get("last_seen")
        rows.append({"node": name, "role": node.get("role") or "unknown",
                     "vips": node.get("vips") or "", "registrations": regs.get(name, 0),
                     "channels": chans.get(name, 0),
                     "seen_ago": None if seen is None else round(now - seen, 1)})
    for vip in vips:
        vip["lease_left"] = None if vip.get("lease_expires") is None else \
            round(vip["lease_expires"] - now, 1)
    last_event = None
    if last is not None:
        last_event = {**last._asdict(), "detail": json.loads(last.detail or "{}")}
    return {"nodes": rows, "vips": vips, "last": last_event}


def render_status(status: dict) -> str:
    out = [table.render(("NODE", "ROLE", "VIPS", "REGISTRATIONS", "CHANNELS", "SEEN (s ago)"),
                        [(n["node"], n["role"], n["vips"], n["registrations"], n["channels"],
                          n["seen_ago"]) for n in status["nodes"]]), ""]
    out.append(table.render(("VIP", "ADDRESS", "OWNER", "PREVIOUS", "LEASE LEFT (s)", "EPOCH"),
                            [(v["vip_name"], v["address"], v["owner_node"], v["previous_owner"],
                              v["lease_left"], v["epoch"]) for v in status["vips"]]))
    last = status["last"]
    if last:
        steps = ", ".join(f"{k} {v} ms" for k, v in last["detail"].get("steps_ms", {}).items())
        origin = f" from {last['from_node']}" if last.get("from_node") else ""
        out += ["", f"last failover: {last['kind']} of {last['vip']} by {last['node']}{origin} "
                    f"at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(last['created_at']))} "
                    f"UTC in {last['duration_ms']} ms ({steps})"]
    else:
        out += ["", "last failover: none recorded"]
    return "\n".join(out)
