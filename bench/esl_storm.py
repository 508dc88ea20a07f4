"""A benchmark-only event socket that replays one pre-encoded storm to each client.

``python -m bench.esl_storm --port P --registrations N --channels M --switchname S`` answers
``auth``/``event``/``api switchname``/``api show … as json`` (empty, as a fresh FreeSWITCH
would) and, right after a client's ``api show channels as json`` — the agent's last resync
command, and what the greenswitch baseline sends — writes the same bytes to it: N
``sofia::register`` events shaped like the real capture, then M ``CHANNEL_CREATE`` events.
It prints ``storm <epoch>`` on stdout when it starts writing, so the bench can time the
consumer from the first byte. Pre-encoding keeps the server out of the measurement.
"""
import argparse
import sys
import time

from gevent.server import StreamServer

from esl_apps.protocol import CommandParser, encode_event_plain
from tests.esl_support import AUTH_REQUEST, reply, standard_respond

HEADERS = [("Event-Subclass", "sofia::register"), ("Event-Name", "CUSTOM"),
           ("Core-UUID", "03d84daf-1d9e-4514-a6ff-e8ebcf93edac"),
           ("FreeSWITCH-Hostname", "bench-host"), ("FreeSWITCH-Switchname", "SWITCHNAME"),
           ("FreeSWITCH-IPv4", "198.18.1.1"), ("FreeSWITCH-IPv6", "::1"),
           ("Event-Date-Local", "2026-11-24 21:41:24"),
           ("Event-Date-GMT", "Tue, 24 Nov 2026 21:41:24 GMT"),
           ("Event-Date-Timestamp", "1795556484510628"), ("Event-Calling-File", "sofia_reg.c"),
           ("Event-Calling-Function", "sofia_reg_handle_register_token"),
           ("Event-Calling-Line-Number", "2059")]


def register_event(n: int, switchname: str) -> bytes:
    user = str(10000 + n)
    headers = [(k, switchname if v == "SWITCHNAME" else v) for k, v in HEADERS] + [
        ("Event-Sequence", str(n)), ("profile-name", "vip1"), ("from-user", user),
        ("from-host", "demo.local"), ("presence-hosts", "n/a"),
        ("contact", f'"" <sip:{user}@198.18.2.{n % 250}:5060>'),
        ("call-id", f"{n}-bench@198.18.2.{n % 250}"), ("rpid", "unknown"),
        ("status", "Registered(UDP)"), ("expires", "3600"), ("to-user", user),
        ("to-host", "demo.local"), ("network-ip", f"198.18.2.{n % 250}"),
        ("network-port", "5060"), ("username", user), ("realm", "demo.local"),
        ("user-agent", "bench-phone/1.0")]
    return encode_event_plain(headers)


def channel_event(n: int, switchname: str) -> bytes:
    return encode_event_plain([
        ("Event-Name", "CHANNEL_CREATE"), ("FreeSWITCH-Switchname", switchname),
        ("Unique-ID", f"bench-channel-{n}"), ("Call-Direction", "inbound"),
        ("Channel-State", "CS_INIT"), ("Channel-Call-State", "DOWN"),
        ("Channel-Name", f"sofia/vip1/{10000 + n}@demo.local"),
        ("Caller-Caller-ID-Number", str(10000 + n)), ("Caller-Destination-Number", "9000"),
        ("Caller-Channel-Created-Time", "1795556484510628")])


def storm(registrations: int, channels: int, switchname: str) -> bytes:
    return b"".join([register_event(n, switchname) for n in range(registrations)]
                    + [channel_event(n, switchname) for n in range(channels)])


def serve(port: int, switchname: str, payload: bytes) -> StreamServer:
    respond = standard_respond(switchname=switchname)

    def handle(sock, _address):
        parser = CommandParser()
        sock.sendall(AUTH_REQUEST)
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for command in parser.commands(data):
                sock.sendall(respond(command) or reply("-ERR command not found"))
                if command == "api show channels as json":
                    print(f"storm {time.time():.6f}", flush=True)
                    sock.sendall(payload)
                elif command == "exit":
                    sock.close()  # as mod_event_socket does after the disconnect notice
                    return
    server = StreamServer(("127.0.0.1", port), handle)
    server.start()
    return server


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--registrations", type=int, default=20000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--switchname", default="benchpbx")
    args = parser.parse_args(argv)
    server = serve(args.port, args.switchname,
                   storm(args.registrations, args.channels, args.switchname))
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
