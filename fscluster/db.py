"""One place for DB access: engines, schema creation and retries for Galera failovers.

Two engines: ``write`` (HAProxy's single-writer listener, or the embedded SQLite) and
``read`` (HAProxy's balanced listener, else the write URL; SQLite shares the write engine).
:meth:`Database.retrying` wraps *idempotent* units of work and retries the errors a Galera
failover produces; anything else propagates at once.

The write engine pings a pooled connection before use, so a connection that a dead Galera
node left behind is replaced rather than handed out. The read engine is the hot path of
every cache miss (xml_curl), so it makes one round trip per query instead of four: it runs
in autocommit (no COMMIT, and SQLAlchemy skips its ROLLBACK — there is no transaction to
end), the pool does no reset-on-return ROLLBACK, and there is no pre-ping. A dead pooled
connection then fails the query itself with a disconnect error, which invalidates the pool
and is retried by :meth:`Database.retrying` — safe, because reads are idempotent.
"""
import logging
import random
import time
from typing import Callable, Optional, TypeVar

import gevent
from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from fscluster import triggers
from fscluster.config import Config, redact_url
from fscluster.errors import DatabaseUnavailable
from fscluster.schema import cluster_cache_generation, metadata

log = logging.getLogger("fscluster.db")
T = TypeVar("T")

# MariaDB/MySQL error codes a Galera failover produces; all are safe to retry for
# idempotent work. 2003 can't connect, 2006 gone away, 2013 lost connection,
# 1213 deadlock (wsrep certification failure), 1047 WSREP not prepared / unknown command,
# 1053 server shutdown in progress, 1205 lock wait timeout, 1927 connection killed,
# 4031 idle disconnect, 1180 error during COMMIT (seen as "Error while appending streaming
# replication fragment(provider status: Not connected to Primary Component)" while a killed
# writer rejoined: the commit failed, so the transaction did not happen).
RETRYABLE_MYSQL_CODES = frozenset({2003, 2006, 2013, 1213, 1047, 1053, 1205, 1927, 4031,
                                   1180})
#: Errors that condemn the connection, on top of those SQLAlchemy's MySQL dialect knows
#: (2006, 2013, 1927, 4031…): 1047 — the node behind this connection left the Primary
#: component or is not Synced; 1053 — it is shutting down; 1180 — a commit failed there (the
#: case seen: not connected to the Primary component). A retry on the same pooled
#: connection would reach the same node, so the pool drops it and HAProxy routes the new
#: one to a healthy node.
NODE_UNUSABLE_MYSQL_CODES = frozenset({1047, 1053, 1180})


def is_retryable(exc: BaseException) -> bool:
    """True for errors that a retry on a fresh connection can cure."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in RETRYABLE_MYSQL_CODES
    if isinstance(exc, OperationalError):
        message = str(orig or exc).lower()
        return "database is locked" in message or "lost connection" in message
    return False


def make_engine(url: str, connect_timeout: float, *, reads: bool = False) -> Engine:
    """An engine for ``url``; ``reads=True``: the read-only engine described above."""
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": 10}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = pymysql_args(url, connect_timeout) if "pymysql" in url else {}
    policy = {"pool_pre_ping": True}
    if reads:
        policy = {"pool_pre_ping": False, "isolation_level": "AUTOCOMMIT",
                  "skip_autocommit_rollback": True, "pool_reset_on_return": None}
    engine = create_engine(url, pool_recycle=300, pool_size=10, max_overflow=20,
                           pool_timeout=connect_timeout, connect_args=connect_args, **policy)
    event.listen(engine, "handle_error", _drop_unusable_node_connection)
    if not reads and engine.dialect.name in ("mysql", "mariadb"):
        event.listen(engine, "connect", _bound_idle_write_transactions)
    return engine


def pymysql_args(url: str, connect_timeout: float) -> dict:
    """PyMySQL's connect arguments: bounded timeouts, utf8mb4, and TLS only when asked for.

    PyMySQL ≥ 1.2 defaults to "preferred" TLS: every new connection builds an SSL context
    (loading the system CA store: ~30 ms of CPU blocking the event loop — a second for a
    pool refilled after a Galera failover) for unverified TLS, used only if the server
    offers it. The URL normally names the local HAProxy; TLS is opt-in and verified, with
    PyMySQL's ``ssl_ca=…`` (and friends) in the URL's query."""
    timeout = max(1, int(round(connect_timeout)))
    args = {"connect_timeout": timeout, "read_timeout": timeout * 3,
            "write_timeout": timeout * 3, "charset": "utf8mb4"}
    if not any(key.startswith("ssl") for key in make_url(url).query):
        args["ssl_disabled"] = True
    return args


def _drop_unusable_node_connection(context) -> None:
    args = getattr(context.original_exception, "args", ())
    if args and args[0] in NODE_UNUSABLE_MYSQL_CODES:
        context.is_disconnect = True


#: Seconds a write transaction may sit idle (waiting for its client's next statement) before
#: MariaDB ends the session. A PBX host that dies mid-transaction sends no FIN — its link is
#: gone — so without this its session, and the row locks it holds (a VIP lease being renewed,
#: registrations being re-homed), would live on until ``wait_timeout`` (8 h by default): the
#: survivor's claim would wait out ``innodb_lock_wait_timeout`` (50 s) and fail, again and
#: again. The agent's own transactions last milliseconds; VRRP needs ~3 s to declare a host
#: dead, so by then the orphan has at most ~2 s left.
IDLE_WRITE_TRANSACTION_TIMEOUT = 5
#: MariaDB ≥ 10.3 knows the variable; another server answers "unknown system variable".
_UNKNOWN_SYSTEM_VARIABLE = 1193


def _bound_idle_write_transactions(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION idle_write_transaction_timeout = "
                       f"{IDLE_WRITE_TRANSACTION_TIMEOUT}")
    except Exception as exc:  # noqa: BLE001 - only the "no such variable" case is expected
        if getattr(exc, "args", (None,))[0] != _UNKNOWN_SYSTEM_VARIABLE:
            raise
        log.warning("server has no idle_write_transaction_timeout: a host dying mid-"
                    "transaction keeps its locks until wait_timeout")
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The write and read engines of one node, plus the retry policy around them."""

    def __init__(self, url: str, read_url: Optional[str] = None, connect_timeout: float = 3.0,
                 retry_seconds: float = 10.0):
        self.url = url
        self.write = make_engine(url, connect_timeout)
        self.read = self.write if url.startswith("sqlite") \
            else make_engine(read_url or url, connect_timeout, reads=True)
        self.retry_seconds = retry_seconds

    @classmethod
    def from_config(cls, config: Config) -> "Database":
        return cls(config.db_url, config.read_url, config.db_connect_timeout,
                   config.db_retry_seconds)

    @property
    def dialect(self) -> str:
        return self.write.dialect.name

    def describe(self) -> str:
        return redact_url(self.url)

    def retrying(self, work: Callable[[Connection], T], *, write: bool = True,
                 deadline: Optional[float] = None) -> T:
        """Run ``work(conn)`` in a transaction (``write=False``: read-only work, on the read
        engine without one), retrying Galera-failover errors with backoff.

        Only for idempotent units: a retry may re-run work whose commit reply was lost.
        Raises :class:`DatabaseUnavailable` once ``retry_seconds`` (or ``deadline``) passes.
        """
        engine = self.write if write else self.read
        unit = engine.begin if write else engine.connect
        give_up = time.monotonic() + (self.retry_seconds if deadline is None else deadline)
        delay = 0.05
        attempt = 0
        while True:
            attempt += 1
            try:
                with unit() as conn:
                    return work(conn)
            except DBAPIError as exc:
                left = give_up - time.monotonic()
                if not is_retryable(exc) or left <= 0:
                    if is_retryable(exc) or isinstance(exc, OperationalError):
                        raise DatabaseUnavailable(
                            f"{self.describe()}: {_short(exc)} (after {attempt} attempts)"
                        ) from exc
                    raise
                # the last wait is cut to the deadline, where one more attempt is made: the
                # whole budget is used (a Galera view change can outlast the first ~0.9 s)
                pause = min(delay, left)
                log.warning("db retry", extra={"attempt": attempt, "error": _short(exc),
                                               "delay_ms": round(pause * 1000)})
                time.sleep(pause)
                delay = min(delay * 2, 1.0) * (0.8 + 0.4 * random.random())

    def create_schema(self) -> None:
        """Create every table, the generation row and the triggers; safe to run twice."""
        metadata.create_all(self.write)
        with self.write.begin() as conn:
            if conn.execute(select(cluster_cache_generation.c.generation).where(
                    cluster_cache_generation.c.name == triggers.GENERATION_ROW)).first() is None:
                conn.execute(insert(cluster_cache_generation).values(
                    name=triggers.GENERATION_ROW, generation=1))
            for statement in triggers.trigger_statements(self.dialect):
                conn.execute(text(statement))

    def generation(self) -> int:
        """The cluster-wide cache generation (read from the write side: it must be fresh)."""
        def read(conn):
            return conn.execute(select(cluster_cache_generation.c.generation).where(
                cluster_cache_generation.c.name == triggers.GENERATION_ROW)).scalar_one()
        return self.retrying(read, write=True, deadline=1.0)

    def bump_generation(self, conn: Optional[Connection] = None) -> None:
        """Invalidate every node's cache (used by writes that no trigger sees)."""
        statement = text(triggers.BUMP_SQL)
        if conn is not None:
            conn.execute(statement)
        else:
            self.retrying(lambda c: c.execute(statement))

    def dispose(self) -> None:
        self.write.dispose()
        if self.read is not self.write:
            self.read.dispose()


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, abandoned after ``seconds`` with :class:`DatabaseUnavailable` (in a
    gevent-patched process: a blocking socket cannot be interrupted).

    gevent's own Timeout (a BaseException) interrupts the socket wait, so SQLAlchemy treats
    it as an exit exception and invalidates the connection rather than pool it half-read;
    only then is it turned into the error callers handle."""
    with gevent.Timeout(max(0.0, seconds)) as timer:
        try:
            return work()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise DatabaseUnavailable(f"no answer from the DB within {seconds:.1f} s") from None


def _short(exc: BaseException) -> str:
    """One line describing a DB error without the SQL or parameters (they may hold secrets)."""
    orig = getattr(exc, "orig", exc)
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200]}"
