"""What a test does *to* the emulated FreeSWITCH: phones register, calls happen, time passes.

Every method is safe to call from the test's thread (it runs in the emulator's hub via
:meth:`fsemu.runtime.Emulator.call`). Storms are bounded in count and paced by ``rate``
(events per second, in 100 ms slices), so a test never floods by accident.
"""
import time
from typing import Iterable, List, Optional, Sequence

import gevent

from fsemu.channels import Channel
from fsemu.listener import run_api
from fsemu.sofia_reg import Binding, bindings_for

MAX_BATCH = 100_000


class Call:
    """A two-leg call the driver started (A = inbound from the caller, B = outbound)."""

    def __init__(self, a: Channel, b: Channel):
        self.a, self.b = a, b

    @property
    def uuids(self) -> List[str]:
        return [self.a.uuid, self.b.uuid]


class Driver:
    def __init__(self, emulator):
        self.emu = emulator

    @property
    def _switch(self):
        return self.emu.switch

    # -- registrations ---------------------------------------------------------------------

    def register(self, users: Iterable[str], domain: str = "demo.local",
                 profile: str = "vip1", expires: int = 3600, rate: Optional[float] = None,
                 prefix: Optional[str] = None) -> List[Binding]:
        """Register one phone per user (distinct call-ids/ports); returns the bindings."""
        bindings = bindings_for(list(users), domain, profile,
                                prefix or self.emu.settings.switchname, expires)
        self.register_bindings(bindings, rate=rate)
        return bindings

    def register_bindings(self, bindings: Sequence[Binding], auth_result: str = "SUCCESS",
                          rate: Optional[float] = None) -> int:
        """REGISTER each binding (``RENEWED`` = a refresh of a known contact)."""
        if len(bindings) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} bindings per call")
        return self.emu.call(self._paced, self._switch.sofia.registrar.register,
                             list(bindings), rate, auth_result, timeout=600)

    def refresh(self, bindings: Sequence[Binding], rate: Optional[float] = None) -> int:
        return self.register_bindings(bindings, "RENEWED", rate)

    @staticmethod
    def _paced(action, items, rate, *args) -> int:
        if not rate:
            return action(items, *args)
        step = max(1, int(rate / 10))
        done = 0
        for start in range(0, len(items), step):
            began = time.monotonic()
            done += action(items[start:start + step], *args)
            gevent.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
        return done

    def unregister(self, bindings: Sequence[Binding]) -> int:
        def run():
            return sum(1 for b in bindings if self._switch.sofia.registrar.unregister(b))
        return self.emu.call(run, timeout=600)

    def disconnect(self, bindings: Sequence[Binding]) -> int:
        """TCP/TLS phones whose connection drops (UDP bindings are ignored)."""
        def run():
            return sum(1 for b in bindings if self._switch.sofia.registrar.socket_closed(b))
        return self.emu.call(run)

    def fail_auth(self, binding: Binding) -> bool:
        """A REGISTER with a wrong password (403)."""
        return self.emu.call(self._switch.sofia.registrar.fail, binding)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (registrations age; Event-Date-* follow)."""
        self.emu.clock.offset += seconds

    def sweep(self) -> List[dict]:
        """One ``sofia_reg_check_expire`` pass now; returns the rows it fired expire for."""
        return self.emu.call(self._switch.sofia.registrar.check_expire)

    # -- calls -----------------------------------------------------------------------------

    def call(self, caller: str, callee: str, domain: str = "demo.local",
             profile: str = "vip1", answer: bool = True, bridge: bool = True) -> Call:
        def run():
            channels = self._switch.channels
            a, b = channels.originate(caller, callee, domain, profile)
            if answer:
                channels.answer(a)
                if bridge:
                    channels.bridge(a)
            return Call(a, b)
        return self.emu.call(run)

    def calls(self, count: int, domain: str = "demo.local", profile: str = "vip1",
              first_user: int = 1000) -> List[Call]:
        """``count`` answered, bridged calls between consecutive users (bounded)."""
        if count > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} calls per call")
        return [self.call(str(first_user + 2 * i), str(first_user + 2 * i + 1), domain,
                          profile) for i in range(count)]

    def answer(self, call: Call) -> None:
        self.emu.call(self._switch.channels.answer, call.a)

    def bridge(self, call: Call) -> None:
        self.emu.call(self._switch.channels.bridge, call.a)

    def hangup(self, call: Call, cause: str = "NORMAL_CLEARING") -> None:
        self.emu.call(self._switch.channels.hangup, call.a, cause)

    # -- inspection and misc ---------------------------------------------------------------

    def api(self, command: str) -> str:
        """Run an API command as ``api`` over ESL would (errors included), without a socket."""
        name, _, arg = command.partition(" ")
        return self.emu.call(run_api, self._switch.api, name, arg or None, False)

    def heartbeat(self) -> None:
        """Fire a ``HEARTBEAT`` now."""
        self.emu.call(lambda: self._switch.fire(self._switch.heartbeat_event()))

    def profiles_running(self) -> List[str]:
        return self.emu.call(lambda: sorted(
            name for name, p in self._switch.sofia.profiles.items() if p.state == "RUNNING"))

    def wait_profiles_running(self, timeout: float = 30.0,
                              names: Optional[Sequence[str]] = None) -> None:
        """Block until the named profiles (default: those the last boot started) are up."""
        wanted = set(names if names is not None else self.emu.call(
            lambda: list(self._switch.sofia.booted)))
        deadline = time.monotonic() + timeout
        while not wanted.issubset(self.profiles_running()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"profiles {sorted(wanted)} not running after {timeout}s")
            time.sleep(0.02)

    def connections(self) -> int:
        return self.emu.call(lambda: len(self.emu.server.connections))
