"""Run one emulated FreeSWITCH in its own OS thread with its own gevent hub.

Why a thread: tests (and the agent under test) run in the main thread, monkey-patched by
gevent or not; the emulator must keep answering while a test blocks in ``time.sleep`` or a
plain socket call, and must not share the agent's hub. Everything that touches the model
runs in the emulator's hub: :meth:`Emulator.call` marshals a function there
(``loop.run_callback_threadsafe``) and waits for its result with a real lock and a timeout.
"""
import time
from typing import Callable, Optional, TypeVar

import gevent
import gevent.event
from gevent.monkey import get_original

from fsemu.server import EventSocketServer
from fsemu.settings import Settings
from fsemu.store import Store
from fsemu.switch import Switch
from fsemu import xml_curl_client

T = TypeVar("T")
_start_thread = get_original("_thread", "start_new_thread")
_allocate_lock = get_original("_thread", "allocate_lock")
_get_ident = get_original("_thread", "get_ident")


class _Scheduler:
    """What :class:`~fsemu.switch.Switch` needs for timers, backed by the emulator's hub."""

    @staticmethod
    def spawn_later(seconds: float, fn, *args):
        return gevent.spawn_later(seconds, fn, *args)


class Clock:
    """Wall clock plus an offset the driver can advance (to expire registrations)."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Emulator:
    """One FreeSWITCH: ``start()``, ``port``, ``driver``, ``restart()``, ``kill()``, ``stop()``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.clock = Clock()
        self.store: Optional[Store] = None
        self.switch: Optional[Switch] = None
        self.server: Optional[EventSocketServer] = None
        self.state = "new"          # new → running → (hung | dead) → stopped
        self._hub = None
        self._thread_id = None
        self._done: Optional[gevent.event.Event] = None
        self._thread_ready = _allocate_lock()
        self._thread_exited = _allocate_lock()
        from fsemu.driver import Driver
        self.driver = Driver(self)

    # -- thread plumbing -------------------------------------------------------------------

    def _thread_main(self) -> None:
        self._thread_exited.acquire()
        try:
            self._hub = gevent.get_hub()
            self._thread_id = _get_ident()
            self._done = gevent.event.Event()
            keepalive = self._hub.loop.async_()   # an active watcher: the loop never idles out
            keepalive.start(lambda: None)
            self._thread_ready.release()
            self._done.wait()
            keepalive.stop()
            self._hub.destroy(destroy_loop=True)
        finally:
            self._thread_exited.release()

    def call(self, fn: Callable[..., T], *args, timeout: float = 60.0) -> T:
        """Run ``fn(*args)`` in the emulator's hub (in a greenlet) and return its result."""
        if self._hub is None:
            raise RuntimeError("emulator thread is not running")
        if _get_ident() == self._thread_id:
            return fn(*args)
        done = _allocate_lock()
        done.acquire()
        box = {}

        def work():
            try:
                box["value"] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc
            finally:
                done.release()

        self._hub.loop.run_callback_threadsafe(gevent.spawn, work)
        if not done.acquire(True, timeout):
            raise TimeoutError(f"fsemu call {getattr(fn, '__name__', fn)} took over {timeout}s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, wait_profiles: bool = True, timeout: float = 30.0) -> "Emulator":
        """Start the thread, create the tables, listen, start the autostart profiles."""
        self._thread_ready.acquire()
        _start_thread(self._thread_main, ())
        if not self._thread_ready.acquire(True, timeout):
            raise TimeoutError("fsemu thread did not start")
        try:
            self.call(self._boot)
            if wait_profiles:
                self.driver.wait_profiles_running(timeout)
        except BaseException:
            self._end_thread()       # e.g. the DB is unreachable: leave no thread behind
            raise
        return self

    def _boot(self) -> None:
        self.store = Store(self.settings.db_url)
        self.switch = Switch(self.settings, self.store, _Scheduler(), clock=self.clock)
        if self.settings.xml_curl_url:
            fetcher = xml_curl_client.SofiaFetcher(self.settings.xml_curl_url, self.switch,
                                                   self.settings.xml_curl_timeout)
            self.switch.sofia.fetch_config = fetcher.profile_settings
            self.switch.sofia.fetch_all = fetcher.all_profiles
            self.switch.sofia.fetch_gateways = fetcher.gateways
        self.server = EventSocketServer(self.switch)
        self.switch.start()
        self.server.listen()
        self.state = "running"

    @property
    def port(self) -> int:
        return self.server.port

    def xml_curl_client(self, url: str, timeout: float = 5.0) -> xml_curl_client.XmlCurlClient:
        """A mod_xml_curl client speaking as this switch (its switchname and Core-UUID)."""
        return xml_curl_client.XmlCurlClient(url, self.settings.switchname, self.switch.events,
                                             timeout)

    @property
    def core_uuid(self) -> str:
        return self.switch.identity.core_uuid

    def restart(self, keep_state: bool = True, graceful: bool = True,
                wait_profiles: bool = True, timeout: float = 30.0) -> None:
        """Stop and start "FreeSWITCH": every connection dropped (graceful: with the shutdown
        notice), a new Core-UUID, the same port. ``keep_state=False`` also deletes this
        switchname's rows, as if its database had been local and lost."""
        self.call(self._restart, keep_state, graceful)
        if wait_profiles:
            self.driver.wait_profiles_running(timeout)

    def _restart(self, keep_state: bool, graceful: bool) -> None:
        if self.state != "dead":                   # a dead switch has nothing left to stop
            self._halt(graceful)
        if not keep_state:
            self.store.forget_hostname(self.settings.switchname)
        self.server.running.set()
        self.switch.start()
        self.server.listen()
        self.state = "running"

    def _halt(self, graceful: bool) -> None:
        """Shutdown: graceful hangs up every call first (events and row deletes happen, as
        ``switch_core_session_hupall`` on shutdown); a crash leaves rows as they were."""
        if graceful:
            self.switch.channels.hangup_all("SYSTEM_SHUTDOWN")
        self.server.shutdown(graceful)
        self.switch.stop()
        self.switch.sofia.stop_all()

    def kill(self) -> None:
        """Like ``kill -9``: the port closes, connections drop with no notice, timers stop;
        every row stays in the DB as it was. ``restart()`` brings it back."""
        self.call(self._kill)

    def _kill(self) -> None:
        self._halt(graceful=False)
        self.state = "dead"

    def hang(self) -> None:
        """Like ``kill -STOP``: sockets stay open (and connect) but nothing is answered."""
        self.call(self.server.running.clear)
        self.state = "hung"

    def resume(self) -> None:
        self.call(self.server.running.set)
        self.state = "running"

    def stop(self) -> None:
        """Shut down for good (graceful) and end the thread; safe to call twice."""
        if self._hub is None or self.state == "stopped":
            return
        try:
            self.call(self._final_stop, timeout=30)
        finally:
            self._end_thread()

    def _end_thread(self) -> None:
        self._hub.loop.run_callback_threadsafe(self._done.set)
        self._thread_exited.acquire(True, 30)
        self.state = "stopped"

    def _final_stop(self) -> None:
        if self.state != "dead":
            self.server.running.set()
            self._halt(graceful=True)
        self.store.close()
