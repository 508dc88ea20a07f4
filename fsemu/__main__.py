"""``python -m fsemu``: one emulated FreeSWITCH as its own process (e.g. inside a netns).

Runs until SIGTERM/SIGINT (graceful: clients get the shutdown notice); SIGKILL behaves like
a crashed FreeSWITCH. ``--control-port`` adds the JSON-lines driver (see
:mod:`fsemu.control`) so a test in another process can register phones and place calls.
"""
import argparse
import logging
import signal
import sys
import threading

from fscluster import log as fslog
from fsemu.runtime import Emulator
from fsemu.settings import ProfileSettings, Settings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fsemu", description=__doc__.splitlines()[0])
    parser.add_argument("--switchname", required=True)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--listen-ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8021)
    parser.add_argument("--password", default="ClueCon")
    parser.add_argument("--acl", action="append",
                        help="apply-inbound-acl entry (comma-separated CIDRs); repeatable")
    parser.add_argument("--profile", action="append", default=[],
                        help="NAME[:SIP_IP[:SIP_PORT]] (repeatable; default vip1)")
    parser.add_argument("--no-autostart", action="store_true",
                        help="start no profile until 'sofia profile X start'")
    parser.add_argument("--xml-curl-url", help="fetch sofia.conf/gateways here on profile start")
    parser.add_argument("--heartbeat", type=float, default=20.0)
    parser.add_argument("--min-restart-uptime", type=float, default=10.0)
    parser.add_argument("--reg-sweep", type=float, default=30.0)
    parser.add_argument("--control-port", type=int, help="JSON-lines driver on this port")
    parser.add_argument("--control-ip", default="127.0.0.1")
    return parser.parse_args(argv)


def _profile(spec: str) -> ProfileSettings:
    name, _, rest = spec.partition(":")
    ip, _, port = rest.partition(":")
    return ProfileSettings(name, sip_ip=ip or "127.0.0.1", sip_port=int(port or 5060))


def settings_from(args) -> Settings:
    profiles = tuple(_profile(p) for p in args.profile) or (ProfileSettings("vip1"),)
    extra = {"acl": tuple(args.acl)} if args.acl else {}
    return Settings(switchname=args.switchname, db_url=args.db_url, password=args.password,
                    listen_ip=args.listen_ip, listen_port=args.port, profiles=profiles,
                    autostart_profiles=() if args.no_autostart else None,
                    xml_curl_url=args.xml_curl_url, heartbeat_interval=args.heartbeat,
                    min_restart_uptime=args.min_restart_uptime,
                    reg_sweep_interval=args.reg_sweep, **extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    fslog.setup("text", logging.INFO)
    emulator = Emulator(settings_from(args)).start(wait_profiles=not args.no_autostart)
    control = None
    if args.control_port:
        from fsemu.control import ControlServer
        control = ControlServer(emulator, args.control_ip, args.control_port).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("fsemu").info("fsemu running", extra={
        "switchname": args.switchname, "listen": f"{args.listen_ip}:{emulator.port}"})
    stop.wait()
    if control is not None:
        control.stop()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
