"""Real HAProxy with the config ``fscluster render haproxy`` writes, in front of the test
Galera cluster, plus one ``fscluster galera agent`` per DB node (as on real DB hosts).

Everything listens on free loopback ports; the stats socket lives in the test's workdir.
:attr:`GaleraFront.config` is the fscluster Config a PBX on this box would have (DB URLs
through HAProxy), for services and tests to use.
"""
import os
import sys

import pymysql

from fscluster import config as config_mod
from fscluster import galera_conf
from fscluster.doctor import haproxy_command, parse_stat
from fscluster.haproxy_conf import render_cfg
from tests.servers.galera import GaleraCluster
from tests.servers.mariadb import TEST_PASSWORD, TEST_USER
from tests.servers.proc import Server, free_port, port_open, wait_for

HAPROXY = "/usr/sbin/haproxy"
#: The health-check user; the quote in the password proves the rendered SQL escapes it.
CHECK_USER, CHECK_PASSWORD = "fscluster_check", "check-'pw"


class GaleraFront:
    def __init__(self, workdir: str, cluster: GaleraCluster, database: str):
        self.cluster = cluster
        self.base = os.path.join(workdir, f"haproxy-{os.getpid()}")
        os.makedirs(self.base, exist_ok=True)
        self.write_port, self.read_port = free_port(), free_port()
        self.agent_ports = {n.name: free_port() for n in cluster.nodes}
        self.stats_socket = os.path.join(self.base, "stats.sock")
        nodes = ", ".join(f"{n.name}=127.0.0.1:{n.port}/{self.agent_ports[n.name]}"
                          for n in cluster.nodes)
        self.env = {
            "FSCLUSTER_GALERA_NODES": nodes,
            "FSCLUSTER_GALERA_CHECK_USER": CHECK_USER,
            "FSCLUSTER_GALERA_CHECK_PASSWORD": CHECK_PASSWORD,
            "FSCLUSTER_HAPROXY_WRITE_LISTEN": f"127.0.0.1:{self.write_port}",
            "FSCLUSTER_HAPROXY_READ_LISTEN": f"127.0.0.1:{self.read_port}",
            "FSCLUSTER_HAPROXY_STATS_SOCKET": self.stats_socket,
            "FSCLUSTER_DB_URL": self.url(database, self.write_port),
            "FSCLUSTER_DB_READ_URL": self.url(database, self.read_port),
            "FSCLUSTER_LOG_FORMAT": "text",
        }
        self.config = config_mod.load(environ=self.env)
        self.cfg_path = os.path.join(self.base, "haproxy.cfg")
        self.agents = {}
        self.haproxy = None

    @staticmethod
    def url(database: str, port: int) -> str:
        return f"mysql+pymysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{port}/{database}"

    def start(self) -> "GaleraFront":
        self.create_check_user()
        env = dict(os.environ, **self.env)
        for node in self.cluster.nodes:
            port = self.agent_ports[node.name]
            agent = Server(f"agent-{node.name}",
                           [sys.executable, "-m", "fscluster.cli", "galera", "agent",
                            "--listen", f"127.0.0.1:{port}", "--mysql", f"127.0.0.1:{node.port}"],
                           os.path.join(self.base, f"agent-{node.name}.log"), env=env)
            self.agents[node.name] = agent.start()
        for port in self.agent_ports.values():
            wait_for(lambda: port_open(port), 20, f"galera agent on {port}")
        with open(self.cfg_path, "w", encoding="utf-8") as handle:
            handle.write(render_cfg(self.config, "pbx1"))
        self.haproxy = Server("haproxy", [HAPROXY, "-db", "-f", self.cfg_path],
                              os.path.join(self.base, "haproxy.log")).start()
        wait_for(lambda: port_open(self.write_port) and os.path.exists(self.stats_socket), 20,
                 "haproxy listening")
        self.wait_servers_up()
        return self

    def create_check_user(self) -> None:
        """What an operator does once: run ``fscluster render galera``'s SQL on one node."""
        sql = galera_conf.render(self.config)["galera-check-user.sql"]
        node = self.cluster.writer_candidates()[0]
        for line in sql.splitlines():
            if line and not line.startswith("--"):
                node.sql(line.rstrip(";"))

    def servers(self, backend: str = "galera_read") -> dict:
        """{server: status} from the stats socket (``UP``, ``DOWN``, ``UP 1/2``…)."""
        return {row["svname"]: row["status"]
                for row in parse_stat(haproxy_command(self.stats_socket, "show stat", 2))
                if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_servers_up(self, timeout: float = 30) -> None:
        wait_for(lambda: all(status == "UP" for backend in ("galera_read", "galera_write")
                             for status in self.servers(backend).values()), timeout,
                 "every Galera node UP in both HAProxy listeners")

    def wait_status(self, server: str, prefix: str, timeout: float = 30) -> None:
        wait_for(lambda: self.servers().get(server, "").startswith(prefix), timeout,
                 f"HAProxy sees {server} {prefix}")

    def stop(self) -> None:
        if self.haproxy:
            self.haproxy.stop()
        for agent in self.agents.values():
            agent.stop()


def backend_server_of(port: int, sql: str = "SELECT @@wsrep_node_name") -> str:
    """Which Galera node a new connection through HAProxy's ``port`` lands on."""
    conn = pymysql.connect(host="127.0.0.1", port=port, user=TEST_USER, password=TEST_PASSWORD,
                           connect_timeout=2, read_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()
