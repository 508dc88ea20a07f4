"""A TCP forwarder that a test can cut (how one node loses its DB while the others keep it)
or hang (connections stay up, nothing gets through: a black-holed server).

It also bridges address spaces: a process in a network namespace cannot reach 127.0.0.1 of
the root namespace, so the proxy listens on the bridge address and forwards to loopback.
Plain threads (not gevent), so it keeps forwarding while the test thread blocks.
"""
import socket
import threading
import time
from typing import List, Tuple

from tests.servers.proc import free_port


class TcpProxy:
    def __init__(self, listen_host: str, target: Tuple[str, int]):
        self.target = target
        self.listen_host = listen_host
        self.port = free_port()
        self.cut = False
        self.hung = False
        self._listener = socket.create_server((listen_host, self.port))
        self._listener.settimeout(0.5)
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.hung and not self._stopped:
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def set_hung(self, hung: bool) -> None:
        """Hung: connections stay open, but what is sent is held until unhung."""
        self.hung = hung

    def set_cut(self, cut: bool) -> None:
        """Cut: every open connection dies and new ones are closed at once."""
        self.cut = cut
        if cut:
            with self._lock:
                sockets, self._sockets = self._sockets, []
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._stopped = True
        self.set_cut(True)
        self._listener.close()
        self._thread.join(2)
