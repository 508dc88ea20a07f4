"""``fscluster status``: nodes, leases, per-node counts and the last failover, from the DB."""
import json

from sqlalchemy import insert

from fscluster.config import Config
from fscluster.fs_tables import channels, fs_metadata, sip_registrations
from fscluster.schema import cluster_events, cluster_nodes, cluster_vips
from fscluster.status import cluster_status, render_status


def test_status_before_freeswitch_created_its_tables(sqlite_db):
    status = cluster_status(sqlite_db, Config(), now=100)
    assert [n["role"] for n in status["nodes"]] == ["unknown"] * 3
    assert "last failover: none recorded" in render_status(status)


def test_status_counts_per_node_and_shows_the_last_takeover(any_db):
    fs_metadata.create_all(any_db.write)
    with any_db.write.begin() as conn:
        conn.execute(insert(cluster_nodes), [
            dict(node_name="pbx1", role="active", vips="vip1", last_seen=95.0),
            dict(node_name="pbx3", role="active", vips="vip2", last_seen=99.5)])
        conn.execute(insert(cluster_vips).values(vip_name="vip2", address="198.18.0.102",
                                                 owner_node="pbx3", previous_owner="pbx2",
                                                 lease_expires=101.5, epoch=3))
        conn.execute(insert(sip_registrations), [dict(call_id=str(i), hostname="pbx3")
                                                 for i in range(3)])
        conn.execute(insert(channels).values(uuid="u", hostname="pbx1"))
        conn.execute(insert(cluster_events).values(
            created_at=99.0, node="pbx3", kind="takeover", vip="vip2", from_node="pbx2",
            duration_ms=212.5, detail=json.dumps({"steps_ms": {"claim": 3.0, "profile": 40.0}})))
    status = cluster_status(any_db, Config(), now=100)
    by_node = {n["node"]: n for n in status["nodes"]}
    assert (by_node["pbx3"]["registrations"], by_node["pbx1"]["channels"]) == (3, 1)
    assert by_node["pbx2"]["role"] == "unknown" and by_node["pbx3"]["seen_ago"] == 0.5
    assert status["vips"][0]["lease_left"] == 1.5
    text = render_status(status)
    assert "takeover of vip2 by pbx3 from pbx2" in text
    assert "in 212.5 ms (claim 3.0 ms, profile 40.0 ms)" in text
