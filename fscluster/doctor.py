"""What ``fscluster doctor`` checks on this node, and how: one :class:`Check` per component.

Each probe has a timeout and turns every failure into an unhealthy row with its reason, so
one dead component never hides the others. Parsing HAProxy's stats (CSV from ``show stat``,
the writer from ``show table``) is pure and tested without servers.
"""
import concurrent.futures
import csv
import dataclasses
import io
import re
import socket
from typing import Dict, List, Optional, Sequence, Tuple

from esl_apps import oneshot
from fscluster import galera_health
from fscluster.config import Config
from fscluster.haproxy_conf import READ_BACKEND, WRITE_BACKEND


@dataclasses.dataclass(frozen=True)
class Check:
    component: str
    target: str
    ok: bool
    detail: str


def galera_checks(config: Config, timeout: float) -> List[Check]:
    def one(db):
        health = galera_health.check(db.host, db.port, config.galera_check_user,
                                     config.galera_check_password, timeout)
        detail = health.reason if not health.ok else (
            f"{health.state}, {health.cluster_status}, size {health.cluster_size}, "
            f"ready {health.ready}")
        return Check(f"galera {db.name}", f"{db.host}:{db.port}", health.ok, detail)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(config.galera_nodes)) as pool:
        return list(pool.map(one, config.galera_nodes))


# --- HAProxy -------------------------------------------------------------------------

def haproxy_command(path: str, command: str, timeout: float) -> str:
    """One command on HAProxy's stats socket; the reply ends when HAProxy closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode("ascii") + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(chunk)


def parse_stat(text: str) -> List[Dict[str, str]]:
    """``show stat`` CSV (header line ``# pxname,svname,…``) as dicts."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def parse_stick_server(text: str) -> Optional[Tuple[str, str]]:
    """From ``show table galera_write``: (server_id, server_key) of the pinned writer."""
    match = re.search(r"server_id=(\d+)(?:.*?server_key=(\S+))?", text)
    return (match.group(1), match.group(2) or "") if match else None


def haproxy_rows(stats: List[Dict[str, str]], table: str) -> List[Check]:
    """Rows for the read listener's servers (they carry the checks) and the write listener."""
    rows = []
    for row in stats:
        if row.get("pxname") != READ_BACKEND or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        status = row.get("status", "")
        ok = status.startswith("UP")
        why = row.get("last_agt") or row.get("last_chk") or row.get("check_status") or ""
        rows.append(Check(f"haproxy {READ_BACKEND}/{row['svname']}", row.get("addr", ""), ok,
                          status if ok else f"{status}: {why}".rstrip(": ")))
    write = [r for r in stats if r.get("pxname") == WRITE_BACKEND
             and r.get("svname") not in ("FRONTEND", "BACKEND")]
    if write:
        pinned = parse_stick_server(table)
        writer = next((r["svname"] for r in write if pinned and (
            r.get("svname") == pinned[1] or r.get("sid") == pinned[0])), "")
        up = [r["svname"] for r in write if r.get("status", "").startswith("UP")]
        ok = bool(up)
        detail = (f"writer {writer or (up[0] if up else 'none')}; up: {', '.join(up)}"
                  if ok else "no Galera node is up: writes fail")
        rows.append(Check(f"haproxy {WRITE_BACKEND}", "", ok, detail))
    return rows


def haproxy_checks(config: Config, timeout: float) -> List[Check]:
    path = config.haproxy_stats_socket
    try:
        stats = parse_stat(haproxy_command(path, "show stat", timeout))
        table = haproxy_command(path, f"show table {WRITE_BACKEND}", timeout)
    except OSError as exc:
        return [Check("haproxy", path, False, f"stats socket: {exc.strerror or exc}")]
    rows = haproxy_rows(stats, table)
    return rows or [Check("haproxy", path, False, f"no {READ_BACKEND}/{WRITE_BACKEND} listeners")]


# --- memcached and the event socket --------------------------------------------------

def memcached_checks(servers: Sequence[Tuple[str, int]], timeout: float) -> List[Check]:
    rows = []
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(b"version\r\n")
                reply = sock.recv(256).decode("ascii", "replace").strip()
            ok = reply.startswith("VERSION ")
            rows.append(Check("memcached", f"{host}:{port}", ok,
                              reply if ok else f"unexpected reply {reply[:40]!r}"))
        except OSError as exc:
            rows.append(Check("memcached", f"{host}:{port}", False, _oserror(exc)))
    return rows


def esl_check(host: str, port: int, password: str, timeout: float) -> Check:
    """Connect, wait for ``auth/request``, authenticate: what the agent needs to work."""
    try:
        with oneshot.session(host, port, password, timeout):
            return Check("event socket", f"{host}:{port}", True, "auth accepted")
    except oneshot.OneShotError as exc:
        return Check("event socket", f"{host}:{port}", False, exc.reason)


def _oserror(exc: OSError) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    return exc.strerror or type(exc).__name__


def run(config: Config, timeout: float = 2.0) -> List[Check]:
    """Every check for this node, in table order."""
    return (galera_checks(config, timeout) + haproxy_checks(config, timeout)
            + memcached_checks(config.memcached_servers, timeout)
            + [esl_check(config.esl_host, config.esl_port, config.esl_password, timeout)])
