"""Which IPv4 addresses are on an interface right now: the ground truth of VIP ownership.

keepalived adds a VIP to the interface when its instance becomes MASTER and removes it when
it leaves; reading the interface (``ip -j -4 addr show dev IFACE``, iproute2's JSON output)
is therefore what the agent's reconcile loop and ``fscluster health`` trust, not a
remembered notification.
"""
import json
import shutil
import subprocess
from typing import List, Sequence, Set

from fscluster.errors import FsclusterError

IP = shutil.which("ip") or "/usr/sbin/ip"


class InterfaceError(FsclusterError):
    """The interface could not be read (missing, or ``ip`` failed)."""


def interface_addresses(interface: str, prefix: Sequence[str] = (), timeout: float = 2.0) -> Set[str]:
    """The IPv4 addresses on ``interface``; ``prefix`` wraps the command (``ip -n NS`` style
    tests use ``("ip", "netns", "exec", NS)``)."""
    try:
        done = subprocess.run([*prefix, IP, "-j", "-4", "addr", "show", "dev", interface],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterfaceError(f"reading addresses of {interface}: {exc}") from None
    if done.returncode != 0:
        raise InterfaceError(f"reading addresses of {interface}: "
                             f"{done.stderr.strip()[:200] or 'ip failed'}")
    try:
        links = json.loads(done.stdout or "[]")
    except ValueError:
        raise InterfaceError(f"reading addresses of {interface}: unparsable ip output") from None
    return {info["local"] for link in links for info in link.get("addr_info", [])
            if "local" in info}


def monitor_argv(interface: str) -> List[str]:
    """``ip -o monitor address dev IFACE``: one line per address added or deleted — lets the
    agent react the moment keepalived adds a VIP, before its ``notify`` script even starts."""
    return [IP, "-o", "monitor", "address", "dev", interface]
