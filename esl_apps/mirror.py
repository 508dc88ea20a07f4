"""The batched, idempotent DB writer behind every mirror table the agent keeps.

Handlers record the *latest state per key* (upsert / insert-if-new / delete) in memory; a
flusher greenlet writes everything pending in one transaction at most ``max_delay`` after
the first change (≤ 200 ms by default), so a storm of events costs a few multi-row
statements, and a key that changed ten times in a batch is written once. Every statement is
idempotent (upserts keyed by primary key), so :meth:`fscluster.db.Database.retrying` can
replay a batch after a Galera failover. A DB that stays down delays the writes, never loses
them: the batch goes back under newer changes and is retried; the buffer is bounded by
``max_pending`` keys, and a change that does not fit is dropped with a log line and
``on_lost`` is called so the owner resyncs once the DB is back.

Everything is scoped to this node: deletes carry ``node = <this node>``, and :meth:`replace`
(the resync) removes only this node's rows, so agents sharing one DB never touch each
other's rows. Upserts are the only dialect-specific SQL, in :func:`upsert_statement`; on
MariaDB their rows skip SQLAlchemy's per-row parameter handling and PyMySQL's per-value
escaping (:func:`multirow_statement`), which cost a storm more CPU than parsing the events.
"""
import functools
import logging
import time
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import gevent
import gevent.event
from sqlalchemy import String, Table, func, or_
from sqlalchemy.dialects import mysql, postgresql, sqlite

from esl_apps.multirow import MultiRowStatement
from fscluster.db import Database
from fscluster.errors import DatabaseUnavailable

log = logging.getLogger("fscluster.mirror")

UPSERT, INSERT_NEW, DELETE = "upsert", "insert_new", "delete"
CHUNK = 1000
RETRY_DELAY = 1.0
#: Run a statement without a parameter collection, so PyMySQL does not %-format its text.
NO_PARAMETERS = {"no_parameters": True}
_INSERTS = {"mysql": mysql.insert, "mariadb": mysql.insert, "sqlite": sqlite.insert,
            "postgresql": postgresql.insert}


def upsert_statement(dialect: str, table: Table, columns: Sequence[str],
                     fill_only: Sequence[str] = (), do_nothing: bool = False):
    """INSERT … ON CONFLICT/DUPLICATE KEY UPDATE for SQLite, MariaDB/MySQL and PostgreSQL.

    ``fill_only`` columns keep a non-NULL stored value (``COALESCE(old, new)``);
    ``do_nothing`` keeps the stored row as it is (insert-if-new)."""
    if dialect not in _INSERTS:
        raise ValueError(f"no upsert for SQL dialect {dialect!r}")
    keys = [column.name for column in table.primary_key]
    statement = _INSERTS[dialect](table)
    mysql_like = dialect in ("mysql", "mariadb")
    new = statement.inserted if mysql_like else statement.excluded
    updates = {} if do_nothing else {
        name: func.coalesce(table.c[name], new[name]) if name in fill_only else new[name]
        for name in columns if name not in keys}
    if mysql_like:
        # MySQL has no DO NOTHING; assigning the key to itself is the portable no-op.
        return statement.on_duplicate_key_update(updates or {keys[0]: table.c[keys[0]]})
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def multirow_statement(conn, table: Table, statement,
                       columns: Sequence[str]) -> Optional[MultiRowStatement]:
    """The statement as a :class:`~esl_apps.multirow.MultiRowStatement`, or None.

    SQLAlchemy's per-row parameter handling and PyMySQL's per-value escaping cost a storm
    more client CPU than parsing its events, and that CPU is taken from parsing. On
    MySQL/MariaDB rows of plain values are formatted by :mod:`esl_apps.multirow` instead.
    Other dialects (SQLite, PostgreSQL), a column whose type converts values on the way in
    (a ``bind_processor``, e.g. ``Boolean``), or a bound value that is not a row column
    keep SQLAlchemy's path (None)."""
    dialect = conn.dialect
    if dialect.name not in ("mysql", "mariadb") or dialect.paramstyle != "pyformat":
        return None
    if any(table.c[name].type.bind_processor(dialect) for name in columns):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    if set(compiled.binds) != set(columns):
        return None
    try:
        return MultiRowStatement(compiled.string)
    except ValueError:  # a shape PyMySQL's executemany would not make multi-row either
        return None


@functools.lru_cache(maxsize=None)
def _key_name(table: Table) -> str:
    """The (single) primary-key column; cached: SQLAlchemy builds the list on every call,
    and every recorded change asks."""
    return table.primary_key.columns.values()[0].name


def _limits(table: Table) -> Dict[str, int]:
    return {column.name: column.type.length for column in table.columns
            if isinstance(column.type, String) and column.type.length}


class Mirror:
    """Pending changes per table and key, flushed in one transaction per batch."""

    def __init__(self, db: Database, node: str, max_delay: float = 0.2,
                 max_pending: int = 300_000, on_lost: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.node = node
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.on_lost = on_lost or (lambda why: None)
        self.clock = clock
        self._tables: Dict[str, Table] = {}
        self._statements: Dict[Tuple, Tuple] = {}
        self._limits: Dict[str, Dict[str, int]] = {}
        self._pending: Dict[str, Dict[object, Tuple]] = defaultdict(dict)
        self._replaced: set = set()
        self._count = 0
        self._first_at: Optional[float] = None
        self._work = gevent.event.Event()
        self._last_stamp = 0.0
        self._greenlet = None
        self._full_logged = False
        self.dropped = 0

    # ------------------------------------------------------------------ recording
    def upsert(self, table: Table, row: dict, fill_only: Tuple[str, ...] = ()) -> None:
        """Insert or update by primary key. The mirror owns ``row`` from here on: it clips
        and stamps it in place (a copy per row cost a storm measurably)."""
        self._record(table, (UPSERT, self._clip(table, row), fill_only))

    def insert_new(self, table: Table, row: dict) -> None:
        """Insert unless a row with this key exists (a queue entry written at most once)."""
        self._record(table, (INSERT_NEW, self._clip(table, row), ()))

    def delete(self, table: Table, key) -> None:
        """Delete this node's row with this key (another node's row is left alone)."""
        self._record(table, (DELETE, {_key_name(table): key}, ()))

    def replace(self, table: Table, rows: Iterable[dict], fill_only: Tuple[str, ...] = ()) -> None:
        """This node's rows become exactly ``rows`` (changes recorded after this apply on top).

        Needs ``node`` and ``updated_at`` columns: rows this flush did not stamp are removed."""
        if "node" not in table.c or "updated_at" not in table.c:
            raise ValueError(f"{table.name}: replace needs node and updated_at columns")
        self._tables[table.name] = table
        self._count -= len(self._pending[table.name])
        self._pending[table.name] = {}
        self._replaced.add(table.name)
        for row in rows:
            self.upsert(table, row, fill_only)
        self._kick()

    def _record(self, table: Table, op: Tuple) -> None:
        self._tables[table.name] = table
        pending = self._pending[table.name]
        key = op[1][_key_name(table)]
        if key not in pending:
            if self._count >= self.max_pending:
                self._overflow(table.name)
                return
            self._count += 1
        pending[key] = op
        self._kick()

    def _overflow(self, table_name: str) -> None:
        self.dropped += 1
        if not self._full_logged:
            self._full_logged = True
            log.error("mirror buffer full: dropping changes until the DB catches up, "
                      "then resyncing", extra={"table": table_name, "pending": self._count})
        self.on_lost(f"mirror buffer full ({self._count} changes pending)")

    def _kick(self) -> None:
        if self._first_at is None:
            self._first_at = time.monotonic()
        if self._count >= CHUNK:  # a full statement is ready: write it while parsing goes on
            self._work.set()

    def _clip(self, table: Table, row: dict) -> dict:
        limits = self._limits.get(table.name)
        if limits is None:
            limits = self._limits[table.name] = _limits(table)
        for name, value in row.items():  # the smallest limit is 16: most values skip this
            if type(value) is str and len(value) > 16 and len(value) > limits.get(name, 1 << 30):
                row[name] = value[:limits[name]]
        return row

    @property
    def pending(self) -> int:
        return self._count

    # ------------------------------------------------------------------ writing
    def flush(self) -> int:
        """Write everything pending now; returns the rows written. Raises on DB failure
        (the batch is back in the buffer then, under any newer change)."""
        if not self._count and not self._replaced:
            return 0
        batch, replaced = self._pending, self._replaced
        self._pending, self._replaced = defaultdict(dict), set()
        count, self._count, self._first_at = self._count, 0, None
        stamp = self._last_stamp = max(self.clock(), self._last_stamp + 0.001)
        try:
            self.db.retrying(lambda conn: self._write(conn, batch, replaced, stamp))
        except DatabaseUnavailable:
            self._restore(batch, replaced)
            raise
        except Exception as exc:  # noqa: BLE001 - SQL rejected (or a bad value): not a blip
            # Retrying the same rows would fail forever. Drop them, then resync.
            log.error("mirror batch rejected by the DB; resyncing",
                      extra={"rows": count, "error": str(getattr(exc, "orig", exc))[:200]})
            self.on_lost("a mirror batch was rejected by the DB")
            return 0
        self._full_logged = False
        return count

    def _restore(self, batch, replaced) -> None:
        for name, ops in batch.items():
            newer = self._pending[name]
            if name in self._replaced:
                continue  # a newer replace already supersedes these
            merged = dict(ops)
            merged.update(newer)
            self._count += len(merged) - len(newer)
            self._pending[name] = merged
        self._replaced |= replaced
        if self._first_at is None:
            self._first_at = time.monotonic()

    def _write(self, conn, batch, replaced, stamp) -> None:
        dialect = conn.dialect.name
        for name in set(batch) | replaced:
            table = self._tables[name]
            key = table.c[_key_name(table)]
            stamped = "updated_at" in table.c
            groups: Dict[Tuple, List[dict]] = defaultdict(list)
            deletes = []
            for kind, row, fill_only in batch.get(name, {}).values():
                if kind == DELETE:
                    deletes.append(row[key.name])
                    continue
                if stamped:
                    row["updated_at"] = stamp   # the mirror owns recorded rows
                # a producer builds its rows in one key order: no need to sort
                groups[(kind, tuple(row), fill_only)].append(row)
            for (kind, columns, fill_only), rows in groups.items():
                shape = (dialect, name, kind, columns, fill_only)
                if shape not in self._statements:
                    statement = upsert_statement(dialect, table, columns, fill_only,
                                                 do_nothing=kind == INSERT_NEW)
                    self._statements[shape] = (statement, multirow_statement(
                        conn, table, statement, columns))
                statement, bulk = self._statements[shape]
                escape = conn.connection.dbapi_connection.escape if bulk else None
                for start in range(0, len(rows), CHUNK):
                    if bulk is None:
                        conn.execute(statement, rows[start:start + CHUNK])
                        continue
                    for sql in bulk.statements(rows[start:start + CHUNK], escape):
                        conn.exec_driver_sql(sql, execution_options=NO_PARAMETERS)
            owner = table.c.node if "node" in table.c else None
            for start in range(0, len(deletes), CHUNK):
                condition = key.in_(deletes[start:start + CHUNK])
                conn.execute(table.delete().where(
                    condition if owner is None else (owner == self.node) & condition))
            if name in replaced:  # rows of this node the snapshot did not touch: gone
                conn.execute(table.delete().where(
                    owner == self.node,
                    or_(table.c.updated_at < stamp, table.c.updated_at.is_(None))))

    # ------------------------------------------------------------------ the flusher
    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the flusher, then try one last flush within ``timeout``."""
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None
        try:
            with gevent.Timeout(timeout):
                self.flush()
        except (DatabaseUnavailable, gevent.Timeout):
            log.error("mirror changes not written at stop", extra={"pending": self._count})

    def _run(self) -> None:
        while True:
            if self._first_at is None:
                self._work.wait(self.max_delay)
                self._work.clear()
                continue
            wait = self._first_at + self.max_delay - time.monotonic()
            if wait > 0 and self._work.wait(wait):
                self._work.clear()
            try:
                self.flush()
            except DatabaseUnavailable as exc:
                log.warning("db unavailable, mirror changes buffered",
                            extra={"pending": self._count, "error": str(exc)})
                gevent.sleep(RETRY_DELAY)
            except Exception:  # never let the only writer die silently
                log.exception("mirror flush failed")
                gevent.sleep(RETRY_DELAY)
