"""``fscluster health`` decisions and ``fscluster notify`` argument handling."""
import pytest

from fscluster.commands.failover import parse_notify
from fscluster.config import Config
from fscluster.errors import FsclusterError
from fscluster.health import drained, problems, set_drain

VIP1, VIP2 = Config().vips


def test_freeswitch_down_is_unhealthy_for_every_vip():
    assert problems([VIP1], set(), set(), None) == [
        "FreeSWITCH does not answer on its event socket"]


def test_held_vip_needs_its_profile_running_a_backup_does_not():
    assert problems([VIP1, VIP2], {VIP1.address}, set(), {"vip1": "RUNNING (3)"}) == []
    assert problems([VIP1], set(), set(), {}) == []
    assert problems([VIP1], {VIP1.address}, set(), {"vip1": "DOWN (0)"}) == [
        "vip1 is held but its sofia profile is DOWN (0)"]
    assert problems([VIP2], {VIP2.address}, set(), {"vip1": "RUNNING (0)"}) == [
        "vip2 is held but its sofia profile is not loaded"]


def test_drain_marker_fails_only_that_vip(tmp_path):
    config = Config(agent_socket=str(tmp_path / "run" / "agent.sock"))
    set_drain(config, "vip1", True)
    assert drained(config, "vip1") and not drained(config, "vip2")
    assert problems([VIP1, VIP2], set(), {"vip1"}, {}) == ["vip1 is drained on this node"]
    set_drain(config, "vip1", False)
    set_drain(config, "vip1", False)          # idempotent
    assert not drained(config, "vip1")


def test_notify_arguments_as_keepalived_and_by_hand():
    assert parse_notify(["INSTANCE", "VI_vip1", "MASTER", "150"]) == \
        ("INSTANCE", "VI_vip1", "MASTER")
    assert parse_notify(["VI_vip2", "backup"]) == ("INSTANCE", "VI_vip2", "BACKUP")
    assert parse_notify(["GROUP", "G1", "FAULT", "0"])[0] == "GROUP"
    with pytest.raises(FsclusterError, match="expected"):
        parse_notify(["VI_vip1", "SLEEPING"])


def test_a_takeover_in_progress_is_not_a_dead_profile():
    assert problems([VIP1], {VIP1.address}, set(), {}, taking_over={"vip1"}) == []
