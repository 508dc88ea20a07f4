"""A JSON-lines control socket for an emulator running as its own process.

One request per line: ``{"op": "register", "users": ["1000"], "domain": "demo.local",
"profile": "vip1"}`` → one reply line ``{"ok": true, "result": …}`` or ``{"ok": false,
"error": "…"}``. The operations are the driver's (:data:`OPS`); nothing else is reachable,
so a test in another process (or network namespace) drives the emulator without importing it.
Bind it to loopback or a test namespace only.
"""
import dataclasses
import json
import logging
import socket
import threading
from typing import Callable, Dict

from fsemu.sofia_reg import Binding

log = logging.getLogger("fsemu.control")
MAX_LINE = 1 << 20


def _bindings(request) -> list:
    return [Binding(**item) for item in request["bindings"]]


OPS: Dict[str, Callable] = {
    "register": lambda emu, r: [dataclasses.asdict(b) for b in emu.driver.register(
        r["users"], r.get("domain", "demo.local"), r.get("profile", "vip1"),
        r.get("expires", 3600), r.get("rate"))],
    "refresh": lambda emu, r: emu.driver.refresh(_bindings(r)),
    "unregister": lambda emu, r: emu.driver.unregister(_bindings(r)),
    "disconnect": lambda emu, r: emu.driver.disconnect(_bindings(r)),
    "fail_auth": lambda emu, r: emu.driver.fail_auth(Binding(**r["binding"])),
    "advance": lambda emu, r: emu.driver.advance(float(r["seconds"])),
    "sweep": lambda emu, r: len(emu.driver.sweep()),
    "call": lambda emu, r: emu.driver.call(
        r["caller"], r["callee"], r.get("domain", "demo.local"), r.get("profile", "vip1")).uuids,
    "api": lambda emu, r: emu.driver.api(r["command"]),
    "restart": lambda emu, r: emu.restart(r.get("keep_state", True), r.get("graceful", True)),
    "kill": lambda emu, r: emu.kill(),
    "hang": lambda emu, r: emu.hang(),
    "resume": lambda emu, r: emu.resume(),
    "core_uuid": lambda emu, r: emu.core_uuid,
}


def handle_line(emulator, line: bytes) -> bytes:
    try:
        request = json.loads(line)
        op = OPS[request["op"]]
        reply = {"ok": True, "result": op(emulator, request)}
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reply, never a crash
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return json.dumps(reply).encode() + b"\n"


class ControlServer:
    """Plain threads (the emulator has its own hub); one client at a time is plenty."""

    def __init__(self, emulator, host: str, port: int):
        self.emulator = emulator
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> "ControlServer":
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with client:
                client.settimeout(600)
                self._client(client.makefile("rwb"))

    def _client(self, stream) -> None:
        try:
            for line in iter(lambda: stream.readline(MAX_LINE), b""):
                stream.write(handle_line(self.emulator, line))
                stream.flush()
        except OSError as exc:
            log.info("control client gone: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)
