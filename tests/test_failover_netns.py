"""Failover end to end: real keepalived in network namespaces, the real agent process per node,
emulated FreeSWITCH per node, one MariaDB. See docs/failover.md for the topology."""
import json
import os
import shutil

import pytest
from sqlalchemy import select

from fscluster.db import Database
from fscluster.fs_tables import channels, recovery, registrations, sip_registrations
from fscluster.schema import cluster_events, cluster_nodes, cluster_vips
from tests.servers.pbx_cluster import PbxCluster
from tests.servers.proc import wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("keepalived"),
                                 reason="needs root (network namespaces) and keepalived")]

_count = iter(range(1, 1000))


@pytest.fixture
def cluster(mariadb_server, tmp_path):
    name = f"fo{os.getpid()}_{next(_count)}"
    mariadb_server.create_database(name)
    db = Database(mariadb_server.url(name))
    db.create_schema()
    rig = PbxCluster(str(tmp_path), mariadb_server, name)
    rig.db = db
    try:
        rig.start()
        yield rig
    finally:
        print(rig.log_tails())      # shown by pytest only when the test failed
        rig.close()
        db.dispose()


def rows(db, *columns, where=None):
    query = select(*columns)
    if where is not None:
        query = query.where(where)
    with db.write.connect() as conn:
        return conn.execute(query).fetchall()


def vip_owner(db, vip):
    found = rows(db, cluster_vips.c.owner_node, where=cluster_vips.c.vip_name == vip)
    return found[0][0] if found else None


def wait_serving(rig, vip, node, timeout=30):
    """keepalived gave ``vip`` to ``node`` and its agent finished the takeover."""
    address = rig.net.vip_address(int(vip[-1]))
    rig.net.wait_holder(address, node, timeout)
    wait_for(lambda: vip in rig.profiles(node) and vip_owner(rig.db, vip) == node
             and last_event(rig.db, vip)[:2] == ("takeover", node), timeout,
             f"{vip} served by {node}")


def last_event(db, vip):
    """(kind, node, detail) of the VIP's latest takeover/release."""
    with db.write.connect() as conn:
        found = conn.execute(
            select(cluster_events.c.kind, cluster_events.c.node, cluster_events.c.detail)
            .where(cluster_events.c.vip == vip).order_by(cluster_events.c.event_id.desc())
            .limit(1)).first()
    return tuple(found) if found else (None, None, None)


def hostnames(db, profile):
    return sorted(r[0] for r in rows(db, sip_registrations.c.hostname,
                                     where=sip_registrations.c.profile_name == profile))


def test_failover_of_an_active_node_and_back(cluster):
    rig, db = cluster, cluster.db
    wait_serving(rig, "vip1", "pbx1")
    wait_serving(rig, "vip2", "pbx2")
    wait_for(lambda: rows(db, cluster_nodes.c.role, where=cluster_nodes.c.node_name == "pbx3")
             == [("passive",)], 15, "pbx3 marked passive")
    users1 = [str(1000 + i) for i in range(20)]
    users2 = [str(2000 + i) for i in range(10)]
    rig.emulators["pbx1"].driver.register(users1, profile="vip1")
    rig.emulators["pbx2"].driver.register(users2, profile="vip2")
    pbx1_calls = rig.emulators["pbx1"].driver.calls(2, profile="vip1")
    rig.emulators["pbx2"].driver.call("2000", "2001", profile="vip2")
    pbx2_runtime = rig.emulators["pbx2"].core_uuid
    assert len(rows(db, recovery.c.uuid, where=recovery.c.hostname == "pbx1")) == 4

    # -- pbx1 dies: vip1 moves to pbx3, which takes over registrations and calls
    rig.crash("pbx1")
    wait_serving(rig, "vip1", "pbx3")
    assert hostnames(db, "vip1") == ["pbx3"] * 20                      # none lost or doubled
    assert len({r[0] for r in rows(db, sip_registrations.c.call_id,
                                   where=sip_registrations.c.profile_name == "vip1")}) == 20
    core = rows(db, registrations.c.hostname, where=registrations.c.url.like("sofia/vip1/%"))
    assert sorted(r[0] for r in core) == ["pbx3"] * 20
    recovered = rows(db, recovery.c.hostname, where=recovery.c.profile_name == "vip1")
    assert sorted(r[0] for r in recovered) == ["pbx3"] * 4
    assert rows(db, channels.c.uuid, where=channels.c.hostname == "pbx1") == []   # no ghosts
    assert sorted(r[0] for r in rows(db, channels.c.uuid, where=channels.c.hostname == "pbx3")) \
        == sorted(u for call in pbx1_calls for u in call.uuids)
    # pbx2's live call and registrations were left alone
    assert hostnames(db, "vip2") == ["pbx2"] * 10
    assert sorted(r[0] for r in rows(db, recovery.c.runtime_uuid,
                                     where=recovery.c.profile_name == "vip2")) == [pbx2_runtime] * 2
    assert rig.emulators["pbx2"].driver.api("show channels count").strip().startswith("2 total")
    detail = json.loads(last_event(db, "vip1")[2])
    assert detail["former_owner"] == "pbx1" and detail["recovered_calls"] == 4
    assert detail["ghosts"]["channels"] == 4 and detail["recovery_confirmed"]
    assert set(detail["steps_ms"]) == {"claim", "registrations", "profile", "recover", "announce",
                                      "mirror"}

    # -- pbx1 comes back: nopreempt, vip1 stays on pbx3 until failback
    rig.revive("pbx1")
    wait_for(lambda: rows(db, cluster_nodes.c.role, cluster_nodes.c.last_seen,
                          where=cluster_nodes.c.node_name == "pbx1")[0][0] == "passive", 20,
             "pbx1 agent back and passive")
    rig.net.wait_keepalived_state("pbx1", "VI_vip1", "BACKUP", 20)
    assert rig.net.holder(rig.net.vip_address(1)) == "pbx3"

    # -- pbx2 dies too: pbx3 holds both
    rig.crash("pbx2")
    wait_serving(rig, "vip2", "pbx3")
    assert hostnames(db, "vip2") == ["pbx3"] * 10
    assert rig.net.holder(rig.net.vip_address(1)) == "pbx3"
    status = rig.cli("pbx3", "status")
    assert status.returncode == 0 and "pbx3  active   vip1,vip2" in status.stdout, status.stdout

    # -- releasing vip2 keeps vip1's registrations on pbx3
    done = rig.cli("pbx3", "release", "vip2")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: "vip2" not in rig.profiles("pbx3"), 20, "vip2 profile stopped on pbx3")
    assert rig.profiles("pbx3") == ["vip1"]
    assert hostnames(db, "vip1") == ["pbx3"] * 20

    # -- failback: vip1 goes home to pbx1 with its registrations
    done = rig.cli("pbx3", "failback", "vip1")
    assert done.returncode == 0, done.stderr
    wait_serving(rig, "vip1", "pbx1")
    wait_for(lambda: hostnames(db, "vip1") == ["pbx1"] * 20, 10, "vip1 rows re-homed to pbx1")
    wait_for(lambda: "vip1" not in rig.profiles("pbx3"), 20, "vip1 released by pbx3")


def test_dead_freeswitch_under_a_live_keepalived_moves_the_vip(cluster):
    rig, db = cluster, cluster.db
    wait_serving(rig, "vip2", "pbx2")
    rig.emulators["pbx2"].driver.register([str(2000 + i) for i in range(5)], profile="vip2")
    rig.emulators["pbx2"].kill()            # FreeSWITCH only: keepalived and agent live on
    rig.net.wait_keepalived_state("pbx2", "VI_vip2", "FAULT", 20)   # its track_script failed
    wait_serving(rig, "vip2", "pbx3")
    assert hostnames(db, "vip2") == ["pbx3"] * 5
    assert rig.net.holder(rig.net.vip_address(1)) == "pbx1"        # vip1 never moved


def test_node_cut_from_the_db_does_not_claim(cluster):
    rig, db = cluster, cluster.db
    wait_serving(rig, "vip1", "pbx1")
    rig.emulators["pbx1"].driver.register(["1000", "1001"], profile="vip1")
    rig.proxies["pbx3"].set_cut(True)
    rig.crash("pbx1")
    # VRRP still gives vip1 to pbx3, but pbx3 cannot write its claim: it serves nothing, its
    # health check fails (address held, profile not running) and keepalived faults it.
    rig.net.wait_keepalived_state("pbx3", "VI_vip1", "MASTER", 20)
    rig.net.wait_keepalived_state("pbx3", "VI_vip1", "FAULT", 20)
    assert "vip1" not in rig.profiles("pbx3")
    assert vip_owner(db, "vip1") == "pbx1"
    assert hostnames(db, "vip1") == ["pbx1", "pbx1"]
    # back on the DB, pbx3 serves vip1 once keepalived gives it again
    rig.proxies["pbx3"].set_cut(False)
    wait_serving(rig, "vip1", "pbx3", timeout=40)
    assert hostnames(db, "vip1") == ["pbx3", "pbx3"]
