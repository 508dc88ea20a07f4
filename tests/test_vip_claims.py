"""VIP leases in cluster_vips: claim, renew, release, refuse a live owner (sqlite + MariaDB)."""
import pytest
from sqlalchemy import select

from esl_apps import vip_claims
from fscluster.schema import cluster_vips


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_first_claim_then_takeover_after_lapse(any_db):
    clock = Clock()
    first = vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx1", 3, clock, clock.sleep)
    assert (first.former_owner, first.renewed, first.epoch) == (None, False, 1)
    clock.now += 10                       # pbx1 died: its lease lapsed
    second = vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock, clock.sleep)
    assert (second.former_owner, second.renewed, second.epoch) == ("pbx1", False, 2)
    assert vip_claims.owner(any_db, "vip1") == "pbx3"


def test_rerun_after_crash_half_way_remembers_the_former_owner(any_db):
    clock = Clock()
    vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx1", 3, clock, clock.sleep)
    clock.now += 10
    vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock, clock.sleep)
    again = vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock, clock.sleep)
    assert (again.former_owner, again.renewed, again.epoch) == ("pbx1", True, 2)


def test_live_owner_refuses_the_claim(any_db):
    clock = Clock()
    vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx1", 3, clock, clock.sleep)

    def sleep_while_owner_renews(seconds):
        clock.sleep(seconds)
        assert vip_claims.renew(any_db, "vip1", "pbx1", 3, clock)

    with pytest.raises(vip_claims.ClaimRefused, match="pbx1 still renews"):
        vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock,
                         sleep_while_owner_renews)
    assert vip_claims.owner(any_db, "vip1") == "pbx1"


def test_claim_waits_for_a_lapsing_lease(any_db):
    clock = Clock()
    vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx1", 3, clock, clock.sleep)
    clock.now += 2                        # 1 s of pbx1's lease left, and nobody renews it
    claimed = vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock, clock.sleep)
    assert claimed.former_owner == "pbx1" and clock.now >= 1003


def test_release_frees_at_once_and_renew_reports_a_lost_claim(any_db):
    clock = Clock()
    vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx3", 3, clock, clock.sleep)
    assert vip_claims.release(any_db, "vip1", "pbx3") is True
    assert vip_claims.release(any_db, "vip1", "pbx3") is False
    assert vip_claims.renew(any_db, "vip1", "pbx3", 3, clock) is False
    back = vip_claims.claim(any_db, "vip1", "198.18.0.101", "pbx1", 3, clock, clock.sleep)
    assert back.former_owner == "pbx3" and clock.now == 1000.0   # no wait after a release
    with any_db.write.connect() as conn:
        row = conn.execute(select(cluster_vips)).one()
    assert (row.owner_node, row.previous_owner, row.epoch) == ("pbx1", "pbx3", 2)
