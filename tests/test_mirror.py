"""The batched writer on SQLite and MariaDB: upserts, node-scoped deletes, replace, blips."""
import pytest
from sqlalchemy import select

from esl_apps.mirror import CHUNK, Mirror, multirow_statement, upsert_statement
from fscluster.errors import DatabaseUnavailable
from fscluster.schema import cluster_cdr_queue, cluster_nodes, cluster_registrations as regs


def reg(call_id, node="pbx1", **extra):
    return dict({"call_id": call_id, "node": node, "profile_name": "vip1",
                 "sip_user": call_id.split("@")[0], "contact": f"<sip:{call_id}>"}, **extra)


def rows(db, table=regs):
    with db.read.connect() as conn:
        return {tuple(r)[0]: r._asdict() for r in conn.execute(select(table))}


def test_upsert_is_idempotent_and_coalesces(any_db):
    mirror = Mirror(any_db, "pbx1")
    mirror.upsert(regs, reg("a@x", status="one"))
    mirror.upsert(regs, reg("a@x", status="two"))
    mirror.upsert(regs, reg("b@x"))
    assert mirror.pending == 2
    assert mirror.flush() == 2
    mirror.upsert(regs, reg("a@x", status="two"))  # replayed: same state, no error
    mirror.flush()
    stored = rows(any_db)
    assert set(stored) == {"a@x", "b@x"}
    assert stored["a@x"]["status"] == "two"
    assert stored["a@x"]["updated_at"] > 0


def test_delete_only_touches_own_rows(any_db):
    pbx1, pbx2 = Mirror(any_db, "pbx1"), Mirror(any_db, "pbx2")
    pbx1.upsert(regs, reg("a@x"))
    pbx2.upsert(regs, reg("b@x", node="pbx2"))
    pbx1.flush(), pbx2.flush()
    pbx1.delete(regs, "b@x")  # e.g. a sofia::expire about another node's row
    pbx1.delete(regs, "a@x")
    pbx1.flush()
    assert set(rows(any_db)) == {"b@x"}


def test_replace_makes_own_rows_exactly_the_snapshot(any_db):
    pbx1, pbx2 = Mirror(any_db, "pbx1"), Mirror(any_db, "pbx2")
    pbx1.upsert(regs, reg("stale@x"))
    pbx1.upsert(regs, reg("kept@x", user_agent="phone/1.0"))
    pbx2.upsert(regs, reg("other@x", node="pbx2"))
    pbx1.flush(), pbx2.flush()
    pbx1.upsert(regs, reg("superseded@x"))  # pending before the snapshot: replaced by it
    pbx1.replace(regs, [reg("kept@x", contact="sip:kept@x"), reg("new@x")],
                 fill_only=("contact",))
    pbx1.upsert(regs, reg("after@x"))  # newer than the snapshot: applies on top
    pbx1.flush()
    stored = rows(any_db)
    assert set(stored) == {"kept@x", "new@x", "after@x", "other@x"}
    assert stored["kept@x"]["user_agent"] == "phone/1.0"  # not in the snapshot: kept
    assert stored["kept@x"]["contact"] == "<sip:kept@x>"  # fill-only: event value kept
    assert stored["other@x"]["node"] == "pbx2"


def test_empty_replace_clears_only_this_node(any_db):
    pbx1, pbx2 = Mirror(any_db, "pbx1"), Mirror(any_db, "pbx2")
    pbx1.upsert(regs, reg("a@x"))
    pbx2.upsert(regs, reg("b@x", node="pbx2"))
    pbx1.flush(), pbx2.flush()
    pbx1.replace(regs, [])
    pbx1.flush()
    assert set(rows(any_db)) == {"b@x"}


def test_insert_new_keeps_the_first_and_upsert_without_node(any_db):
    mirror = Mirror(any_db, "pbx1")
    mirror.insert_new(cluster_cdr_queue, {"uuid": "u1", "node": "pbx1", "payload": "first"})
    mirror.upsert(cluster_nodes, {"node_name": "pbx1", "last_seen": 1.0, "channels": 3})
    mirror.flush()
    mirror.insert_new(cluster_cdr_queue, {"uuid": "u1", "node": "pbx1", "payload": "second"})
    mirror.upsert(cluster_nodes, {"node_name": "pbx1", "last_seen": 2.0, "channels": 4})
    mirror.flush()
    assert rows(any_db, cluster_cdr_queue)["u1"]["payload"] == "first"
    node = rows(any_db, cluster_nodes)["pbx1"]
    assert (node["last_seen"], node["channels"]) == (2.0, 4)


def test_too_long_values_are_clipped_not_rejected(any_db):
    mirror = Mirror(any_db, "pbx1")
    mirror.upsert(regs, reg("a@x", contact="c" * 5000, network_port="5" * 40))
    mirror.flush()
    stored = rows(any_db)["a@x"]
    assert len(stored["contact"]) == 1024 and len(stored["network_port"]) == 16


class Blip:
    """A Database stand-in that is unavailable for the first ``failures`` batches."""

    def __init__(self, db, failures):
        self.db, self.failures = db, failures

    def retrying(self, work, **kwargs):
        if self.failures:
            self.failures -= 1
            raise DatabaseUnavailable("db down (test)")
        return self.db.retrying(work, **kwargs)


def test_raw_rows_keep_quotes_backslashes_and_percent_over_chunks(any_db):
    """On MariaDB rows are formatted by esl_apps.multirow: PyMySQL's escaping must still hold
    for SQL-special characters, over more than one multi-row statement."""
    mirror = Mirror(any_db, "pbx1")
    nasty = "o'x\\\" %s %(node)s;-- DROP TABLE x"
    for i in range(CHUNK + 5):
        mirror.upsert(regs, reg(f"{i}@x", user_agent=nasty, contact=f"{nasty}{i % 3}"))
    assert mirror.flush() == CHUNK + 5
    stored = rows(any_db)
    assert len(stored) == CHUNK + 5
    assert {row["user_agent"] for row in stored.values()} == {nasty}
    assert {row["contact"] for row in stored.values()} == {f"{nasty}{i}" for i in range(3)}


def test_multirow_statement_only_where_the_driver_takes_raw_rows():
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.mysql import pymysql

    class Conn:
        dialect = pymysql.dialect(paramstyle="pyformat")
    columns = ("call_id", "node", "updated_at")
    bulk = multirow_statement(Conn, regs, upsert_statement("mysql", regs, columns), columns)
    assert bulk.row_format == "(%s, %s, %s)" and bulk.names == columns
    assert bulk.prefix.startswith("INSERT INTO cluster_registrations")
    assert bulk.postfix.strip().startswith("ON DUPLICATE KEY UPDATE")
    node_columns = ("freeswitch_up", "node_name")  # Boolean: SQLAlchemy converts it
    assert multirow_statement(Conn, cluster_nodes, upsert_statement(
        "mysql", cluster_nodes, node_columns), node_columns) is None
    Conn.dialect = sqlite.dialect()
    assert multirow_statement(Conn, regs, upsert_statement("sqlite", regs, columns),
                              columns) is None


def test_db_blip_keeps_the_batch_under_newer_changes(sqlite_db):
    mirror = Mirror(Blip(sqlite_db, failures=1), "pbx1")
    mirror.upsert(regs, reg("a@x", status="old"))
    mirror.upsert(regs, reg("b@x"))
    mirror.replace(regs, [reg("a@x", status="old"), reg("b@x")])
    with pytest.raises(DatabaseUnavailable):
        mirror.flush()
    mirror.upsert(regs, reg("a@x", status="new"))  # arrived while the DB was down
    mirror.delete(regs, "b@x")
    assert mirror.pending == 2
    mirror.flush()
    stored = rows(sqlite_db)
    assert set(stored) == {"a@x"} and stored["a@x"]["status"] == "new"


def test_full_buffer_drops_and_asks_for_resync(sqlite_db):
    lost = []
    mirror = Mirror(sqlite_db, "pbx1", max_pending=2, on_lost=lost.append)
    for n in range(3):
        mirror.upsert(regs, reg(f"{n}@x"))
    mirror.upsert(regs, reg("0@x", status="update"))  # a known key still fits
    assert mirror.pending == 2 and mirror.dropped == 1
    assert lost and "buffer full" in lost[0]
    mirror.flush()
    assert set(rows(sqlite_db)) == {"0@x", "1@x"}


def test_rejected_batch_is_dropped_and_resync_requested(sqlite_db):
    lost = []
    mirror = Mirror(sqlite_db, "pbx1", on_lost=lost.append)
    mirror.upsert(regs, {"call_id": "a@x", "node": None})  # NOT NULL violation
    assert mirror.flush() == 0
    assert lost == ["a mirror batch was rejected by the DB"]
    assert mirror.pending == 0
