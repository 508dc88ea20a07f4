"""A real 3-node MariaDB Galera cluster on loopback, for tests that need the common storage.

Each node is a :class:`tests.servers.mariadb.MariaDB` with wsrep options: its own SQL, gcomm,
IST and SST ports (all free loopback ports), its own temporary datadir, SST by mariabackup
with a dedicated SST user. Node 1 bootstraps (``--wsrep-new-cluster``); nodes 2 and 3 join by
SST from an empty datadir. Every wait is on a condition (``wsrep_cluster_size``,
``wsrep_local_state_comment``), never a fixed sleep.

Destructive tests use :meth:`GaleraCluster.kill`, :meth:`stop`, :meth:`start` (rejoin by IST,
or SST when the donor's gcache no longer has the gap), :meth:`desync` and finish with
:meth:`restore`, which brings back 3 Synced nodes in a Primary component (re-bootstrapping
a surviving node with ``pc.bootstrap`` when quorum was lost), so one cluster serves a whole
session.
"""
import os
import re
import shutil
from typing import Dict, List, Optional

import pymysql

from tests.servers.mariadb import MARIADBD, MariaDB, TEST_PASSWORD, TEST_USER
from tests.servers.proc import free_port, wait_for

GALERA_PROVIDER = next((p for p in ("/usr/lib/galera/libgalera_smm.so",
                                    "/usr/lib/libgalera_smm.so") if os.path.exists(p)),
                       "/usr/lib/galera/libgalera_smm.so")
SST_USER, SST_PASSWORD = "fscluster_sst", "fscluster-sst-pw"
#: Failure detection tuned for loopback: a SIGKILLed node is evicted in ~3 s instead of the
#: default PT5S suspect + PT15S inactive timeouts (documented in docs/galera.md).
EVS_OPTIONS = ("evs.keepalive_period=PT0.5S; evs.suspect_timeout=PT2S; "
               "evs.inactive_timeout=PT3S; evs.inactive_check_period=PT0.5S")
#: Tools the mariabackup SST scripts run (scripts/install-system-deps.sh installs them).
SST_TOOLS = ("mariabackup", "mbstream", "socat", "wsrep_sst_mariabackup", "ss")
#: Error-log lines about views and node states: what a failing test prints.
_VIEW_WORDS = re.compile(r"view\(|NON-PRIMARY|non-Primary|New COMPONENT|Shifting|suspect"
                         r"|declaring .* stable|partitioned", re.I)


class GaleraNode(MariaDB):
    """One wsrep-enabled mariadbd; ``start(bootstrap=True)`` starts a new cluster."""

    def __init__(self, workdir: str, name: str):
        super().__init__(workdir, name)
        self.gcomm_port = free_port()
        self.ist_port = free_port()
        self.sst_port = free_port()
        self.cluster_address = ""

    def wsrep_args(self, bootstrap: bool) -> List[str]:
        provider_options = (f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}; "
                            f"ist.recv_addr=127.0.0.1:{self.ist_port}; "
                            f"gcache.size=64M; {EVS_OPTIONS}")
        args = ["--wsrep-on=ON", f"--wsrep-provider={GALERA_PROVIDER}",
                f"--wsrep-cluster-name=fscluster-test-{os.getpid()}",
                f"--wsrep-cluster-address={self.cluster_address}",
                f"--wsrep-node-name={self.name}",
                f"--wsrep-node-address=127.0.0.1:{self.gcomm_port}",
                f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
                f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
                f"--wsrep-provider-options={provider_options}",
                "--wsrep-sst-method=mariabackup",
                f"--wsrep-sst-auth={SST_USER}:{SST_PASSWORD}",
                "--wsrep-slave-threads=2", "--binlog-format=ROW",
                "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2"]
        return args + (["--wsrep-new-cluster"] if bootstrap else [])

    def argv(self) -> List[str]:
        # A defaults file of our own instead of --no-defaults: the SST scripts read their
        # [sst] options through my_print_defaults, which would otherwise read /etc/mysql
        # (Debian's [mysqld_safe] syslog sends SST errors to syslog, out of the test's sight).
        # innodb-buffer-pool-size moves there too: on the command line, the SST script
        # hands it to mariadb-backup, which rejects it ("unknown variable").
        args = [a for a in super().argv()[2:] if not a.startswith("--innodb-buffer-pool-size")]
        return [MARIADBD, f"--defaults-file={self.cnf}"] + args

    @property
    def cnf(self) -> str:
        return os.path.join(self.base, "my.cnf")

    def start(self, wait: bool = True, bootstrap: bool = False) -> "GaleraNode":
        os.makedirs(self.base, exist_ok=True)
        with open(self.cnf, "w", encoding="utf-8") as handle:
            handle.write("[mysqld]\ninnodb_buffer_pool_size=64M\n"
                         "[sst]\nsst-syslog=-1\nsst-log-archive=0\n")
        self.extra_args = self.wsrep_args(bootstrap)
        super().start(wait=False)
        if wait:
            self.wait_synced()
        return self

    def status(self) -> Dict[str, str]:
        """``SHOW GLOBAL STATUS LIKE 'wsrep_%'`` as a dict (raises if unreachable)."""
        return {name: value for name, value in self.sql("SHOW GLOBAL STATUS LIKE 'wsrep_%'")}

    def synced(self, cluster_size: Optional[int] = None) -> bool:
        status = self.status()
        return (status.get("wsrep_local_state_comment") == "Synced"
                and status.get("wsrep_ready") == "ON"
                and status.get("wsrep_cluster_status") == "Primary"
                and (cluster_size is None
                     or status.get("wsrep_cluster_size") == str(cluster_size)))

    def wait_synced(self, timeout: float = 180, cluster_size: Optional[int] = None) -> None:
        """Wait until Synced; fail at once (with the log tail) if mariadbd exits."""
        wait_for(lambda: self.server.alive() and self.synced(cluster_size),
                 timeout, f"{self.name} Synced (port {self.port})", interval=0.2)

    def connect(self, **kwargs) -> pymysql.connections.Connection:
        """A TCP connection as the test user (what clients and HAProxy see)."""
        return pymysql.connect(host="127.0.0.1", port=self.port, user=TEST_USER,
                               password=TEST_PASSWORD, connect_timeout=2, read_timeout=5,
                               write_timeout=5, autocommit=True, **kwargs)


class GaleraCluster:
    """Three :class:`GaleraNode` s in one cluster, and the operations failure tests need."""

    def __init__(self, workdir: str, size: int = 3):
        missing = [tool for tool in SST_TOOLS if not shutil.which(tool)]
        if missing:
            raise RuntimeError(f"Galera SST needs {', '.join(missing)}: run "
                               "scripts/install-system-deps.sh")
        self.base = os.path.join(workdir, f"galera-{os.getpid()}")
        self.nodes = [GaleraNode(self.base, f"db{i}") for i in range(1, size + 1)]
        address = "gcomm://" + ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.nodes)
        for node in self.nodes:
            node.cluster_address = address

    def node(self, name: str) -> GaleraNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> "GaleraCluster":
        first, *joiners = self.nodes
        first.install()
        first.start(wait=True, bootstrap=True)
        first.sql(f"CREATE USER IF NOT EXISTS '{SST_USER}'@'localhost' "
                  f"IDENTIFIED BY '{SST_PASSWORD}'")
        first.sql(f"GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICA MONITOR "
                  f"ON *.* TO '{SST_USER}'@'localhost'")
        first.sql(f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' "
                  f"IDENTIFIED BY '{TEST_PASSWORD}'")
        first.sql(f"GRANT ALL ON *.* TO '{TEST_USER}'@'127.0.0.1'")
        # Joiners get everything (system tables included) by SST: one at a time, as the
        # donor serves a single SST.
        for node in joiners:
            os.makedirs(node.datadir, exist_ok=True)
            node.start(wait=True)
        self.wait_healthy()
        return self

    @property
    def running(self) -> List[GaleraNode]:
        return [n for n in self.nodes if n.server and n.server.running]

    def wait_healthy(self, timeout: float = 180) -> None:
        """All nodes running, Synced, ready, Primary, cluster size = all of them."""
        size = len(self.nodes)
        wait_for(lambda: all(n.synced(size) for n in self.nodes), timeout,
                 f"{size} Galera nodes Synced", interval=0.2)

    def writer_candidates(self) -> List[GaleraNode]:
        return [n for n in self.running if _safe_synced(n)]

    def create_database(self, name: str) -> str:
        """A database on the cluster (replicated); the URL points at node 1 directly."""
        node = self.writer_candidates()[0]
        node.sql(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        return node.url(name)

    def kill(self, name: str, wait_evicted: bool = True) -> None:
        """SIGKILL the node, as a crash or power loss would; by default wait until the others
        have evicted it (a node restarted while the others still count it in the view makes
        the whole group go through a non-primary view)."""
        self.node(name).kill()
        if wait_evicted:
            self.wait_evicted()

    def view_changes(self, lines: int = 25) -> str:
        """The last view and state lines of every node's error log, for a failing test to
        print: which node saw which component, and when (the logs go with the session)."""
        out = []
        for node in self.nodes:
            try:
                with open(node.log_path, encoding="utf-8", errors="replace") as handle:
                    wanted = [line.rstrip() for line in handle if _VIEW_WORDS.search(line)]
            except OSError as exc:
                wanted = [f"(no log: {exc})"]
            out.append(f"--- {node.name}\n" + "\n".join(wanted[-lines:]))
        return "\n".join(out)

    def wait_evicted(self, timeout: float = 60) -> None:
        """Every running node's view holds exactly the running nodes (Primary or not)."""
        def evicted():
            running = self.running
            return all(n.status().get("wsrep_cluster_size") == str(len(running))
                       for n in running)
        wait_for(evicted, timeout, "dead Galera nodes evicted from the view", interval=0.2)

    def stop(self, name: str) -> None:
        """Clean shutdown: the node leaves the cluster gracefully."""
        self.node(name).stop()

    def start_node(self, name: str, wait: bool = True) -> None:
        """Restart a stopped/killed node; it rejoins by IST (or SST)."""
        node = self.node(name)
        node.start(wait=False)
        if wait:
            node.wait_synced(cluster_size=len(self.running))

    def desync(self, name: str, on: bool = True) -> None:
        """``SET GLOBAL wsrep_desync`` — the node stays up but leaves the Synced state."""
        node = self.node(name)
        node.sql(f"SET GLOBAL wsrep_desync={'ON' if on else 'OFF'}")
        if on:
            wait_for(lambda: node.status().get("wsrep_local_state_comment") != "Synced",
                     30, f"{name} desynced")

    def restore(self, timeout: float = 240) -> None:
        """Back to every node Synced in one Primary component, whatever a test did."""
        for node in self.running:
            try:
                node.sql("SET GLOBAL wsrep_desync=OFF")
            except pymysql.MySQLError:
                pass
        survivors = self.running
        if survivors and not any(_primary(n) for n in survivors):
            # Quorum lost: the documented recovery is to bootstrap the most advanced
            # survivor into a new Primary component, then let the others rejoin it.
            best = max(survivors, key=_last_committed)
            best.sql("SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")
            wait_for(lambda: _primary(best), 30, f"{best.name} Primary after pc.bootstrap")
        if not survivors:
            raise RuntimeError("every Galera node is down: nothing to rejoin")
        for node in self.nodes:
            if not (node.server and node.server.running):
                node.start(wait=False)
                node.wait_synced(timeout)
        self.wait_healthy(timeout)

    def teardown(self) -> None:
        for node in self.nodes:
            try:
                node.stop()
            except Exception:  # noqa: BLE001 - teardown must reach every node
                node.kill()


def _safe_synced(node: GaleraNode) -> bool:
    try:
        return node.synced()
    except Exception:  # noqa: BLE001 - a dead node is simply not a candidate
        return False


def _primary(node: GaleraNode) -> bool:
    try:
        return node.status().get("wsrep_cluster_status") == "Primary"
    except pymysql.MySQLError:
        return False


def _last_committed(node: GaleraNode) -> int:
    try:
        return int(node.status().get("wsrep_last_committed", "-1"))
    except (pymysql.MySQLError, ValueError):
        return -1
