"""The emulated FreeSWITCH core: identity, uptime, globals, the API table and event fan-out.

It owns no socket and no greenlet: timers go through the ``scheduler`` it is given
(``spawn_later(seconds, fn)``), events go to whatever sinks the server attached. The sofia
and channel models (:mod:`fsemu.sofia`, :mod:`fsemu.channels`) hang off it and register
their API commands in :attr:`Switch.commands`.
"""
import logging
import time
import uuid
from typing import Callable, Dict, List, Optional

from fsemu import show
from fsemu.channels import Channels
from fsemu.event import EventFactory, FsEvent, Identity
from fsemu.settings import Settings
from fsemu.sofia import Sofia
from fsemu.store import Store

log = logging.getLogger("fsemu.switch")
ApiHandler = Callable[[Optional[str]], str]


def uptime_text(micros: int) -> str:
    """switch_core.c ``send_heartbeat`` / mod_commands.c ``status``: 'N years, N days, …'."""
    millis, micro = divmod(micros, 1000)
    seconds, milli = divmod(millis, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    years, day = divmod(days, 365)
    parts = [(years, "year"), (day, "day"), (hour, "hour"), (minute, "minute"),
             (sec, "second"), (milli, "millisecond"), (micro, "microsecond")]
    return ", ".join(f"{value} {unit}{'' if value == 1 else 's'}" for value, unit in parts)


class Switch:
    """One FreeSWITCH process: a fresh :class:`Identity` per :meth:`start`."""

    def __init__(self, settings: Settings, store: Store, scheduler, clock=time.time):
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.sinks: List[Callable[[FsEvent], None]] = []
        self.globals: Dict[str, str] = {}
        self.commands: Dict[str, ApiHandler] = {
            "switchname": lambda arg: settings.switchname,
            "hostname": lambda arg: settings.fs_hostname,
            "version": lambda arg: f"FreeSWITCH Version {settings.version} (emulated)\n",
            "global_getvar": self._global_getvar,
            "global_setvar": self._global_setvar,
            "status": self._status,
            "uptime": lambda arg: str(int(self.uptime_micros() / 1_000_000)),
            "show": lambda arg: show.show(self, arg),
            "reloadxml": lambda arg: "+OK [Success]\n",
        }
        self.identity: Optional[Identity] = None
        self.events: Optional[EventFactory] = None
        self.started_at = 0.0
        self.session_count = 0
        self.sessions_since_startup = 0
        self._heartbeat = None
        self.on_start: List[Callable[[], None]] = []
        self.channels = Channels(self)
        self.sofia = Sofia(self)
        self.sofia.on_profile_stop.append(self.channels.hangup_profile)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Boot: new Core-UUID, tables created if missing, own channel rows cleared."""
        self.identity = Identity(self.settings.switchname, str(uuid.uuid4()),
                                 self.settings.fs_hostname, self.settings.ipv4)
        self.events = EventFactory(self.identity)
        self.started_at = self.clock()
        self.session_count = 0
        self.sessions_since_startup = 0
        self.store.create_tables()
        self.store.clear_own(self.settings.switchname)
        for hook in self.on_start:
            hook()
        self._schedule_heartbeat()

    def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.kill()
            self._heartbeat = None

    def uptime_micros(self) -> int:
        return int((self.clock() - self.started_at) * 1_000_000)

    # -- events ----------------------------------------------------------------------------

    def fire(self, event: FsEvent) -> None:
        for sink in list(self.sinks):
            sink(event)

    def fire_custom(self, subclass: str, headers, calling) -> FsEvent:
        event = self.events.custom(subclass, headers, calling, now=self.clock())
        self.fire(event)
        return event

    def _schedule_heartbeat(self) -> None:
        interval = self.settings.heartbeat_interval
        if interval > 0:
            self._heartbeat = self.scheduler.spawn_later(interval, self._beat)

    def _beat(self) -> None:
        self.fire(self.heartbeat_event())
        self._schedule_heartbeat()

    def heartbeat_event(self) -> FsEvent:
        """switch_core.c ``send_heartbeat``."""
        micros = self.uptime_micros()
        headers = [
            ("Event-Info", "System Ready"),
            ("Up-Time", uptime_text(micros)),
            ("FreeSWITCH-Version", self.settings.version),
            ("Uptime-msec", str(micros // 1000)),
            ("Session-Count", str(self.session_count)),
            ("Max-Sessions", str(self.settings.max_sessions)),
            ("Session-Per-Sec", "30"),
            ("Session-Per-Sec-Last", "0"),
            ("Session-Per-Sec-Max", "0"),
            ("Session-Per-Sec-FiveMin", "0"),
            ("Session-Since-Startup", str(self.sessions_since_startup)),
            ("Session-Peak-Max", "0"),
            ("Session-Peak-FiveMin", "0"),
            ("Idle-CPU", "99.000000"),
        ]
        return self.events.make("HEARTBEAT", headers, ("switch_core.c", "send_heartbeat", 73),
                                 now=self.clock())

    # -- API -------------------------------------------------------------------------------

    def api(self, command: str, arg: Optional[str]) -> Optional[str]:
        """``switch_api_execute``: None when no module provides ``command``."""
        handler = self.commands.get(command)
        if handler is None:
            return None
        try:
            return handler(arg)
        except Exception as exc:  # noqa: BLE001 - FreeSWITCH answers, it does not crash
            log.exception("api %s failed", command)
            return f"-ERR {command} failed: {type(exc).__name__}\n"

    def _global_getvar(self, arg: Optional[str]) -> str:
        """mod_commands.c ``global_getvar_function``: the value, or nothing (→ -ERR no reply)."""
        if not arg:
            return "".join(f"{k}={v}\n" for k, v in sorted(self.globals.items()))
        return self.globals.get(arg, "")

    def _global_setvar(self, arg: Optional[str]) -> str:
        """mod_commands.c ``global_setvar_function``: ``name=value`` → ``+OK``."""
        name, sep, value = (arg or "").partition("=")
        name = name.strip()
        if not sep or not name:
            return "-USAGE: <var>=<value>\n"
        value = value.strip()
        if value:
            self.globals[name] = value
        else:
            self.globals.pop(name, None)
        return "+OK"

    def _status(self, arg: Optional[str]) -> str:
        """mod_commands.c ``status_function`` (plain text form)."""
        return (f"UP {uptime_text(self.uptime_micros())}\n"
                f"FreeSWITCH (Version {self.settings.version}) is ready\n"
                f"{self.sessions_since_startup} session(s) since startup\n"
                f"{self.session_count} session(s) - peak 0, last 5min 0 \n"
                "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
                f"{self.settings.max_sessions} session(s) max\n"
                "min idle cpu 0.00/99.00\n"
                "Current Stack Size/Max 240K/8192K\n")
