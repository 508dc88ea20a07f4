"""Start an emulated FreeSWITCH for a test (in-process thread, free loopback port).

``start_emulator("pbx1", db_url)`` returns a running :class:`fsemu.Emulator`: ``.port``,
``.driver``, ``.restart(keep_state=True)``, ``.kill()``, ``.hang()``/``.resume()``, ``.stop()``.
Defaults suit tests: no heartbeat unless asked, profile restart allowed at once, profile
``vip1`` on 127.0.0.1. The ``fsemu`` fixture factory stops every emulator it started, even
when the test fails. ``start_emulator_process`` runs ``python -m fsemu`` as a child process
(for network namespaces and true kill -9).
"""
import json
import os
import socket
import sys
import time
from typing import List

import pytest

from esl_apps.protocol import FrameParser, parse_event
from fsemu import Emulator, ProfileSettings, Settings
from tests.servers.proc import Server, free_port, port_open, wait_for

DEFAULT_PASSWORD = "ClueCon"


def emulator_settings(switchname: str, db_url: str, password: str = DEFAULT_PASSWORD,
                      profiles=("vip1",), **overrides) -> Settings:
    profile_settings = tuple(
        p if isinstance(p, ProfileSettings) else ProfileSettings(p, sip_port=5090 + i)
        for i, p in enumerate(profiles))
    values = dict(switchname=switchname, db_url=db_url, password=password,
                  profiles=profile_settings, heartbeat_interval=0, min_restart_uptime=0,
                  reg_sweep_interval=0, profile_start_delay=0.01)
    values.update(overrides)
    return Settings(**values)


def start_emulator(switchname: str, db_url: str, password: str = DEFAULT_PASSWORD,
                   **overrides) -> Emulator:
    return Emulator(emulator_settings(switchname, db_url, password, **overrides)).start()


@pytest.fixture
def fsemu():
    """Factory: ``fsemu("pbx1", db_url, **settings)``; all emulators stopped at teardown."""
    started: List[Emulator] = []

    def factory(switchname: str, db_url: str, password: str = DEFAULT_PASSWORD, **overrides):
        emulator = start_emulator(switchname, db_url, password, **overrides)
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


def start_emulator_process(switchname: str, db_url: str, log_path: str, host: str = "127.0.0.1",
                           port: int = 0, password: str = DEFAULT_PASSWORD,
                           extra_args=(), netns: str = None) -> Server:
    """``python -m fsemu`` as a child (optionally ``ip netns exec``); waits until it listens."""
    port = port or free_port()
    argv = [sys.executable, "-m", "fsemu", "--switchname", switchname, "--db-url", db_url,
            "--listen-ip", host, "--port", str(port), "--password", password] + list(extra_args)
    if netns:
        argv = ["ip", "netns", "exec", netns] + argv
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    server = Server(f"fsemu-{switchname}", argv, log_path, env=env).start()
    server.port = port
    if not netns:
        wait_for(lambda: port_open(port, host), 30, f"fsemu {switchname} on {host}:{port}")
    return server


class ControlClient:
    """Talks to ``python -m fsemu --control-port``: ``client.request("register", users=[…])``."""

    def __init__(self, host: str, port: int, timeout: float = 60.0):
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._stream = self._sock.makefile("rwb")

    def request(self, op: str, **fields):
        self._stream.write(json.dumps(dict(fields, op=op)).encode() + b"\n")
        self._stream.flush()
        reply = json.loads(self._stream.readline())
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        self._stream.close()
        self._sock.close()


class EslClient:
    """A bare event-socket client for wire-level tests (frames as parsed by esl_apps)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.parser = FrameParser()
        self.pending = []
        self.timeout = timeout

    def frames(self, count: int = 1):
        """The next ``count`` frames (fails after ``timeout`` without them)."""
        deadline = time.monotonic() + self.timeout
        while len(self.pending) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.pending)} of {count} frames")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {len(self.pending)} of {count} frames")
            self.pending += self.parser.frames(data)
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def frame(self):
        return self.frames(1)[0]

    def send(self, command: str):
        """Send one command and return the next frame (its reply)."""
        self.sock.sendall(command.encode() + b"\n\n")
        return self.frame()

    def login(self, password: str = DEFAULT_PASSWORD) -> "EslClient":
        assert self.frame().content_type == "auth/request"
        reply = self.send(f"auth {password}")
        assert reply.reply_text == "+OK accepted", reply
        return self

    def events(self, count: int):
        return [parse_event(f.body) for f in self.frames(count)]

    def closed(self) -> bool:
        """True once the server closed the connection (pending frames are kept)."""
        data = self.sock.recv(65536)
        if data:
            self.pending += self.parser.frames(data)
            return False
        return True

    def close(self):
        self.sock.close()
