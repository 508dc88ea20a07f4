"""A component that does one thing every ``interval`` seconds in a greenlet of its own.

Subclasses implement :meth:`tick`; an exception in one tick is logged and the next tick
still comes (a periodic duty must not die silently on a DB blip)."""
import logging

import gevent

log = logging.getLogger("fscluster.periodic")


class Periodic:
    interval: float = 1.0
    _greenlet = None

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill()
            self._greenlet = None

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - logged with its traceback, loop goes on
                log.exception("periodic duty failed", extra={"duty": type(self).__name__})
            gevent.sleep(self.interval)
