"""Answer one lookup: memcached first, then the DB, with the failure policy of DESIGN.md §2.

- Keys embed the cluster generation (:class:`fscluster.cache.GenerationClock`, refreshed at
  most every ``generation_poll`` s), so a DB change — or ``db.bump_generation()`` after a VIP
  changes owner — is served by every node within two polls, with no flush. Answers that
  depend on the node (dialplan hostname filter, sofia.conf) carry the hostname in the key.
- Misses are cached too ("not found", ``negative_ttl`` s): a scanner's REGISTER flood of
  unknown users costs one query per user, not one per request. Identifiers no row can
  hold (control characters, longer than a column) are answered "not found" without SQL.
- A small per-process LRU (:mod:`xml_curl.local_cache`, same keys) sits in front of
  memcached: the warm path usually costs no network round trip at all.
- memcached down → the cache is a miss and a no-op (fail-open): answers come from the DB.
- Until the generation has been read once (start-up, or a DB down since start) no cache is
  read or written: a key under an unknown generation could hit answers of any age.
- DB down → the generation stays at its last value, so a warm cache keeps answering; on a
  miss the answer is HTTP 503 — never "not found" for a user who may exist — so FreeSWITCH
  falls back to its next binding or static XML. Nothing is cached then, and it is logged.
- A DB that stops answering (a black-holed node: the connection stays up, nothing comes
  back) is abandoned after ``answer_within`` — what FreeSWITCH's binding timeout is derived
  from — not after PyMySQL's read timeout: the connection is dropped, the answer is 503.
"""
import dataclasses
import logging
import re
import time
from typing import AbstractSet, Mapping, Optional, Tuple

import gevent.lock
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fscluster.cache import Cache, GenerationClock, cache_key
from fscluster.db import Database, within
from fscluster.errors import DatabaseUnavailable
from xml_curl import dialplan, directory, queries, request as rq, sofia
from xml_curl.local_cache import LocalCache
from xml_curl.xmldoc import NOT_FOUND

log = logging.getLogger("fscluster.xml_curl")

#: The widest identifier column a lookup compares against (String(255)).
MAX_IDENTIFIER = 255
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f]")

OK, UNAVAILABLE = 200, 503
#: Seconds between two "db unavailable" warnings (the ones in between are counted).
UNAVAILABLE_LOG_INTERVAL = 5.0


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    source: str  # "local", "memcached", "db", "none" (no lookup needed), "unavailable"


def _storable(value: str) -> bool:
    return 0 < len(value) <= MAX_IDENTIFIER and not _UNSTORABLE.search(value)


class LookupService:
    """One node's lookups; receives its DB, cache and generation clock (never builds them)."""

    def __init__(self, db: Database, cache: Cache, clock: GenerationClock, *,
                 vip_names: AbstractSet[str], cache_ttl: int, negative_ttl: int,
                 db_deadline: float, answer_within: Optional[float] = None,
                 local: Optional[LocalCache] = None, db_concurrency: int = 10,
                 vip_settings: Mapping[str, str] = sofia.FORCED_VIP_PROFILE):
        self.db, self.cache, self.clock = db, cache, clock
        self.local = local if local is not None else LocalCache(0)
        self.vip_names = frozenset(vip_names)
        self.vip_settings = dict(vip_settings)
        self.cache_ttl, self.negative_ttl = cache_ttl, negative_ttl
        self.db_deadline = db_deadline
        #: The hard bound on an answer's DB work — generation refresh, slot wait, retries —
        #: ≥ db_deadline: a connection attempt under way when the deadline passes may finish.
        self.answer_within = max(db_deadline, answer_within or db_deadline)
        # No more lookups on the DB at once than the pool keeps connections: beyond that the
        # pool would open (and close) an overflow connection per request — a TCP connect and
        # a MariaDB handshake each — so the queue waits here instead, within the deadline.
        # gevent's semaphore, not threading's: it serves waiters first come, first served
        # (threading's lets a newcomer take the slot a woken waiter was promised, which then
        # queues again at the back: cold-benchmark p99 150–470 ms, 60–100 ms with gevent's).
        self._db_slots = gevent.lock.BoundedSemaphore(db_concurrency)
        self._monotonic = time.monotonic
        self._unavailable_logged_at, self._unavailable_count = float("-inf"), 0
        #: kind -> (fetch: rows from an open connection, render: rows -> bytes). Rendering
        #: happens after the DB slot and its pooled connection are given back.
        self._lookups = {
            rq.USER: (_fetch_user, _found(directory.render_user)),
            rq.MESSAGE_COUNT: (_fetch_user, _found(directory.render_message_count)),
            rq.REVERSE_AUTH: (_fetch_user, _found(directory.render_reverse_auth)),
            rq.GROUP_CALL: (lambda conn, request: queries.call_group_members(
                conn, request.domain), _render_group_call),
            rq.GATEWAYS: (lambda conn, request: queries.domain_names(conn),
                          _found(directory.render_domains)),
            rq.DOMAIN: (lambda conn, request: queries.domain_names(conn, request.domain),
                        _found(directory.render_domains)),
            rq.DIALPLAN: (lambda conn, request: queries.dialplan_rows(
                conn, request.context, request.hostname), _render_dialplan),
            rq.SOFIA: (lambda conn, request: queries.sofia_data(conn, request.hostname),
                       self._render_sofia)}

    def answer(self, request: rq.XmlRequest) -> Answer:
        kind = request.kind
        parts = self._key_parts(kind, request)
        if parts is None:
            return Answer(OK, NOT_FOUND, "none")
        give_up = self._monotonic() + self.answer_within  # the generation refresh counts too
        generation = self.clock.current()
        if generation <= 0:  # not read from the DB yet: any key would be a guess
            return self._from_db(kind, request, None, give_up)
        key = cache_key(generation, *parts)
        cached = self.local.get(key)
        if cached is not None:
            return Answer(OK, cached, "local")
        cached = self.cache.get(key)
        if cached is not None:
            self.local.set(key, cached, self._ttl(cached))
            return Answer(OK, cached, "memcached")
        return self._from_db(kind, request, key, give_up)

    def _left(self, give_up: float) -> float:
        return max(0.0, give_up - self._monotonic())

    def _from_db(self, kind: str, request: rq.XmlRequest, key: Optional[str],
                 give_up: float) -> Answer:
        """Look up in the DB by ``give_up`` (monotonic); cache the answer under ``key``
        (None: do not cache). Waiting for a slot and retrying errors stop at ``db_deadline``;
        a DB that does not answer at all is abandoned at ``give_up``."""
        fetch, render = self._lookups[kind]
        if not self._db_slots.acquire(timeout=min(self.db_deadline, self._left(give_up))):
            self._log_unavailable(kind, PoolTimeout("every DB slot busy for the whole deadline"))
            return Answer(UNAVAILABLE, b"database busy\n", "unavailable")
        try:
            left = self._left(give_up)
            rows = within(left, lambda: self.db.retrying(
                lambda conn: fetch(conn, request), write=False,
                deadline=min(self.db_deadline, left)))
        except (DatabaseUnavailable, PoolTimeout) as exc:  # down, or every connection busy
            self._log_unavailable(kind, exc)
            return Answer(UNAVAILABLE, b"database unavailable\n", "unavailable")
        finally:
            self._db_slots.release()
        body = render(request, rows)
        if key is not None:
            ttl = self._ttl(body)
            self.cache.set(key, body, ttl)
            self.local.set(key, body, ttl)
        return Answer(OK, body, "db")

    def _log_unavailable(self, kind: str, exc: Exception) -> None:
        """One warning per ``UNAVAILABLE_LOG_INTERVAL`` s, counting the 503s in between: an
        outage under load must not turn into a log flood."""
        self._unavailable_count += 1
        now = self._monotonic()
        if now - self._unavailable_logged_at >= UNAVAILABLE_LOG_INTERVAL:
            log.warning("db unavailable and answer not cached: answering 503",
                        extra={"kind": kind, "error": str(exc),
                               "answered_503": self._unavailable_count})
            self._unavailable_logged_at, self._unavailable_count = now, 0

    def _ttl(self, body: bytes) -> int:
        return self.negative_ttl if body == NOT_FOUND else self.cache_ttl

    # ------------------------------------------------------------------ keys
    @staticmethod
    def _key_parts(kind: str, request: rq.XmlRequest) -> Optional[Tuple[str, ...]]:
        """The cache key parts, or None when the request cannot match any row."""
        if kind in (rq.USER, rq.MESSAGE_COUNT, rq.REVERSE_AUTH):
            values = (request.domain, request.user)
        elif kind in (rq.GROUP_CALL, rq.DOMAIN):
            values = (request.domain,)
        elif kind == rq.DIALPLAN:
            values = (request.hostname, request.context)
        elif kind == rq.SOFIA:
            values = (request.hostname,)
        elif kind == rq.GATEWAYS:
            values = ()
        else:
            return None
        if not all(_storable(v) for v in values):
            return None
        return (kind,) + values

    # ------------------------------------------------------------------ renderers
    def _render_sofia(self, request, rows):
        global_settings, profiles, held = rows
        chosen = sofia.select_profiles(profiles, self.vip_names, frozenset(held))
        return sofia.render_sofia(global_settings, chosen, self.vip_names, self.vip_settings)


def _fetch_user(conn, request):
    return queries.find_user(conn, request.domain, request.user)


def _found(render):
    """A renderer for a lookup whose miss is None or empty: FreeSWITCH's "not found"."""
    return lambda request, rows: render(rows) if rows else NOT_FOUND


def _render_group_call(request, members):
    if members is None:
        return NOT_FOUND
    return directory.render_group_call(request.domain, directory.call_groups(members))


def _render_dialplan(request, rows):
    exists, plan = rows
    return dialplan.render_dialplan(request.context, plan) if exists else NOT_FOUND
