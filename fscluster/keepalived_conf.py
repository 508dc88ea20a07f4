"""Render each node's ``keepalived.conf`` from the cluster topology in the config.

keepalived is the engine that moves the VIPs; this module only decides its configuration:
one ``vrrp_instance VI_<vip>`` per VIP a node serves (master or backup), unicast peers (no
multicast needed between the PBX nodes), every instance starting as BACKUP with ``nopreempt``
so a node that returns does not take its VIP back (``fscluster failback`` does that by hand),
a ``track_script`` running ``fscluster health VIP`` so a dead FreeSWITCH or VIP profile (or an
operator's drain) moves the VIP, and a
``notify`` running ``fscluster notify`` so the agent hears every transition.

Facts (keepalived.conf(5), keepalived 2.2): the generic ``notify`` script receives
``INSTANCE|GROUP NAME STATE PRIORITY`` after its configured arguments, STATE one of
MASTER/BACKUP/FAULT/STOP/DELETED; ``nopreempt`` requires the initial state not to be MASTER.
"""
from typing import Dict, List

from fscluster.config import Config, Vip
from fscluster.errors import ConfigError

#: High priorities on purpose: a backup declares the master dead after
#: 3 × advert_int + (256 − its priority) / 256 × advert_int (RFC 3768 §6.1 skew); 250 makes
#: that skew 23 ms instead of 610 ms at priority 100. Only their order decides who wins an
#: election; 255 is reserved for the address owner.
MASTER_PRIORITY = 254
BACKUP_PRIORITY = 250
#: Failed health runs (one per second) before keepalived faults the instance; leaves a
#: fresh takeover time to bring the profile up before its own health check counts.
HEALTH_FALL = 3
HEALTH_RISE = 2
#: Seconds keepalived lets one health run take (a run over it counts as a failure); the
#: check bounds its own calls to ~1.5 s, the rest is slack for a loaded host.
HEALTH_TIMEOUT = 3


def instance_name(vip: Vip) -> str:
    """The vrrp_instance name keepalived passes to ``notify`` for this VIP."""
    return f"VI_{vip.name}"


def health_script(vip: Vip) -> str:
    """One ``vrrp_script`` per VIP, so draining or a dead profile moves only that VIP."""
    return f"fscluster_health_{vip.name}"


def vip_for_instance(config: Config, name: str) -> Vip:
    """The VIP behind a keepalived instance name (``VI_vip1``) or a bare VIP name."""
    for vip in config.vips:
        if name in (instance_name(vip), vip.name):
            return vip
    raise ConfigError(f"no VIP for keepalived instance {name!r}")


def vips_served_by(config: Config, node: str) -> List[Vip]:
    return [vip for vip in config.vips if node in (vip.master, vip.backup)]


def render_keepalived_conf(config: Config, node: str) -> str:
    if node not in config.nodes:
        raise ConfigError(f"render keepalived: {node!r} is not in cluster.nodes")
    own_address = config.node_address(node)
    command = config.fscluster_command
    served = vips_served_by(config, node)
    lines = [
        f"# keepalived.conf for {node}, rendered by `fscluster render keepalived`.",
        "global_defs {",
        f"    router_id {node}",
        "    script_user root",
        "    enable_script_security",
        "}",
    ]
    for vip in served:
        lines += [
            "",
            f"vrrp_script {health_script(vip)} {{",
            f'    script "{command} health {vip.name}"',
            "    interval 1",
            f"    timeout {HEALTH_TIMEOUT}",
            f"    fall {HEALTH_FALL}",
            f"    rise {HEALTH_RISE}",
            "}",
        ]
    for vip in served:
        peers = [config.node_address(other) for other in (vip.master, vip.backup)
                 if other != node]
        priority = MASTER_PRIORITY if vip.master == node else BACKUP_PRIORITY
        lines += [
            "",
            f"vrrp_instance {instance_name(vip)} {{",
            "    state BACKUP",
            "    nopreempt",
            f"    interface {config.interface}",
            f"    virtual_router_id {vip.router_id}",
            f"    priority {priority}",
            f"    advert_int {config.advert_int}",
            f"    unicast_src_ip {own_address}",
            "    unicast_peer {",
            *(f"        {peer}" for peer in peers),
            "    }",
            "    virtual_ipaddress {",
            f"        {vip.address}/{vip.prefix} dev {config.interface}",
            "    }",
            "    track_script {",
            f"        {health_script(vip)}",
            "    }",
            f'    notify "{command} notify"',
            "}",
        ]
    return "\n".join(lines) + "\n"


def render(config: Config, args) -> Dict[str, str]:
    """``fscluster render keepalived``: this node's file, or every node's with ``--node all``."""
    node = getattr(args, "node", None) or config.node_name
    nodes = config.nodes if node == "all" else (node,)
    if len(nodes) == 1:
        return {"keepalived.conf": render_keepalived_conf(config, nodes[0])}
    return {f"{name}/keepalived.conf": render_keepalived_conf(config, name) for name in nodes}
