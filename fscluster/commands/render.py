"""``fscluster render TARGET``: write the config files a PBX node runs, from fscluster's config.

Each target's renderer is a pure function ``(config, args) -> {filename: text}`` in its own
module (named below); this command only prints or writes what it returns.
"""
import importlib
import os

#: target -> (module, function, help)
TARGETS = {
    "xml_curl": ("fscluster.freeswitch_conf", "render_xml_curl",
                 "FreeSWITCH xml_curl.conf.xml: the binding to this node's xml_curl service"),
    "freeswitch": ("fscluster.freeswitch_conf", "render_freeswitch",
                   "FreeSWITCH: xml_curl, event_socket, switch.conf (switchname, core-db-dsn), "
                   "odbc.ini, VIP profile settings"),
    "keepalived": ("fscluster.keepalived_conf", "render",
                   "keepalived.conf: VRRP instances per VIP, unicast peers, health, notify"),
    "haproxy": ("fscluster.haproxy_conf", "render",
                "haproxy.cfg: Galera write (single writer) and read listeners, agent health checks"),
    "galera": ("fscluster.galera_conf", "render",
               "for each Galera node: the health-check user (SQL) and the agent's systemd unit"),
}


def register(sub):
    parser = sub.add_parser("render", help="write config files for HAProxy, keepalived, FreeSWITCH")
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--node", help="render for this node (default: node.name)")
    parser.add_argument("--out", help="directory to write into (default: print to stdout)")
    parser.set_defaults(func=render)


def render(config, args):
    module, function, _help = TARGETS[args.target]
    files = getattr(importlib.import_module(module), function)(config, args)
    for name, text in files.items():
        if args.out:
            path = os.path.join(args.out, name)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            print(f"wrote {path}")
        else:
            print(f"<!-- {name} -->" if name.endswith(".xml") else f"# {name}")
            print(text)
