"""Passive duty: turn the hangups the active nodes queued into ``cluster_cdrs`` rows.

Runs on whichever node holds no VIP (DESIGN.md §2.6). Exactly-once without a coordinator:
1. *claim* a batch — ``UPDATE … SET claimed_by = me WHERE uuid IN (…) AND (unclaimed OR the
   claim is older than claim_timeout)``; the row lock makes two processors' claims disjoint,
   and an expired claim (its node died mid-batch) is taken over;
2. *process* each claimed row in one transaction: insert the CDR if its uuid is new (the
   primary key makes a replay a no-op) and stamp ``processed_at``.
A node that becomes active stops claiming; what it had claimed is finished or expires.
"""
import json
import logging
import time
from typing import Callable

from sqlalchemy import and_, or_, select, update

from esl_apps.periodic import Periodic
from esl_apps.protocol import int_or_none
from fscluster.db import Database
from fscluster.errors import DatabaseUnavailable
from fscluster.schema import cluster_cdr_queue, cluster_cdrs

log = logging.getLogger("fscluster.cdr")
QUEUE = cluster_cdr_queue.c


def cdr_row(uuid: str, node: str, payload: str, processed_by: str) -> dict:
    """A ``cluster_cdrs`` row from a queued ``CHANNEL_HANGUP_COMPLETE`` (its headers as JSON).

    FreeSWITCH fills ``variable_start_epoch``/``answer_epoch``/``end_epoch``/``duration``/
    ``billsec`` on hangup (switch_channel.c ``switch_channel_set_timestamps``)."""
    try:
        headers = json.loads(payload or "{}")
    except ValueError:
        headers = {}
    if not isinstance(headers, dict):
        headers = {}
    get = headers.get
    return {
        "uuid": uuid, "node": node, "processed_by": processed_by,
        "direction": get("Call-Direction") or get("variable_direction"),
        "caller_id_number": get("Caller-Caller-ID-Number"),
        "destination_number": get("Caller-Destination-Number"),
        "context": get("Caller-Context"),
        "start_epoch": int_or_none(get("variable_start_epoch")),
        "answer_epoch": int_or_none(get("variable_answer_epoch")),
        "end_epoch": int_or_none(get("variable_end_epoch")),
        "duration": int_or_none(get("variable_duration")),
        "billsec": int_or_none(get("variable_billsec")),
        "hangup_cause": get("Hangup-Cause") or get("variable_hangup_cause"),
    }


class CdrProcessor(Periodic):
    """Claims and processes queued hangups while ``is_passive()`` says this node is passive."""

    def __init__(self, db: Database, node: str, is_passive: Callable[[], bool],
                 interval: float = 1.0, batch: int = 200, claim_timeout: float = 60.0,
                 clock: Callable[[], float] = time.time):
        self.db, self.node, self.is_passive = db, node, is_passive
        self.interval, self.batch, self.claim_timeout = interval, batch, claim_timeout
        self.clock = clock
        self.processed = 0

    def claim(self) -> int:
        now = self.clock()
        claimable = and_(QUEUE.processed_at.is_(None),
                         or_(QUEUE.claimed_by.is_(None), QUEUE.claimed_by == self.node,
                             QUEUE.claimed_at < now - self.claim_timeout))

        def work(conn):
            uuids = [row[0] for row in conn.execute(
                select(QUEUE.uuid).where(claimable).order_by(QUEUE.enqueued_at)
                .limit(self.batch))]
            if not uuids:
                return 0
            return conn.execute(update(cluster_cdr_queue).where(
                QUEUE.uuid.in_(uuids), claimable).values(
                claimed_by=self.node, claimed_at=now)).rowcount
        return self.db.retrying(work)

    def process_claimed(self) -> int:
        def work(conn):
            rows = conn.execute(select(QUEUE.uuid, QUEUE.node, QUEUE.payload).where(
                QUEUE.claimed_by == self.node, QUEUE.processed_at.is_(None))
                .limit(self.batch)).all()
            if not rows:
                return 0
            uuids = [r.uuid for r in rows]
            have = {r[0] for r in conn.execute(select(cluster_cdrs.c.uuid).where(
                cluster_cdrs.c.uuid.in_(uuids)))}
            fresh = [cdr_row(r.uuid, r.node, r.payload, self.node) for r in rows
                     if r.uuid not in have]
            if fresh:
                conn.execute(cluster_cdrs.insert(), fresh)
            conn.execute(update(cluster_cdr_queue).where(
                QUEUE.uuid.in_(uuids), QUEUE.claimed_by == self.node)
                .values(processed_at=self.clock()))
            return len(fresh)
        return self.db.retrying(work)

    def run_once(self) -> int:
        """One claim + process round if passive; returns the CDRs written."""
        if not self.is_passive():
            return 0
        written = 0
        while self.claim():
            done = self.process_claimed()
            written += done
            if not self.is_passive():
                break
        self.processed += written
        return written

    def tick(self) -> None:
        try:
            written = self.run_once()
        except DatabaseUnavailable as exc:
            log.warning("cdr processing paused: database unavailable", extra={"error": str(exc)})
            return
        if written:
            log.info("cdrs processed", extra={"count": written})
