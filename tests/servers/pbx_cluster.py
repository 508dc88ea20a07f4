"""Three PBX nodes for failover tests: per node a network namespace running real keepalived
and the real agent process, an emulated FreeSWITCH, and a cuttable path to the shared DB.

Where each piece runs (see docs/failover.md, "Test topology")::

    netns pbx<N> (eth0 198.19.<n>.1N):  keepalived (rendered config) -> fscluster health/notify
                                        fscluster-agent --config pbx<N>.ini (reads eth0 itself)
    root namespace, bridge 198.19.<n>.1: emulated FreeSWITCH of pbx<N> (ESL on the bridge address,
                                        ACL allowing the subnet), TCP proxy pbx<N> -> MariaDB
    filesystem:                          each agent's control socket (crosses namespaces)

The agent and its keepalived run in the namespace exactly as on a host: the agent reads the
VIPs on its own eth0, keepalived's scripts reach the agent socket and the emulator. The
emulators run in this process (their own threads and hubs) and share the test's MariaDB
directly on loopback; each agent reaches MariaDB through its own proxy, so a test can cut one
node from the DB. Everything is torn down in :meth:`close`, even after a failure.
"""
import os
import sys
from typing import Dict

from fsemu import Emulator, ProfileSettings
from fscluster.config import Config, Vip
from fscluster.keepalived_conf import render_keepalived_conf
from tests.servers.fsemu import emulator_settings
from tests.servers.netns import NetnsCluster
from tests.servers.proc import Server, wait_for
from tests.servers.tcpproxy import TcpProxy

BIN = os.path.dirname(sys.executable)
NODES = ("pbx1", "pbx2", "pbx3")


class PbxCluster:
    def __init__(self, workdir: str, mariadb, database: str, lease_seconds: float = 3):
        """``lease_seconds``: 3 in the tests (renewals survive a loaded CI machine); the
        benchmark uses the product default, which lapses before VRRP's detection time."""
        self.workdir = workdir
        self.lease_seconds = lease_seconds
        self.mariadb = mariadb
        self.database = database
        self.net = NetnsCluster(workdir, NODES)
        self.vips = (Vip("vip1", self.net.vip_address(1), 24, "pbx1", "pbx3", 51),
                     Vip("vip2", self.net.vip_address(2), 24, "pbx2", "pbx3", 52))
        self.emulators: Dict[str, Emulator] = {}
        self.proxies: Dict[str, TcpProxy] = {}
        self.agents: Dict[str, Server] = {}
        self.configs: Dict[str, Config] = {}
        self.ini: Dict[str, str] = {}

    @property
    def db_url(self) -> str:
        return self.mariadb.url(self.database)

    # ------------------------------------------------------------------ set-up
    def start(self) -> "PbxCluster":
        try:
            self.net.start()
            for node in NODES:
                self._start_emulator(node)
                self.proxies[node] = TcpProxy(self.net.bridge_address,
                                              ("127.0.0.1", self.mariadb.port))
                self._write_config(node)
            for node in NODES:
                self.start_agent(node)
            self._start_keepalived_rolling()
        except Exception:
            self.close()
            raise
        return self

    def _emulator_settings(self, node: str, port: int = 0):
        profiles = tuple(ProfileSettings(vip.name, sip_ip=vip.address, sip_port=5060)
                         for vip in self.vips)
        return emulator_settings(
            node, self.db_url, profiles=profiles, autostart_profiles=(),
            listen_ip=self.net.bridge_address, listen_port=port,
            acl=(f"127.0.0.0/8,{self.net.subnet}.0/24",))

    def _start_emulator(self, node: str) -> None:
        self.emulators[node] = Emulator(self._emulator_settings(node)).start(
            wait_profiles=False)

    def _write_config(self, node: str) -> None:
        base = os.path.join(self.workdir, node)
        os.makedirs(base, exist_ok=True)
        ini = os.path.join(base, "fscluster.ini")
        url = self.mariadb.url(self.database).replace(
            f"127.0.0.1:{self.mariadb.port}",
            f"{self.net.bridge_address}:{self.proxies[node].port}")
        vips = ", ".join(f"{v.name}={v.address}/{v.prefix}@{v.master}>{v.backup}"
                         for v in self.vips)
        addresses = ", ".join(f"{n}={a}" for n, a in self.net.addresses.items())
        with open(ini, "w", encoding="utf-8") as handle:
            handle.write(f"""[node]
name = {node}
interface = eth0
[db]
url = {url}
connect_timeout = 1
retry_seconds = 2
[esl]
host = {self.net.bridge_address}
port = {self.emulators[node].port}
timeout = 5
[cluster]
nodes = {", ".join(NODES)}
vips = {vips}
addresses = {addresses}
lease_seconds = {self.lease_seconds}
[keepalived]
fscluster_command = {BIN}/fscluster --config {ini}
[agent]
socket = {base}/run/agent.sock
[log]
format = text
""")
        self.ini[node] = ini
        self.configs[node] = Config(
            node_name=node, db_url=url, esl_host=self.net.bridge_address,
            esl_port=self.emulators[node].port, nodes=NODES, vips=self.vips,
            node_addresses=tuple(self.net.addresses.items()), lease_seconds=self.lease_seconds,
            fscluster_command=f"{BIN}/fscluster --config {ini}",
            agent_socket=f"{base}/run/agent.sock")

    def start_agent(self, node: str) -> None:
        argv = self.net.exec_argv(node, [f"{BIN}/fscluster-agent", "--config", self.ini[node]])
        server = Server(f"agent-{node}", argv,
                        os.path.join(self.workdir, node, "agent.log")).start()
        self.agents[node] = server
        socket_path = self.configs[node].agent_socket
        wait_for(lambda: server.alive() and os.path.exists(socket_path),
                 30, f"agent {node} control socket")

    def _start_keepalived_rolling(self) -> None:
        """Designated masters first, the passive node once they hold their VIPs. With
        ``nopreempt`` a simultaneous start is a race decided by 16 ms of priority skew
        (docs/failover.md, "Cold start"), which a loaded CI host loses now and then."""
        masters = [node for node in NODES if any(v.master == node for v in self.vips)]
        for node in masters:
            self.start_keepalived(node)
        for vip in self.vips:
            self.net.wait_holder(vip.address, vip.master, 30)
        for node in NODES:
            if node not in masters:
                self.start_keepalived(node)

    def start_keepalived(self, node: str) -> None:
        self.net.start_keepalived(node, render_keepalived_conf(self.configs[node], node))

    # ------------------------------------------------------------------ faults
    def crash(self, node: str) -> None:
        """The whole host dies: keepalived, FreeSWITCH and the agent, with no clean-up."""
        self.net.crash(node)
        self.emulators[node].kill()
        agent = self.agents.pop(node, None)
        if agent:
            agent.kill()

    def revive(self, node: str) -> None:
        """The host boots again: FreeSWITCH (no profile loaded), agent, keepalived."""
        self.net.revive(node)
        self.emulators[node].restart(wait_profiles=False)
        self.start_agent(node)
        self.start_keepalived(node)

    def cli(self, node: str, *args: str, timeout: float = 60):
        """``fscluster --config … ARGS`` inside the node's namespace (as an operator there)."""
        import subprocess
        argv = self.net.exec_argv(node, [f"{BIN}/fscluster", "--config", self.ini[node], *args])
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    # ------------------------------------------------------------------ views
    def profiles(self, node: str):
        return self.emulators[node].driver.profiles_running()

    def log_tails(self) -> str:
        parts = []
        for node in NODES:
            for name in ("agent.log", f"../keepalived-{node}/keepalived.log"):
                path = os.path.normpath(os.path.join(self.workdir, node, name))
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        parts.append(f"--- {path}\n" + "".join(handle.readlines()[-25:]))
                except OSError:
                    pass
        return "\n".join(parts)

    # ------------------------------------------------------------------ tear-down
    def close(self) -> None:
        for node in list(self.net.keepalived):
            self.net.kill_keepalived(node)
        for server in self.agents.values():
            server.stop(timeout=10)
        for emulator in self.emulators.values():
            emulator.stop()
        for proxy in self.proxies.values():
            proxy.close()
        self.net.close()
