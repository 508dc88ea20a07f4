"""Passive-node CDR processing: every queued hangup becomes exactly one CDR."""
import json

import gevent
import pytest
from sqlalchemy import func, insert, select

from esl_apps.cdr import CdrProcessor, cdr_row
from fscluster.schema import cluster_cdr_queue, cluster_cdrs


def enqueue(db, count, node="pbx1", start=0):
    with db.write.begin() as conn:
        conn.execute(insert(cluster_cdr_queue), [{
            "uuid": f"u{i}", "node": node, "enqueued_at": float(i), "payload": json.dumps({
                "Call-Direction": "inbound", "Caller-Caller-ID-Number": "1000",
                "Caller-Destination-Number": "1001", "Caller-Context": "demo.local",
                "variable_start_epoch": "1795556439", "variable_answer_epoch": "1795556440",
                "variable_end_epoch": "1795556500", "variable_duration": "61",
                "variable_billsec": "60", "Hangup-Cause": "NORMAL_CLEARING"})}
            for i in range(start, start + count)])


def cdr_count(db):
    with db.read.connect() as conn:
        return conn.execute(select(func.count()).select_from(cluster_cdrs)).scalar_one()


def test_row_from_payload_and_from_garbage():
    row = cdr_row("u", "pbx1", json.dumps({"variable_billsec": "60", "Hangup-Cause": "X"}),
                  "pbx3")
    assert row["billsec"] == 60 and row["hangup_cause"] == "X" and row["processed_by"] == "pbx3"
    assert cdr_row("u", "pbx1", "{not json", "pbx3")["billsec"] is None
    assert cdr_row("u", "pbx1", "[1, 2]", "pbx3")["duration"] is None


def test_only_the_passive_node_processes(any_db):
    enqueue(any_db, 5)
    active = CdrProcessor(any_db, "pbx1", is_passive=lambda: False)
    passive = CdrProcessor(any_db, "pbx3", is_passive=lambda: True, batch=2)
    assert active.run_once() == 0 and cdr_count(any_db) == 0
    assert passive.run_once() == 5
    assert cdr_count(any_db) == 5
    with any_db.read.connect() as conn:
        row = conn.execute(select(cluster_cdrs).where(cluster_cdrs.c.uuid == "u3")).one()
    assert (row.billsec, row.node, row.processed_by) == (60, "pbx1", "pbx3")
    assert passive.run_once() == 0  # nothing twice


def test_two_processors_never_double_process(any_db):
    enqueue(any_db, 300)
    first = CdrProcessor(any_db, "pbx3", lambda: True, batch=25)
    second = CdrProcessor(any_db, "pbx2", lambda: True, batch=25)
    jobs = [gevent.spawn(first.run_once), gevent.spawn(second.run_once)]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    assert first.processed + second.processed == 300
    assert cdr_count(any_db) == 300


def test_a_dead_processors_claim_expires_and_is_taken_over(any_db):
    enqueue(any_db, 4)
    now = [1000.0]
    dead = CdrProcessor(any_db, "pbx3", lambda: True, claim_timeout=60, clock=lambda: now[0])
    assert dead.claim() == 4  # claimed, then the node died before processing
    heir = CdrProcessor(any_db, "pbx2", lambda: True, claim_timeout=60, clock=lambda: now[0])
    assert heir.run_once() == 0  # claims still fresh
    now[0] += 61
    assert heir.run_once() == 4
    assert cdr_count(any_db) == 4


@pytest.mark.integration
def test_hangup_on_an_active_node_becomes_one_cdr_on_the_passive_node(fsemu, sqlite_db,
                                                                      tmp_path):
    """End to end: pbx1's agent queues the hangup; pbx3's agent, holding no VIP, writes it."""
    from esl_apps import failover
    from esl_apps.agent import Agent
    from fscluster.config import Config
    from tests.esl_support import gwait

    agents = []
    for node in ("pbx1", "pbx3"):
        emulator = fsemu(node, sqlite_db.url)
        config = Config(node_name=node, db_url=sqlite_db.url, esl_port=emulator.port,
                        esl_timeout=1.0, agent_socket=str(tmp_path / f"{node}.sock"))
        agent = Agent(config, sqlite_db)
        if node == "pbx3":  # holds no VIP: passive (pbx1 runs no failover loop at all here)
            failover.attach(agent, addresses=set)
        agent.start()
        agents.append((agent, emulator))
    try:
        for agent, _ in agents:
            gwait(agent.supervisor.synced.is_set, 10, "agents to sync")
        pbx1 = agents[0][1]
        call = pbx1.driver.call("1000", "1001")
        pbx1.driver.answer(call)
        pbx1.driver.hangup(call)
        gwait(lambda: cdr_count(sqlite_db) == 2, 20, "both legs' CDRs")
        with sqlite_db.read.connect() as conn:
            rows = conn.execute(select(cluster_cdrs)).all()
        assert {r.node for r in rows} == {"pbx1"} and {r.processed_by for r in rows} == {"pbx3"}
        assert {r.uuid for r in rows} == set(call.uuids)
        assert all(r.hangup_cause == "NORMAL_CLEARING" for r in rows)
    finally:
        for agent, _ in agents:
            agent.stop()
