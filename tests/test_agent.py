"""The whole agent against the FreeSWITCH emulator: mirror = truth, across kills and hangs."""
import json
import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select

from esl_apps.agent import Agent
from fscluster.config import Config
from fscluster.schema import (cluster_cdr_queue, cluster_channels, cluster_nodes,
                              cluster_registrations)
from tests.esl_support import gwait

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def agents():
    started = []

    def start(node, emulator, db):
        config = Config(node_name=node, db_url=db.url, esl_port=emulator.port,
                        esl_timeout=1.0, esl_idle_timeout=3.0)
        agent = Agent(config, db, probe_interval=0.5)
        agent.supervisor.backoff.base, agent.supervisor.backoff.cap = 0.05, 0.5
        agent.start()
        started.append(agent)
        gwait(agent.supervisor.synced.is_set, 10, f"agent {node} to sync")
        return agent
    yield start
    for agent in started:
        agent.stop()


def truth(emulator, what="registrations"):
    reply = json.loads(emulator.driver.api(f"show {what} as json"))
    key = "token" if what == "registrations" else "uuid"
    return {row[key] for row in reply.get("rows", [])}


def mirrored(db, node, table=cluster_registrations):
    key = table.primary_key.columns.values()[0]
    with db.write.connect() as conn:
        return set(conn.execute(select(key).where(table.c.node == node)).scalars())


def converged(emulator, db, node):
    return gwait(lambda: mirrored(db, node) == truth(emulator) and
                 mirrored(db, node, cluster_channels) == truth(emulator, "channels"),
                 20, f"{node}'s mirror to equal the emulator")


def test_mirror_follows_registrations_calls_and_heartbeat(fsemu, agents, any_db):
    pbx1 = fsemu("pbx1", any_db.url)
    agent = agents("pbx1", pbx1, any_db)
    phones = pbx1.driver.register([str(n) for n in range(1000, 1020)])
    pbx1.driver.unregister(phones[:5])
    pbx1.driver.fail_auth(phones[5])
    call = pbx1.driver.call("1010", "1011")
    converged(pbx1, any_db, "pbx1")
    assert len(mirrored(any_db, "pbx1")) == 15
    with any_db.write.connect() as conn:
        row = conn.execute(select(cluster_registrations).where(
            cluster_registrations.c.call_id == phones[10].call_id)).one()
    assert (row.sip_user, row.profile_name, row.sip_realm) == ("1010", "vip1", "demo.local")
    assert len(mirrored(any_db, "pbx1", cluster_channels)) == 2
    pbx1.driver.hangup(call)
    gwait(lambda: len(mirrored(any_db, "pbx1", cluster_cdr_queue)) == 2, 10, "two CDRs queued")
    assert mirrored(any_db, "pbx1", cluster_channels) == set()

    def node_row():
        with any_db.write.connect() as conn:
            return conn.execute(select(cluster_nodes).where(
                cluster_nodes.c.node_name == "pbx1")).one_or_none()
    gwait(lambda: node_row() is not None and node_row().registrations == 15 and
          node_row().channels == 0, 5, "the heartbeat row")
    row = node_row()
    assert row.freeswitch_up and row.register_failures == 1
    assert agent.esl.connected


def test_kill_and_restart_mid_storm_converges_without_phantoms(fsemu, agents, sqlite_db):
    pbx1 = fsemu("pbx1", sqlite_db.url)
    agent = agents("pbx1", pbx1, sqlite_db)
    early = pbx1.driver.register([str(n) for n in range(2000, 2100)])
    errors = []

    def storm():
        try:
            pbx1.driver.register([str(n) for n in range(3000, 3600)], rate=1500)
        except Exception as exc:  # the switch dies under it: expected
            errors.append(exc)
    thread = threading.Thread(target=storm)
    thread.start()
    gwait(lambda: len(mirrored(sqlite_db, "pbx1")) >= 200, 20, "the storm to be under way")
    pbx1.kill()
    gwait(lambda: not agent.esl.connected, 10, "the agent to notice the kill")
    thread.join(60)
    pbx1.restart(keep_state=True)
    pbx1.driver.unregister(early[:30])          # changes around the reconnect
    pbx1.driver.register([str(n) for n in range(4000, 4050)])
    converged(pbx1, sqlite_db, "pbx1")
    assert len(truth(pbx1)) >= 120 and agent.supervisor.connects >= 2
    assert not {b.call_id for b in early[:30]} & mirrored(sqlite_db, "pbx1")


def test_restart_without_state_removes_phantoms(fsemu, agents, sqlite_db):
    pbx1 = fsemu("pbx1", sqlite_db.url)
    agents("pbx1", pbx1, sqlite_db)
    pbx1.driver.register([str(n) for n in range(1000, 1010)])
    pbx1.driver.call("1000", "1001")
    converged(pbx1, sqlite_db, "pbx1")
    pbx1.kill()
    pbx1.restart(keep_state=False)              # its DB rows are gone: no event says so
    converged(pbx1, sqlite_db, "pbx1")
    assert mirrored(sqlite_db, "pbx1") == set()
    assert mirrored(sqlite_db, "pbx1", cluster_channels) == set()


def test_hung_freeswitch_then_resume(fsemu, agents, sqlite_db):
    pbx1 = fsemu("pbx1", sqlite_db.url)
    agent = agents("pbx1", pbx1, sqlite_db)
    pbx1.hang()
    gwait(lambda: not agent.esl.connected, 15, "the hung switch to be dropped")
    pbx1.resume()
    pbx1.driver.register(["1000"])
    converged(pbx1, sqlite_db, "pbx1")
    assert mirrored(sqlite_db, "pbx1") == truth(pbx1) != set()


def test_three_agents_share_one_db(fsemu, agents, mariadb_db):
    switches = {name: fsemu(name, mariadb_db.url) for name in ("pbx1", "pbx2", "pbx3")}
    for name, switch in switches.items():
        agents(name, switch, mariadb_db)
    for index, (name, switch) in enumerate(switches.items()):
        switch.driver.register([str(1000 + 100 * index + n) for n in range(10)], expires=60)
    for name, switch in switches.items():
        converged(switch, mariadb_db, name)
    # pbx3's clock runs ahead: its sweep fires sofia::expire for every node's rows, deletes
    # only its own; pbx1's and pbx2's mirrors must not flap.
    switches["pbx3"].driver.advance(3600)
    switches["pbx3"].driver.sweep()
    switches["pbx2"].kill()
    switches["pbx2"].restart(keep_state=False)
    converged(switches["pbx3"], mariadb_db, "pbx3")
    converged(switches["pbx2"], mariadb_db, "pbx2")
    assert len(mirrored(mariadb_db, "pbx1")) == 10
    assert mirrored(mariadb_db, "pbx2") == set() and mirrored(mariadb_db, "pbx3") == set()


def test_switchname_mismatch_refuses_with_one_line(fsemu, sqlite_db, tmp_path):
    pbx1 = fsemu("pbx1", sqlite_db.url)
    config = tmp_path / "agent.ini"
    config.write_text(f"[node]\nname = pbx2\n[esl]\nport = {pbx1.port}\ntimeout = 2\n"
                      f"[agent]\nsocket = {tmp_path}/agent.sock\n[log]\nformat = text\n")
    env = dict(os.environ, FSCLUSTER_DB_URL=sqlite_db.url, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "esl_apps.agent", "--config", str(config)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fscluster-agent: FreeSWITCH at 127.0.0.1:")
    assert "switchname 'pbx1'" in last and "configured as 'pbx2'" in last
