"""keepalived.conf rendering: topology, unicast peers, nopreempt, per-VIP health, notify."""
import argparse

import pytest

from fscluster.config import Config, load
from fscluster.errors import ConfigError
from fscluster.keepalived_conf import render, render_keepalived_conf, vip_for_instance


def _instances(text):
    blocks = text.split("vrrp_instance ")[1:]
    return {b.split()[0]: b for b in blocks}


def test_default_topology_pbx3_backs_up_both():
    config = Config()
    assert list(_instances(render_keepalived_conf(config, "pbx1"))) == ["VI_vip1"]
    assert list(_instances(render_keepalived_conf(config, "pbx2"))) == ["VI_vip2"]
    pbx3 = _instances(render_keepalived_conf(config, "pbx3"))
    assert list(pbx3) == ["VI_vip1", "VI_vip2"]
    assert "unicast_peer {\n        198.18.0.11\n    }" in pbx3["VI_vip1"]
    assert "unicast_peer {\n        198.18.0.12\n    }" in pbx3["VI_vip2"]


def test_every_instance_starts_backup_nopreempt_and_master_has_higher_priority():
    config = Config()
    master = _instances(render_keepalived_conf(config, "pbx1"))["VI_vip1"]
    backup = _instances(render_keepalived_conf(config, "pbx3"))["VI_vip1"]
    for block in (master, backup):
        assert "state BACKUP" in block and "nopreempt" in block and "state MASTER" not in block
        assert "virtual_router_id 51" in block and "198.18.0.101/24 dev eth0" in block
    assert "priority 254" in master and "priority 250" in backup


def test_health_per_vip_and_notify_use_the_configured_command():
    config = load(environ={"FSCLUSTER_KEEPALIVED_FSCLUSTER_COMMAND":
                           "/opt/fscluster/bin/fscluster --config /etc/fscluster.ini"})
    text = render_keepalived_conf(config, "pbx3")
    assert 'script "/opt/fscluster/bin/fscluster --config /etc/fscluster.ini health vip2"' in text
    assert text.count('notify "/opt/fscluster/bin/fscluster --config /etc/fscluster.ini notify"') == 2
    assert "track_script {\n        fscluster_health_vip2\n    }" in \
        _instances(text)["VI_vip2"]


def test_addresses_from_config_and_errors_name_the_key():
    config = load(environ={"FSCLUSTER_CLUSTER_ADDRESSES":
                           "pbx1=198.19.7.11, pbx2=198.19.7.12, pbx3=198.19.7.13"})
    assert "unicast_src_ip 198.19.7.13" in render_keepalived_conf(config, "pbx3")
    with pytest.raises(ConfigError, match="cluster.addresses"):
        load(environ={"FSCLUSTER_CLUSTER_ADDRESSES": "pbx1=not-an-ip"})
    with pytest.raises(ConfigError, match="not in cluster.nodes"):
        render_keepalived_conf(config, "pbx9")


def test_render_all_nodes_and_instance_lookup():
    files = render(Config(), argparse.Namespace(node="all"))
    assert sorted(files) == ["pbx1/keepalived.conf", "pbx2/keepalived.conf",
                             "pbx3/keepalived.conf"]
    assert vip_for_instance(Config(), "VI_vip2").name == "vip2"
    assert vip_for_instance(Config(), "vip1").name == "vip1"
    with pytest.raises(ConfigError):
        vip_for_instance(Config(), "VI_other")
