"""Three PBX "hosts" as network namespaces on one bridge, each able to run real keepalived.

Topology (all names carry ``os.getpid()``, so parallel test runs never collide)::

    root namespace:  bridge fsb<pid>  198.19.<n>.1/24   <- services the nodes use (emulated
         |                                                FreeSWITCH ESL, agents) bind here
         +-- fv<pid>1 ==veth== eth0 in netns fsc<pid>pbx1  198.19.<n>.11/24
         +-- fv<pid>2 ==veth== eth0 in netns fsc<pid>pbx2  198.19.<n>.12/24
         +-- fv<pid>3 ==veth== eth0 in netns fsc<pid>pbx3  198.19.<n>.13/24
    VIPs: 198.19.<n>.101 (vip1), 198.19.<n>.102 (vip2), added/removed by keepalived on eth0.

Each namespace has its own loopback, so a process in it (keepalived and the scripts it runs:
``fscluster health``/``notify``) cannot reach 127.0.0.1 services of the root namespace. They
reach the root namespace over the bridge address instead, and the agents' control sockets
are Unix-domain sockets on the filesystem, which network namespaces do not separate.
Addresses come only from 198.18.0.0/15 (RFC 2544 benchmark range); ``<n>`` derives from the
pid. :meth:`close` removes everything even after a failure.
"""
import os
import shutil
import subprocess
from typing import Dict, List, Optional, Set

from fscluster.interfaces import interface_addresses
from tests.servers.proc import Server, wait_for

IP = shutil.which("ip") or "/usr/sbin/ip"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
INTERFACE = "eth0"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([IP, *args], capture_output=True, text=True, timeout=10, check=check)


class NetnsCluster:
    """The namespaces, the bridge and the per-node keepalived processes of one test run."""

    def __init__(self, workdir: str, nodes=("pbx1", "pbx2", "pbx3")):
        pid = os.getpid()
        self.workdir = workdir
        self.nodes = tuple(nodes)
        self.subnet = f"198.19.{pid % 250 + 1}"
        self.bridge = f"fsb{pid}"
        self.bridge_address = f"{self.subnet}.1"
        self.namespaces = {node: f"fsc{pid}{node}" for node in self.nodes}
        self.addresses = {node: f"{self.subnet}.{11 + i}" for i, node in enumerate(self.nodes)}
        self._veths = {node: f"fv{pid}{i + 1}" for i, node in enumerate(self.nodes)}
        self.keepalived: Dict[str, Server] = {}
        self._log_offsets: Dict[str, int] = {}

    def vip_address(self, index: int) -> str:
        """The address of the index-th VIP (1-based)."""
        return f"{self.subnet}.{100 + index}"

    # ------------------------------------------------------------------ set-up / tear-down
    def start(self) -> "NetnsCluster":
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for node, ns in self.namespaces.items():
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("link", "add", self._veths[node], "type", "veth", "peer", "name",
                    INTERFACE, "netns", ns)
                _ip("link", "set", self._veths[node], "master", self.bridge)
                _ip("link", "set", self._veths[node], "up")
                _ip("-n", ns, "addr", "add", f"{self.addresses[node]}/24", "dev", INTERFACE)
                _ip("-n", ns, "link", "set", INTERFACE, "up")
        except Exception:
            self.close()
            raise
        return self

    def close(self) -> None:
        for node in list(self.keepalived):
            self.kill_keepalived(node)
        for ns in self.namespaces.values():
            _ip("netns", "del", ns, check=False)      # takes the veth pair with it
        for veth in self._veths.values():
            _ip("link", "del", veth, check=False)
        _ip("link", "del", self.bridge, check=False)

    # ------------------------------------------------------------------ inside a namespace
    def exec_argv(self, node: str, argv: List[str]) -> List[str]:
        return [IP, "netns", "exec", self.namespaces[node], *argv]

    def interface_addresses(self, node: str) -> Set[str]:
        """IPv4 addresses on the node's eth0 right now (its own address plus held VIPs)."""
        return interface_addresses(INTERFACE, self.exec_argv(node, []))

    def holder(self, vip_address: str) -> Optional[str]:
        """The one node holding ``vip_address``; fails loudly if two hold it (split brain)."""
        holders = [node for node in self.nodes if vip_address in self.interface_addresses(node)]
        assert len(holders) <= 1, f"{vip_address} is on {holders}"
        return holders[0] if holders else None

    def wait_holder(self, vip_address: str, node: Optional[str], timeout: float = 15) -> None:
        wait_for(lambda: self.holder(vip_address) == node, timeout,
                 f"{vip_address} held by {node}")

    # ------------------------------------------------------------------ keepalived
    def start_keepalived(self, node: str, conf_text: str, env=None) -> Server:
        base = os.path.join(self.workdir, f"keepalived-{node}")
        os.makedirs(base, exist_ok=True)
        conf = os.path.join(base, "keepalived.conf")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(conf_text)
        argv = self.exec_argv(node, [
            KEEPALIVED, "-n", "-l", "-D", "-G", "-P", "-f", conf,
            "-p", os.path.join(base, "keepalived.pid"),
            "-r", os.path.join(base, "vrrp.pid")])
        log_path = os.path.join(base, "keepalived.log")
        self._log_offsets[node] = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        server = Server(f"keepalived-{node}", argv, log_path, env=env).start()
        self.keepalived[node] = server
        return server

    def _keepalived_log(self, node: str) -> str:
        path = os.path.join(self.workdir, f"keepalived-{node}", "keepalived.log")
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(self._log_offsets.get(node, 0))
            return handle.read()

    def wait_keepalived_state(self, node: str, instance: str, state: str,
                              timeout: float = 15) -> None:
        """keepalived logged ``(INSTANCE) Entering STATE STATE`` since it was last started."""
        wait_for(lambda: f"({instance}) Entering {state} STATE" in self._keepalived_log(node),
                 timeout, f"{instance} {state} on {node}")

    def keepalived_state(self, node: str, instance: str) -> Optional[str]:
        """The state keepalived last logged entering for ``instance`` (None: none yet)."""
        marker = f"({instance}) Entering "
        lines = [line for line in self._keepalived_log(node).splitlines() if marker in line]
        return lines[-1].split(marker, 1)[1].split()[0] if lines else None

    def kill_keepalived(self, node: str) -> None:
        """SIGKILL keepalived (parent and VRRP child), as a crashed host would."""
        server = self.keepalived.pop(node, None)
        if server:
            server.kill()

    def crash(self, node: str) -> None:
        """The host dies: keepalived is killed, its link goes down and, as after a reboot,
        no VIP is left configured on it (a SIGKILLed keepalived never removes its VIPs)."""
        self.kill_keepalived(node)
        ns = self.namespaces[node]
        _ip("-n", ns, "link", "set", INTERFACE, "down")
        for address in self.interface_addresses(node) - {self.addresses[node]}:
            _ip("-n", ns, "addr", "del", f"{address}/24", "dev", INTERFACE, check=False)

    def revive(self, node: str) -> None:
        """The host is back on the network (start its keepalived separately)."""
        _ip("-n", self.namespaces[node], "link", "set", INTERFACE, "up")

    def stop_keepalived(self, node: str) -> None:
        """Graceful stop: keepalived removes its VIPs and sends priority-0 adverts."""
        server = self.keepalived.pop(node, None)
        if server:
            server.stop(timeout=10)
