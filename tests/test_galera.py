"""The database cluster path on real servers: 3-node Galera, HAProxy with the rendered config
and the galera agents, the DB layer's retries, and doctor. Destructive tests restore the
cluster to 3 Synced nodes (and HAProxy to all UP) before they end."""
import threading
import time

import pymysql
import pytest
from sqlalchemy import text

from fscluster import doctor
from fscluster.db import Database
from fscluster.errors import DatabaseUnavailable
from tests.servers.haproxy import backend_server_of
from tests.servers.proc import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def front(galera_front, galera_cluster):
    """The HAProxy front, put back to 3 Synced nodes / all UP after the test."""
    yield galera_front
    galera_cluster.restore()
    galera_front.wait_servers_up(60)


@pytest.fixture
def db(front):
    database = Database.from_config(front.config)
    database.retrying(lambda c: c.execute(text(
        "CREATE TABLE IF NOT EXISTS t_writes (id INT PRIMARY KEY, node VARCHAR(16))")))
    database.retrying(lambda c: c.execute(text("DELETE FROM t_writes")))
    yield database
    database.dispose()


def test_three_nodes_synced_and_replicating(galera_cluster):
    assert [n.status()["wsrep_cluster_size"] for n in galera_cluster.nodes] == ["3"] * 3
    first, _, last = galera_cluster.nodes
    first.sql("CREATE DATABASE IF NOT EXISTS repl_check")
    first.sql("CREATE TABLE IF NOT EXISTS repl_check.t (id INT PRIMARY KEY)")
    first.sql("REPLACE INTO repl_check.t VALUES (7)")
    # wsrep_sync_wait makes the read wait for every write the cluster committed before it
    conn = last.root_connection()
    with conn, conn.cursor() as cur:
        cur.execute("SET SESSION wsrep_sync_wait=1")
        cur.execute("SELECT id FROM repl_check.t")
        assert cur.fetchall() == ((7,),)


def test_one_writer_and_reads_over_every_node(front):
    writers = {backend_server_of(front.write_port) for _ in range(6)}
    readers = {backend_server_of(front.read_port) for _ in range(9)}
    assert len(writers) == 1
    assert readers == {"db1", "db2", "db3"}


def test_desynced_node_gets_no_reads(front, galera_cluster):
    galera_cluster.desync("db2")
    front.wait_status("db2", "DOWN")
    readers = [backend_server_of(front.read_port) for _ in range(12)]
    assert "db2" not in readers and set(readers) == {"db1", "db3"}
    row = next(r for r in doctor.haproxy_checks(front.config, 2)
               if r.component == "haproxy galera_read/db2")
    assert not row.ok and "Donor/Desynced" in row.detail
    galera_cluster.desync("db2", on=False)
    front.wait_status("db2", "UP")


def _write_load(db, stop, written, errors):
    """Idempotent upserts through HAProxy until ``stop``, each unit retried by the DB layer."""
    for i in range(1, 100000):
        if stop.is_set():
            return
        def upsert(conn, i=i):
            conn.execute(text("INSERT INTO t_writes (id, node) VALUES (:i, @@wsrep_node_name) "
                              "ON DUPLICATE KEY UPDATE node = VALUES(node)"), {"i": i})
        try:
            db.retrying(upsert)
            written.append(i)
        except DatabaseUnavailable as exc:
            errors.append(str(exc))
        time.sleep(0.01)


def test_writer_kill_moves_writes_once_and_the_old_writer_does_not_steal_them_back(
        front, galera_cluster, db):
    writer = backend_server_of(front.write_port)
    stop, written, errors = threading.Event(), [], []
    load = threading.Thread(target=_write_load, args=(db, stop, written, errors))
    load.start()
    try:
        wait_for(lambda: len(written) > 20, 30, "writes flowing")
        galera_cluster.kill(writer)
        front.wait_status(writer, "DOWN", 10)
        mark = len(written)
        wait_for(lambda: len(written) > mark + 20, 30, "writes flowing after the kill")
        new_writer = backend_server_of(front.write_port)
        assert new_writer != writer
        galera_cluster.start_node(writer)
        front.wait_status(writer, "UP", 60)
        rejoined = len(written)
        wait_for(lambda: len(written) > rejoined + 20, 30, "writes flowing after the rejoin")
    finally:
        stop.set()
        load.join(30)
    if errors:  # which node saw which component, for whoever reads the CI log
        print(galera_cluster.view_changes())
    assert errors == []
    rows = db.retrying(lambda c: c.execute(text("SELECT id, node FROM t_writes ORDER BY id"))
                       .fetchall())
    assert [i for i, _ in rows] == sorted(set(written))  # every acknowledged write, once
    # No failback mid-traffic: the recovered node gets no writes. (The writer may move on
    # again while the rejoin runs: a donor is Donor/Desynced, so its agent takes it out.)
    after = {node for i, node in rows if i > written[rejoined - 1]}
    assert after and writer not in after


def test_quorum_lost_writes_fail_fast_and_nothing_lands_in_the_minority(front, galera_cluster,
                                                                        db):
    survivor, *victims = galera_cluster.nodes
    for node in victims:
        galera_cluster.kill(node.name, wait_evicted=False)  # both at once
    galera_cluster.wait_evicted()
    wait_for(lambda: survivor.status()["wsrep_cluster_status"] != "Primary", 30,
             "survivor in a non-primary component")
    front.wait_status(survivor.name, "DOWN", 10)
    # Directly on the minority node: refused at once with 1047, never a hang.
    with pytest.raises(pymysql.MySQLError) as refused:
        with survivor.connect(database=front.config.db_url.rsplit("/", 1)[1]) as conn, \
                conn.cursor() as cur:
            cur.execute("INSERT INTO t_writes (id, node) VALUES (-1, 'minority')")
    assert refused.value.args[0] == 1047
    # Through HAProxy: the DB layer retries until its deadline, then says the DB is
    # unavailable (every call has a timeout, so this cannot hang).
    with pytest.raises(DatabaseUnavailable):
        db.retrying(lambda c: c.execute(text("INSERT INTO t_writes VALUES (-2, 'x')")),
                    deadline=3)
    galera_cluster.restore()
    front.wait_servers_up(60)
    rows = db.retrying(lambda c: c.execute(text("SELECT id FROM t_writes WHERE id < 0"))
                       .fetchall())
    assert rows == []


def test_doctor_reports_every_galera_node_and_haproxy_backend_healthy(front):
    rows = doctor.galera_checks(front.config, 2) + doctor.haproxy_checks(front.config, 2)
    assert len(rows) == 3 + 3 + 1
    assert all(r.ok for r in rows), rows
    assert all("Synced, Primary, size 3" in r.detail for r in rows[:3])


def test_view_changes_show_every_nodes_primary_view(galera_cluster):
    """What failing Galera tests print: each node's view lines, the Primary one included."""
    text = galera_cluster.view_changes()
    for node in galera_cluster.nodes:
        section = text.split(f"--- {node.name}\n", 1)[1].split("\n--- ", 1)[0]
        assert "view(view_id(PRIM" in section, section[-500:]
