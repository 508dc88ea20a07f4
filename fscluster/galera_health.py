"""Is this Galera node fit to take traffic? One verdict, shared by the HAProxy agent and doctor.

A node whose port answers is not necessarily usable: a donor or desynced node
(``wsrep_local_state`` 2), a joiner, or a node in a non-primary component (quorum lost:
``wsrep_cluster_status`` non-Primary, ``wsrep_ready`` OFF) must not get reads or writes.
:func:`assess` is pure (status dict in, verdict out); :func:`read_status` is the one query,
with timeouts, that feeds it.
"""
import dataclasses
from typing import Mapping

import pymysql

#: wsrep_local_state 4 = Synced (Galera's numeric states: 1 Joining, 2 Donor/Desynced,
#: 3 Joined, 4 Synced).
SYNCED = "4"
STATUS_VARIABLES = ("wsrep_ready", "wsrep_connected", "wsrep_cluster_status",
                    "wsrep_local_state", "wsrep_local_state_comment", "wsrep_cluster_size")


@dataclasses.dataclass(frozen=True)
class Health:
    ok: bool
    reason: str      # why not (empty when ok)
    state: str = ""  # wsrep_local_state_comment
    cluster_status: str = ""
    cluster_size: str = ""
    ready: str = ""


def assess(status: Mapping[str, str]) -> Health:
    """The verdict for one node from its ``SHOW GLOBAL STATUS LIKE 'wsrep_%'`` values."""
    state = status.get("wsrep_local_state_comment", "")
    cluster_status = status.get("wsrep_cluster_status", "")
    facts = dict(state=state, cluster_status=cluster_status,
                 cluster_size=status.get("wsrep_cluster_size", ""),
                 ready=status.get("wsrep_ready", ""))
    if not status.get("wsrep_local_state"):
        return Health(False, "wsrep is off (not a Galera node)", **facts)
    if status.get("wsrep_connected") != "ON":
        return Health(False, "not connected to the cluster", **facts)
    if cluster_status != "Primary":
        return Health(False, f"{cluster_status or 'unknown'} component (quorum lost)", **facts)
    if status.get("wsrep_ready") != "ON":
        return Health(False, "wsrep_ready=OFF", **facts)
    if status.get("wsrep_local_state") != SYNCED:
        return Health(False, f"not Synced: {state or status.get('wsrep_local_state')}", **facts)
    return Health(True, "", **facts)


def read_status(host: str, port: int, user: str, password: str,
                timeout: float = 1.0) -> Mapping[str, str]:
    """The node's wsrep status variables (raises pymysql errors when unreachable)."""
    # ssl_disabled: PyMySQL's default "preferred" TLS builds an SSL context per connection
    # (~30 ms of CPU, see fscluster.db.pymysql_args) — on every check, every second or
    # faster, on the DB host, and inside the check's 1 s timeout. It talks to its own node.
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, ssl_disabled=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN %s", (STATUS_VARIABLES,))
            return {name.lower(): value for name, value in cur.fetchall()}
    finally:
        conn.close()


def check(host: str, port: int, user: str, password: str, timeout: float = 1.0) -> Health:
    """:func:`assess` of a live node; an unreachable node is unhealthy with the error as reason."""
    try:
        return assess(read_status(host, port, user, password, timeout))
    except (pymysql.MySQLError, OSError) as exc:
        return Health(False, f"unreachable: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"({args[0]}) {str(args[1]).splitlines()[0][:120]}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
