"""Start, wait for and stop real server processes: the plumbing every server fixture shares.

Waiting is always on a condition with a deadline (:func:`wait_for`), never a fixed sleep.
"""
import os
import signal
import socket
import subprocess
import time
from typing import Callable, List, Optional


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerExited(RuntimeError):
    """A server process died while a test waited for it: waiting longer cannot help."""


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             interval: float = 0.05):
    """Poll ``condition`` until it returns a truthy value; fail naming ``what`` at the deadline.

    Exceptions raised by the condition count as 'not yet' (a server still starting refuses
    connections); the last one is reported if the deadline passes. :class:`ServerExited`
    (see :meth:`Server.alive`) ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ServerExited:
            raise
        except Exception as exc:  # noqa: BLE001 - 'not ready yet'
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    """One child process with its output in a log file; ``stop()`` is safe to call twice."""

    def __init__(self, name: str, argv: List[str], log_path: str, env=None, cwd=None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self.env, self.cwd = env, cwd
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def alive(self) -> bool:
        """True while running; once the process has exited, :class:`ServerExited` with the
        log tail (a ``wait_for`` condition starts with it to fail fast on a crash)."""
        if not self.running:
            raise ServerExited(f"{self.name} exited: {self.log_tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(5)

    def _signal(self, signum: int) -> None:
        if self.running:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass
            if signum == signal.SIGKILL:
                self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                return b"".join(handle.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""
