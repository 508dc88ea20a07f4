"""The event socket: a gevent TCP server speaking mod_event_socket's protocol for one switch.

Per connection, as ``listener_run``/``read_packet`` do it: an ACL check (``text/rude-rejection``
and close), ``auth/request``, the first command within ``auth_timeout`` seconds, then commands
and events on the same socket. An ``api`` holds the connection while it runs, so no event is
written meanwhile. Events wait in a per-connection queue of ``max_queue``; a listener that
has lost more than ``max_missed`` events is killed with a disconnect notice
(``event_handler`` → ``kill_listener``). Every socket write has a timeout so a peer that stops
reading cannot wedge the emulator.
"""
import collections
import ipaddress
import logging
import socket
import time
from typing import List, Optional, Set

import gevent
import gevent.event
import gevent.lock
from gevent.server import StreamServer

from esl_apps.protocol import CommandParser, ProtocolError
from fsemu.event import FsEvent
from fsemu.listener import AUTH_REQUEST, GOODBYE, LOST_EVENTS, SHUTDOWN, Listener, \
    disconnect_notice, rude_rejection, run_api

log = logging.getLogger("fsemu.server")
SEND_TIMEOUT = 30.0
WRITE_BATCH = 256


def allowed(address: str, networks: List[str]) -> bool:
    """``switch_check_network_list_ip`` against every ``apply-inbound-acl`` (all must allow)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return all(any(ip in ipaddress.ip_network(net, strict=False) for net in group.split(","))
               for group in networks) if networks else True


class Connection:
    """One inbound ESL client."""

    def __init__(self, server: "EventSocketServer", sock: socket.socket, address):
        self.server = server
        self.sock = sock
        self.address = address
        settings = server.switch.settings
        self.listener = Listener(settings.password, server.switch.api)
        self.queue: collections.deque = collections.deque()
        self.lost = 0
        self.wakeup = gevent.event.Event()
        self.write_lock = gevent.lock.RLock()
        self.closed = False

    # -- events ----------------------------------------------------------------------------

    def offer(self, event: FsEvent) -> None:
        if self.closed or not self.listener.authed or not self.listener.subscription.wants(event):
            return
        settings = self.server.switch.settings
        if len(self.queue) >= settings.max_queue:
            self.lost += 1
            if self.lost > settings.max_missed:
                log.warning("killing listener: lost events", extra={"lost": self.lost})
                gevent.spawn(self.close, LOST_EVENTS)
            return
        self.lost = 0
        self.queue.append(event)
        self.wakeup.set()

    def _writer(self) -> None:
        while not self.closed:
            self.wakeup.wait()
            self.wakeup.clear()
            while self.queue and not self.closed:
                self.server.running.wait()
                batch = [self.queue.popleft().plain()
                         for _ in range(min(WRITE_BATCH, len(self.queue)))]
                if not self._send(b"".join(batch)):   # same bytes, fewer syscalls
                    return

    # -- commands --------------------------------------------------------------------------

    def _send(self, data: bytes) -> bool:
        with self.write_lock:
            if self.closed:
                return False
            try:
                with gevent.Timeout(SEND_TIMEOUT):
                    self.sock.sendall(data)
                return True
            except (OSError, gevent.Timeout):
                self.closed = True
                return False

    def run(self) -> None:
        settings = self.server.switch.settings
        self.server.running.wait()
        if not allowed(self.address[0], list(settings.acl)):
            self._send(rude_rejection())
            self._abort()
            return
        if not self._send(AUTH_REQUEST):
            self._abort()
            return
        writer = gevent.spawn(self._writer)
        parser = CommandParser()
        first = True
        try:
            going = True
            while going and not self.closed:
                try:
                    with gevent.Timeout(settings.auth_timeout if first else None):
                        data = self.sock.recv(65536)
                except gevent.Timeout:
                    break
                if not data:
                    break
                self.server.running.wait()
                for block in parser.commands(data):
                    first = False
                    going = self._command(block)
                    if not going:
                        break
        except ProtocolError as exc:
            log.info("dropping client: %s", exc)
        except OSError:
            pass
        finally:
            self.close(GOODBYE)
            writer.kill(block=False)

    def _command(self, block: str) -> bool:
        """Run one command and write its reply with no event in between (``api`` is
        synchronous on the connection in mod_event_socket)."""
        with self.write_lock:
            if self.closed:
                return False
            outcome = self.listener.handle(block)
            sent = self._send(outcome.data)
        if outcome.job is not None:
            gevent.spawn(self.server.background_job, *outcome.job)
        if outcome.fire is not None:
            self.server.fire_sent(*outcome.fire)
        return sent and not outcome.close

    # -- teardown --------------------------------------------------------------------------

    def close(self, message: Optional[str] = GOODBYE) -> None:
        """``send_disconnect`` (when a message is given) then shutdown and close."""
        if self.closed:
            return
        if message is not None:
            self._send(disconnect_notice(message))
        self.closed = True
        self.wakeup.set()
        self._abort()

    def _abort(self) -> None:
        self.closed = True
        self.server.connections.discard(self)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class EventSocketServer:
    """Listens on ``settings.listen_ip:listen_port`` for one :class:`~fsemu.switch.Switch`."""

    def __init__(self, switch):
        self.switch = switch
        self.connections: Set[Connection] = set()
        self.running = gevent.event.Event()
        self.running.set()
        self._server: Optional[StreamServer] = None
        self.port = switch.settings.listen_port
        switch.sinks.append(self._deliver)

    def listen(self) -> None:
        self._server = StreamServer((self.switch.settings.listen_ip, self.port), self._handle,
                                    backlog=128)
        self._server.init_socket()
        self.port = self._server.server_port
        self._server.start()

    def _handle(self, sock, address) -> None:
        conn = Connection(self, sock, address)
        self.connections.add(conn)
        conn.run()

    def _deliver(self, event: FsEvent) -> None:
        for conn in list(self.connections):
            conn.offer(event)

    def background_job(self, job_uuid: str, command: str, arg: Optional[str]) -> None:
        """``api_exec`` with ``bg``: run, then fire ``BACKGROUND_JOB`` with the output as body."""
        output = run_api(self.switch.api, command, arg, background=True)
        headers = [("Job-UUID", job_uuid), ("Job-Command", command)]
        if arg is not None:
            headers.append(("Job-Command-Arg", arg))
        event = self.switch.events.make("BACKGROUND_JOB", headers,
                                        ("mod_event_socket.c", "api_exec", 1572),
                                        body=output, now=self.switch.clock())
        self.switch.fire(event)

    def fire_sent(self, name: str, subclass: str, headers) -> None:
        """A client's ``sendevent``, fired to every subscriber (the sender included)."""
        event = self.switch.events.make(name, headers, ("mod_event_socket.c", "read_packet", 483),
                                        subclass=subclass, now=self.switch.clock())
        self.switch.fire(event)

    def drain(self, timeout: float = 2.0) -> None:
        """Let writers send what is queued (bounded): on a graceful shutdown FreeSWITCH's
        listeners keep running while the sessions hang up, so those events do go out."""
        deadline = time.monotonic() + timeout
        while any(conn.queue and not conn.closed for conn in self.connections):
            if time.monotonic() > deadline:
                return
            gevent.sleep(0.005)

    def drop_all(self, message: Optional[str]) -> None:
        """Every client goes (``kill_all_listeners`` sends ``message``; a crash sends none)."""
        for conn in list(self.connections):
            conn.close(message)

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def shutdown(self, graceful: bool = True) -> None:
        self.stop_listening()
        if graceful:
            self.drain()
        self.drop_all(SHUTDOWN if graceful else None)
