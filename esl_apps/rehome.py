"""The SQL of a takeover: make one VIP profile's registrations and calls this node's own.

FreeSWITCH scopes its housekeeping by ``hostname`` (= switchname): expiry sweeps, NAT pings
and ``flush_inbound_reg`` touch only rows whose ``hostname`` is its own, ``show
registrations`` lists only its own rows of the core ``registrations`` table, and at start it
deletes only its own ``channels``. Contact lookup (``sofia_contact``) ignores hostname. So
after a node dies its rows keep routing but nobody maintains them until they are re-homed,
and its channel rows stay forever as ghosts (DESIGN.md §3, verified on FreeSWITCH 1.10.12).

Every function here is idempotent and scoped to one profile (``profile_name`` in
``sip_registrations``, the ``sofia/<profile>/`` prefix of ``registrations.url`` and
``channels.name``), so the registrations and calls of any other VIP are never touched.
"""
import re
from typing import Dict

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from fscluster.fs_tables import calls, channels, registrations, sip_registrations
from fscluster.schema import cluster_channels, cluster_registrations

#: Rows inserted per statement when re-creating registrations from the mirror.
BATCH = 500
_CONTACT_URI = re.compile(r"<?((?:sips?):[^>;\s]+)")


def _prefix(profile: str) -> str:
    return f"sofia/{profile}/"


def rehome_registrations(conn: Connection, profile: str, node: str, now: float) -> Dict[str, int]:
    """Re-home the profile's rows to ``node`` and re-create those a graceful stop deleted."""
    sip = conn.execute(update(sip_registrations).where(
        sip_registrations.c.profile_name == profile, or_(
            sip_registrations.c.hostname != node, sip_registrations.c.orig_hostname != node,
            sip_registrations.c.hostname.is_(None)))
        .values(hostname=node, orig_hostname=node)).rowcount
    core = conn.execute(update(registrations).where(
        registrations.c.url.startswith(_prefix(profile), autoescape=True),
        or_(registrations.c.hostname != node, registrations.c.hostname.is_(None)))
        .values(hostname=node)).rowcount
    recreated = _recreate_from_mirror(conn, profile, node, now)
    return {"sip_registrations": sip, "registrations": core, "recreated": recreated}


def rehome_mirror(conn: Connection, profile: str, node: str, now: float) -> int:
    """The agent's mirror follows: the profile's registrations now belong to ``node``.
    Bookkeeping only (routing reads FreeSWITCH's tables), so it runs after the service is up."""
    return conn.execute(update(cluster_registrations).where(
        cluster_registrations.c.profile_name == profile, cluster_registrations.c.node != node)
        .values(node=node, updated_at=now)).rowcount


def _recreate_from_mirror(conn: Connection, profile: str, node: str, now: float) -> int:
    """Insert the mirror's unexpired rows of ``profile`` missing from ``sip_registrations``."""
    present = select(sip_registrations.c.call_id).where(
        sip_registrations.c.profile_name == profile)
    rows = conn.execute(select(cluster_registrations).where(
        cluster_registrations.c.profile_name == profile,
        cluster_registrations.c.expires > int(now),
        cluster_registrations.c.call_id.not_in(present))).fetchall()
    if not rows:
        return 0
    sip_rows = [sip_registration_row(row, profile, node) for row in rows]
    core_rows = [core_registration_row(row, profile, node) for row in rows]
    tokens = [row.call_id for row in rows]
    for start in range(0, len(tokens), BATCH):
        # The core table has no key either: drop stale copies before inserting.
        conn.execute(delete(registrations).where(
            registrations.c.token.in_(tokens[start:start + BATCH])))
        conn.execute(insert(sip_registrations), sip_rows[start:start + BATCH])
        conn.execute(insert(registrations), core_rows[start:start + BATCH])
    return len(rows)


def sip_registration_row(mirror, profile: str, node: str) -> dict:
    """A ``sip_registrations`` row as sofia_reg.c writes it, from a mirror row."""
    user, host = mirror.sip_user, mirror.sip_host
    return dict(
        call_id=mirror.call_id, sip_user=user, sip_host=host, presence_hosts=host,
        contact=mirror.contact, status=mirror.status or "Registered(UDP)",
        ping_status="Reachable", ping_count=0, ping_time=0, force_ping=0, rpid="unknown",
        expires=mirror.expires, ping_expires=0, user_agent=mirror.user_agent,
        server_user=user, server_host=host, profile_name=profile, hostname=node,
        network_ip=mirror.network_ip, network_port=mirror.network_port,
        sip_username=mirror.sip_username or user, sip_realm=mirror.sip_realm or host,
        mwi_user=user, mwi_host=host, orig_server_host=host, orig_hostname=node, sub_host=host)


def core_registration_row(mirror, profile: str, node: str) -> dict:
    """A core ``registrations`` row (``url`` = ``sofia/<profile>/<contact URI>``)."""
    match = _CONTACT_URI.search(mirror.contact or "")
    uri = match.group(1) if match else f"sip:{mirror.sip_user}@{mirror.network_ip}"
    proto = "tcp" if "transport=tcp" in (mirror.contact or "").lower() else "udp"
    return dict(reg_user=mirror.sip_user, realm=mirror.sip_host, token=mirror.call_id,
                url=f"{_prefix(profile)}{uri}", expires=mirror.expires,
                network_ip=mirror.network_ip, network_port=mirror.network_port,
                network_proto=proto, hostname=node, metadata="")


def remove_ghost_calls(conn: Connection, profile: str, node: str) -> Dict[str, int]:
    """Delete other nodes' ``channels``/``calls`` rows of ``profile`` and the mirror's copy.

    Run after ``sofia profile <profile> recover``: the recovered calls now have rows of this
    node; what other hostnames left on this profile are the dead node's ghosts."""
    ghost = and_(channels.c.name.startswith(_prefix(profile), autoescape=True),
                 or_(channels.c.hostname != node, channels.c.hostname.is_(None)))
    ghost_uuids = select(channels.c.uuid).where(ghost)
    calls_deleted = conn.execute(delete(calls).where(
        or_(calls.c.hostname != node, calls.c.hostname.is_(None)),
        or_(calls.c.caller_uuid.in_(ghost_uuids), calls.c.callee_uuid.in_(ghost_uuids)))
    ).rowcount
    channels_deleted = conn.execute(delete(channels).where(ghost)).rowcount
    mirror_deleted = conn.execute(delete(cluster_channels).where(
        cluster_channels.c.profile_name == profile, cluster_channels.c.node != node)).rowcount
    return {"channels": channels_deleted, "calls": calls_deleted, "mirror_channels": mirror_deleted}


def registration_counts(conn: Connection) -> Dict[str, int]:
    """``sip_registrations`` rows per hostname (for ``fscluster status``)."""
    return dict(conn.execute(select(sip_registrations.c.hostname, func.count())
                             .group_by(sip_registrations.c.hostname)).fetchall())


def channel_counts(conn: Connection) -> Dict[str, int]:
    """Core ``channels`` rows per hostname (for ``fscluster status``)."""
    return dict(conn.execute(select(channels.c.hostname, func.count())
                             .group_by(channels.c.hostname)).fetchall())
