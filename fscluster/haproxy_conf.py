"""``fscluster render haproxy``: the haproxy.cfg every PBX runs in front of the Galera cluster.

Two listeners (see docs/galera.md for the facts and sources):

* write (127.0.0.1:3306): one Galera node takes every write, the others are ``backup``, so
  two PBXs never write through different nodes (no certification conflicts between them).
  A stick table with one key pins the writer: after a failover the backup that took over
  keeps the role when the old writer comes back, instead of writes flapping back
  mid-traffic.
* read (127.0.0.1:3307): least-connections over every node that is up.

Health, on every server line: a plain check on the agent port (the host is alive) plus
``agent-check`` against ``fscluster galera agent`` on each DB node, which answers
``down # <reason>`` for a node that is up but not Synced/ready/Primary. Live traffic is
watched too (``observe layer4 … on-error mark-down``): the first refused connect marks a
node that just died down at once, so the next attempt goes to a backup instead of waiting
for the checks. ``on-marked-down shutdown-sessions`` cuts the sessions to a node that goes
down, so clients reconnect (and retry) at once instead of hanging.
"""
from fscluster.config import Config

READ_BACKEND = "galera_read"
WRITE_BACKEND = "galera_write"


def render(config: Config, args=None) -> dict:
    node = getattr(args, "node", None) or config.node_name
    return {"haproxy.cfg": render_cfg(config, node)}


def render_cfg(config: Config, node: str) -> str:
    read_host, read_port = config.haproxy_read_listen
    write_host, write_port = config.haproxy_write_listen
    lines = [
        f"# haproxy.cfg for {node}, rendered by `fscluster render haproxy`; do not edit.",
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        f"    stats socket {config.haproxy_stats_socket} mode 600 level admin",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option dontlognull",
        # A refused connect is retried on another node. Before a retry HAProxy waits
        # min(timeout connect, 1 s) (the turn-around timer), hence the short connect timeout
        # (DB nodes are on the LAN); by default it redispatches only on the last retry.
        "    retries 2",
        "    option redispatch 1",
        "    timeout connect 500ms",
        "    timeout check 2s",
        # Longer than the DB layer's pool_recycle, so HAProxy never cuts a pooled connection.
        "    timeout client 30m",
        "    timeout server 30m",
        "    default-server inter 1s fastinter 500ms downinter 1s rise 2 fall 2 "
        "on-marked-down shutdown-sessions observe layer4 error-limit 1 on-error mark-down",
        "",
        f"listen {READ_BACKEND}",
        f"    bind {read_host}:{read_port}",
        "    balance leastconn",
    ]
    lines += [_server(config, db) for db in config.galera_nodes]
    lines += [
        "",
        f"listen {WRITE_BACKEND}",
        f"    bind {write_host}:{write_port}",
        # Size 2, not 1: HAProxy allocates the new entry before merging it with the
        # existing one, so a full nopurge table would never record the new writer.
        "    stick-table type integer size 2 nopurge",
        "    stick on int(1)",
    ]
    # Checked here too (not ``track``): a backup only takes over once the writer is marked
    # down *in this listener*, and live-traffic observation needs the server's own checks.
    lines += [_server(config, db, backup=index > 0)
              for index, db in enumerate(config.galera_nodes)]
    return "\n".join(lines) + "\n"


def _server(config: Config, db, backup: bool = False) -> str:
    agent = config.agent_port(db)
    return (f"    server {db.name} {db.host}:{db.port}{' backup' if backup else ''} "
            f"check port {agent} agent-check agent-port {agent} agent-inter 1s")
