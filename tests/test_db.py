"""The DB layer's Galera failure policy: which errors are retried, which condemn the pooled
connection (so the retry reaches another node through HAProxy), and the retry deadline."""
import types

import pymysql
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from fscluster.db import _drop_unusable_node_connection, is_retryable, pymysql_args
from fscluster.errors import DatabaseUnavailable


def _error(code, message="x"):
    return OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, message))


@pytest.mark.parametrize("code", [2003, 2006, 2013, 1213, 1047, 1053, 1205, 1927, 4031, 1180])
def test_galera_failover_errors_are_retryable(code):
    assert is_retryable(_error(code))


@pytest.mark.parametrize("code", [1045, 1062, 1146])  # bad password, duplicate key, no table
def test_other_errors_are_not(code):
    assert not is_retryable(_error(code))


@pytest.mark.parametrize("code, condemned", [
    (1047, True),    # WSREP has not yet prepared node for application use (non-Primary)
    (1053, True),    # server shutdown in progress
    (1180, True),    # error during COMMIT (not connected to the Primary component)
    (1213, False),   # certification failure: the connection itself is fine
])
def test_unusable_node_errors_drop_the_connection(code, condemned):
    context = types.SimpleNamespace(original_exception=pymysql.err.OperationalError(code, "x"),
                                    is_disconnect=False)
    _drop_unusable_node_connection(context)
    assert context.is_disconnect is condemned


def test_retrying_gives_up_with_database_unavailable(sqlite_db):
    calls = []

    def always_1047(conn):
        calls.append(1)
        raise _error(1047, "WSREP has not yet prepared node for application use")
    with pytest.raises(DatabaseUnavailable, match="1047"):
        sqlite_db.retrying(always_1047, deadline=0.3)
    assert len(calls) > 1


def test_retrying_makes_a_last_attempt_at_the_deadline(sqlite_db, monkeypatch):
    """The backoff's last wait is cut to the deadline, not skipped: the budget is used up."""
    now = [0.0]
    monkeypatch.setattr("fscluster.db.time.monotonic", lambda: now[0])
    monkeypatch.setattr("fscluster.db.time.sleep", lambda s: now.__setitem__(0, now[0] + s))
    # no jitter: waits of 0.05, 0.1, 0.2, 0.4, then the 0.75 s left (attempt at 0.75 < 1.4);
    # with jitter an attempt could land in [1.4, 1.5) and answer before the deadline
    monkeypatch.setattr("fscluster.db.random.random", lambda: 0.5)
    attempts = []

    def unready_until_1_4s(conn):
        attempts.append(now[0])
        if now[0] < 1.4:
            raise _error(1047, "WSREP has not yet prepared node for application use")
        return "answered"
    assert sqlite_db.retrying(unready_until_1_4s, deadline=1.5) == "answered"
    assert attempts == pytest.approx([0, 0.05, 0.15, 0.35, 0.75, 1.5])


def test_non_retryable_error_propagates_at_once(sqlite_db):
    calls = []

    def duplicate(conn):
        calls.append(1)
        raise IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate entry"))
    with pytest.raises(IntegrityError):
        sqlite_db.retrying(duplicate, deadline=5)
    assert calls == [1]


def _session_questions(conn) -> int:
    """Statements this connection has sent (COMMIT and ROLLBACK count, COM_PING does not)."""
    return int(conn.execute(text("SHOW SESSION STATUS LIKE 'Questions'")).all()[0][1])


@pytest.mark.integration
def test_a_read_unit_is_one_statement_on_a_pooled_connection(mariadb_db):
    """No COMMIT and no reset-on-return ROLLBACK around reads (they were 2 of 4 round
    trips of every cold xml_curl lookup)."""
    before = mariadb_db.retrying(_session_questions, write=False)
    after = mariadb_db.retrying(_session_questions, write=False)
    assert after - before == 1


@pytest.mark.integration
def test_a_dead_pooled_read_connection_is_retried_on_a_fresh_one(mariadb_db):
    """Without pre-ping, a connection killed while pooled fails the query; the unit is
    retried on a new connection and answers."""
    def connection_id(conn):
        return conn.execute(text("SELECT CONNECTION_ID()")).scalar_one()
    first = mariadb_db.retrying(connection_id, write=False)
    with mariadb_db.write.begin() as conn:
        conn.execute(text(f"KILL CONNECTION {int(first)}"))
    assert mariadb_db.retrying(connection_id, write=False) != first


def test_tls_to_the_db_is_opt_in_through_the_url():
    """No per-connection SSL context (~30 ms of CPU each) unless the URL asks for TLS."""
    plain = pymysql_args("mysql+pymysql://u:p@127.0.0.1:3306/fs", 3.0)
    assert plain["ssl_disabled"] is True and plain["connect_timeout"] == 3
    asked = pymysql_args("mysql+pymysql://u:p@db/fs?ssl_ca=/etc/mysql/ca.pem", 3.0)
    assert "ssl_disabled" not in asked



@pytest.mark.integration
def test_a_write_transaction_a_dead_host_left_open_frees_its_locks(mariadb_db):
    """A host that dies mid-transaction sends no FIN: its session and row locks stay on the
    DB. ``idle_write_transaction_timeout`` (set on every write connection) ends the session,
    so the survivor's claim on the VIP goes through instead of waiting out lock timeouts."""
    from esl_apps import vip_claims
    from fscluster.db import Database
    from fscluster.schema import cluster_vips

    with mariadb_db.write.begin() as conn:
        conn.execute(cluster_vips.insert().values(
            vip_name="vip1", address="198.18.0.101", owner_node="pbx1", lease_expires=0,
            epoch=3))
    dead = mariadb_db.write.connect()              # pbx1's session, frozen mid-renewal
    dead.begin()
    dead.execute(cluster_vips.update().where(cluster_vips.c.vip_name == "vip1")
                 .values(lease_expires=1))
    survivor = Database(mariadb_db.url)
    try:
        claim = vip_claims.claim(survivor, "vip1", "198.18.0.101", "pbx3", lease=1.5)
    finally:
        survivor.dispose()
    assert (claim.former_owner, claim.epoch) == ("pbx1", 4)
    with pytest.raises(OperationalError):          # the orphan was ended by the server
        dead.execute(text("SELECT 1"))
    dead.invalidate()
