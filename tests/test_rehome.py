"""Registration re-homing and ghost-call cleanup, scoped to one profile (sqlite + MariaDB)."""
import pytest
from sqlalchemy import insert, select

from esl_apps import rehome
from fscluster.fs_tables import calls, channels, fs_metadata, registrations, sip_registrations
from fscluster.schema import cluster_channels, cluster_registrations

NOW = 1_800_000_000


@pytest.fixture
def db(any_db):
    fs_metadata.create_all(any_db.write)
    return any_db


def _reg(call_id, user, profile, host):
    contact = f'"{user}" <sip:{user}@198.18.5.1:5070;ob>'
    return (dict(call_id=call_id, sip_user=user, sip_host="demo.local", contact=contact,
                 profile_name=profile, hostname=host, orig_hostname=host, expires=NOW + 300,
                 network_ip="198.18.5.1", network_port="5070", status="Registered(UDP)"),
            dict(reg_user=user, realm="demo.local", token=call_id,
                 url=f"sofia/{profile}/sip:{user}@198.18.5.1:5070", expires=NOW + 300,
                 hostname=host),
            dict(call_id=call_id, node=host, profile_name=profile, sip_user=user,
                 sip_host="demo.local", contact=contact, status="Registered(UDP)",
                 network_ip="198.18.5.1", network_port="5070", expires=NOW + 300))


def _load(db, live, deleted_by_graceful_stop=()):
    with db.write.begin() as conn:
        for sip, core, mirror in live:
            conn.execute(insert(sip_registrations).values(**sip))
            conn.execute(insert(registrations).values(**core))
            conn.execute(insert(cluster_registrations).values(**mirror))
        for _sip, _core, mirror in deleted_by_graceful_stop:
            conn.execute(insert(cluster_registrations).values(**mirror))


def _rows(db, table, *cols):
    with db.write.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(*(table.c[c] for c in cols))))


def test_rehome_moves_only_the_profiles_rows_and_recreates_deleted_ones(db):
    _load(db, [_reg("a", "1000", "vip1", "pbx1"), _reg("b", "1001", "vip1", "pbx1"),
               _reg("c", "2000", "vip2", "pbx2")],
          deleted_by_graceful_stop=[_reg("d", "1002", "vip1", "pbx1"),
                                    _reg("e", "1003", "vip1", "pbx1")])
    with db.write.begin() as conn:
        counts = rehome.rehome_registrations(conn, "vip1", "pbx3", NOW)
    assert counts == {"sip_registrations": 2, "registrations": 2, "recreated": 2}
    assert _rows(db, sip_registrations, "call_id", "profile_name", "hostname", "orig_hostname") == [
        ("a", "vip1", "pbx3", "pbx3"), ("b", "vip1", "pbx3", "pbx3"), ("c", "vip2", "pbx2", "pbx2"),
        ("d", "vip1", "pbx3", "pbx3"), ("e", "vip1", "pbx3", "pbx3")]
    assert _rows(db, registrations, "token", "hostname", "url") == [
        ("a", "pbx3", "sofia/vip1/sip:1000@198.18.5.1:5070"),
        ("b", "pbx3", "sofia/vip1/sip:1001@198.18.5.1:5070"),
        ("c", "pbx2", "sofia/vip2/sip:2000@198.18.5.1:5070"),
        ("d", "pbx3", "sofia/vip1/sip:1002@198.18.5.1:5070"),
        ("e", "pbx3", "sofia/vip1/sip:1003@198.18.5.1:5070")]
    with db.write.begin() as conn:
        assert rehome.rehome_mirror(conn, "vip1", "pbx3", NOW) == 4
    assert _rows(db, cluster_registrations, "call_id", "node") == [
        ("a", "pbx3"), ("b", "pbx3"), ("c", "pbx2"), ("d", "pbx3"), ("e", "pbx3")]
    with db.write.begin() as conn:    # idempotent: a re-run changes nothing more
        again = rehome.rehome_registrations(conn, "vip1", "pbx3", NOW)
    assert again == {"sip_registrations": 0, "registrations": 0, "recreated": 0}


def test_expired_mirror_rows_are_not_recreated(db):
    sip, core, mirror = _reg("x", "1000", "vip1", "pbx1")
    with db.write.begin() as conn:
        conn.execute(insert(cluster_registrations).values(**dict(mirror, expires=NOW - 1)))
        assert rehome.rehome_registrations(conn, "vip1", "pbx3", NOW)["recreated"] == 0
    assert _rows(db, sip_registrations, "call_id") == []


def test_ghost_calls_of_the_profile_are_removed_other_profiles_kept(db):
    with db.write.begin() as conn:
        for uuid, name, host in [("g1", "sofia/vip1/1000@demo.local", "pbx1"),
                                 ("g2", "sofia/vip1/1001@demo.local", "pbx1"),
                                 ("r1", "sofia/vip1/1000@demo.local", "pbx3"),
                                 ("l1", "sofia/vip2/2000@demo.local", "pbx2"),
                                 ("l2", "sofia/vip2/2001@demo.local", "pbx2")]:
            conn.execute(insert(channels).values(uuid=uuid, name=name, hostname=host))
            conn.execute(insert(cluster_channels).values(
                uuid=uuid, node=host, profile_name=name.split("/")[1]))
        conn.execute(insert(calls).values(call_uuid="c1", caller_uuid="g1", callee_uuid="g2",
                                          hostname="pbx1"))
        conn.execute(insert(calls).values(call_uuid="c2", caller_uuid="l1", callee_uuid="l2",
                                          hostname="pbx2"))
        counts = rehome.remove_ghost_calls(conn, "vip1", "pbx3")
    assert counts == {"channels": 2, "calls": 1, "mirror_channels": 2}
    assert _rows(db, channels, "uuid") == [("l1",), ("l2",), ("r1",)]
    assert _rows(db, calls, "call_uuid") == [("c2",)]
    assert _rows(db, cluster_channels, "uuid") == [("l1",), ("l2",), ("r1",)]


def test_profile_names_are_matched_literally(db):
    """``_`` is a LIKE wildcard: profile ``vip_1`` must not match ``vipX1``."""
    sip, core, mirror = _reg("z", "1000", "vipX1", "pbx1")
    with db.write.begin() as conn:
        conn.execute(insert(registrations).values(**core))
        rehome.rehome_registrations(conn, "vip_1", "pbx3", NOW)
    assert _rows(db, registrations, "hostname") == [("pbx1",)]
