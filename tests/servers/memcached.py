"""A real memcached (Debian package) on a free loopback port."""
import shutil

from tests.servers.proc import Server, free_port, port_open, wait_for


class Memcached:
    def __init__(self, workdir: str):
        binary = shutil.which("memcached") or "/usr/bin/memcached"
        self.port = free_port()
        self.server = Server("memcached", [binary, "-u", "root", "-l", "127.0.0.1", "-p",
                                           str(self.port), "-U", "0", "-m", "64", "-t", "2"],
                             f"{workdir}/memcached.log")

    @property
    def address(self):
        return ("127.0.0.1", self.port)

    def start(self) -> "Memcached":
        self.server.start()
        wait_for(lambda: port_open(self.port), 10, f"memcached on {self.port}")
        return self

    def stop(self) -> None:
        self.server.stop()

    def kill(self) -> None:
        self.server.kill()
