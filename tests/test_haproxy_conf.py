"""The rendered haproxy.cfg: single writer with backups pinned by a stick table, reads over
every node, Galera-aware agent checks; and HAProxy itself accepts it (``haproxy -c``)."""
import subprocess

import pytest

from fscluster import config as config_mod
from fscluster.errors import ConfigError
from fscluster.haproxy_conf import render, render_cfg
from tests.servers.haproxy import HAPROXY

ENV = {"FSCLUSTER_GALERA_NODES": "db1=198.18.1.11:3306, db2=198.18.1.12:3306/9201, "
                                 "db3=198.18.1.13:3316",
       "FSCLUSTER_HAPROXY_WRITE_LISTEN": "127.0.0.1:13306",
       "FSCLUSTER_HAPROXY_READ_LISTEN": "127.0.0.1:13307",
       "FSCLUSTER_HAPROXY_STATS_SOCKET": "/run/test/h.sock"}


def _cfg():
    return render_cfg(config_mod.load(environ=ENV), "pbx1")


def _section(text, name):
    block = text.split(f"listen {name}\n", 1)[1]
    return block.split("\n\n", 1)[0].splitlines()


def test_write_listener_has_one_writer_and_backups_pinned_by_stick_table():
    lines = _section(_cfg(), "galera_write")
    assert "    bind 127.0.0.1:13306" in lines
    servers = [line.split() for line in lines if line.strip().startswith("server ")]
    assert [s[1] for s in servers] == ["db1", "db2", "db3"]
    assert "backup" not in servers[0] and all("backup" in s for s in servers[1:])
    assert all("agent-check" in s for s in servers)  # its own checks: see haproxy_conf
    table = next(line for line in lines if "stick-table" in line).split()
    assert int(table[table.index("size") + 1]) >= 2 and "nopurge" in table
    assert "    stick on int(1)" in lines


def test_read_listener_balances_over_all_nodes_with_agent_checks():
    lines = _section(_cfg(), "galera_read")
    assert "    bind 127.0.0.1:13307" in lines
    servers = {line.split()[1]: line for line in lines if line.strip().startswith("server ")}
    assert "198.18.1.13:3316" in servers["db3"]
    assert "agent-port 9200" in servers["db1"] and "check port 9200" in servers["db1"]
    assert "agent-port 9201" in servers["db2"]
    assert all("agent-check" in line and "backup" not in line for line in servers.values())


def test_down_node_sessions_cut_refused_connects_redispatched_stats_socket_rendered():
    text = _cfg()
    assert "on-marked-down shutdown-sessions" in text
    assert "option redispatch 1" in text  # a refused connect moves on at once
    assert "observe layer4 error-limit 1 on-error mark-down" in text
    assert "stats socket /run/test/h.sock" in text
    assert "on-marked-up shutdown-backup-sessions" not in text  # no failback mid-traffic


def test_render_target_returns_haproxy_cfg():
    files = render(config_mod.load(environ=ENV), None)
    assert list(files) == ["haproxy.cfg"] and files["haproxy.cfg"].startswith("# haproxy.cfg")


def test_haproxy_accepts_the_rendered_config(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(_cfg())
    result = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("value", ["db1", "db1=198.18.1.11:x", "=198.18.1.11:3306",
                                   "db1=198.18.1.11:3306,db1=198.18.1.12:3306",
                                   "db1=198.18.1.11:3306/0"])
def test_bad_galera_nodes_are_one_line_errors(value):
    with pytest.raises(ConfigError, match="galera.nodes"):
        config_mod.load(environ={"FSCLUSTER_GALERA_NODES": value})
