"""Who serves each VIP, as a lease row in ``cluster_vips``: the DB side of "no split brain".

keepalived decides who *holds* the address; this lease decides who may *serve* it. A node
claims a VIP before it starts the VIP's profile, renews the lease every second while it
serves, and gives it up when it releases. A claim succeeds only when the row is free, ours,
or its owner's lease has lapsed; a claim against a lease that keeps being renewed is refused
(another node is alive and serving — the claimant releases instead). Every write goes to the
Galera write path: a node cut off from the primary component cannot write, so cannot claim.

A lease must lapse before VRRP declares its holder dead (``lease_seconds`` < 3 × advert_int),
so a crashed owner never delays the takeover; :func:`claim` still waits up to one lease for a
lapsing owner rather than failing at once.
"""
import dataclasses
import logging
import time
from typing import Callable, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from fscluster.db import Database
from fscluster.errors import FsclusterError
from fscluster.schema import cluster_vips

log = logging.getLogger("fscluster.vip_claims")

#: How long one claim attempt may spend retrying DB errors (a partitioned node gives up fast).
CLAIM_DB_DEADLINE = 2.0


class ClaimRefused(FsclusterError):
    """Another node holds a live lease on the VIP."""


@dataclasses.dataclass(frozen=True)
class Claim:
    vip: str
    former_owner: Optional[str]   # the node that served the VIP before us (None: nobody)
    renewed: bool                 # we already owned it (a re-run after a crash half-way)
    epoch: int


def _try_claim(conn, vip_name: str, address: str, node: str, lease: float, now: float):
    """One attempt in one transaction: a :class:`Claim`, or the live owner's lease expiry."""
    row = conn.execute(select(cluster_vips).where(cluster_vips.c.vip_name == vip_name)).first()
    expires = now + lease
    if row is None:
        conn.execute(insert(cluster_vips).values(
            vip_name=vip_name, address=address, owner_node=node, previous_owner=None,
            lease_expires=expires, claimed_at=now, epoch=1))
        return Claim(vip_name, None, False, 1)
    if row.owner_node == node:
        conn.execute(update(cluster_vips).where(cluster_vips.c.vip_name == vip_name)
                     .values(lease_expires=expires, address=address))
        return Claim(vip_name, row.previous_owner, True, row.epoch)
    if row.owner_node and (row.lease_expires or 0) > now:
        return (row.owner_node, row.lease_expires)
    former = row.owner_node or row.previous_owner
    former = None if former == node else former
    changed = conn.execute(
        update(cluster_vips)
        .where(cluster_vips.c.vip_name == vip_name, cluster_vips.c.epoch == row.epoch)
        .values(owner_node=node, previous_owner=former, lease_expires=expires,
                claimed_at=now, epoch=row.epoch + 1, address=address)).rowcount
    if changed != 1:
        raise ClaimRefused(f"{vip_name}: claimed concurrently by another node")
    return Claim(vip_name, former, False, row.epoch + 1)


def claim(db: Database, vip_name: str, address: str, node: str, lease: float,
          clock: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep) -> Claim:
    """Claim ``vip_name`` for ``node``; waits at most one lease for a lapsing owner.

    Raises :class:`ClaimRefused` (a live owner) or ``DatabaseUnavailable`` (cannot write)."""
    give_up = clock() + lease + 0.5
    while True:
        try:
            result = db.retrying(lambda c: _try_claim(c, vip_name, address, node, lease, clock()),
                                 deadline=CLAIM_DB_DEADLINE)
        except IntegrityError:
            continue  # two first-ever claims raced on the insert; the row exists now
        if isinstance(result, Claim):
            return result
        owner, expires = result
        now = clock()
        if now >= give_up:
            raise ClaimRefused(f"{vip_name}: {owner} still renews its lease (alive and serving)")
        sleep(max(0.05, min(expires - now + 0.01, give_up - now, 0.5)))


def renew(db: Database, vip_name: str, node: str, lease: float,
          clock: Callable[[], float] = time.time) -> bool:
    """Extend our lease; False when the row is no longer ours (the claim was lost)."""
    def work(conn):
        return conn.execute(update(cluster_vips).where(
            cluster_vips.c.vip_name == vip_name, cluster_vips.c.owner_node == node)
            .values(lease_expires=clock() + lease)).rowcount
    return db.retrying(work, deadline=CLAIM_DB_DEADLINE) == 1


def release(db: Database, vip_name: str, node: str) -> bool:
    """Give the VIP up at once (no lease to wait out); True when we owned it."""
    def work(conn):
        return conn.execute(update(cluster_vips).where(
            cluster_vips.c.vip_name == vip_name, cluster_vips.c.owner_node == node)
            .values(owner_node=None, previous_owner=node, lease_expires=None)).rowcount
    return db.retrying(work, deadline=CLAIM_DB_DEADLINE) == 1


def owner(db: Database, vip_name: str) -> Optional[str]:
    """The node owning the VIP's claim now (live or lapsed lease), or None."""
    def work(conn):
        return conn.execute(select(cluster_vips.c.owner_node).where(
            cluster_vips.c.vip_name == vip_name)).scalar()
    return db.retrying(work, write=False, deadline=CLAIM_DB_DEADLINE)
