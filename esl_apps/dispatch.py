"""Event intake that never stalls: the reader enqueues, handler workers run apart.

FreeSWITCH drops an event-socket client after 500 events it could not queue
(mod_event_socket.c, ``MAX_MISSED``), so the reader must never wait on a handler. Each
subscriber (a named group of ``key → callable``) gets its own greenlet and its own bounded
queue: events reach one subscriber in stream order (what a mirror needs), and a slow
subscriber only delays itself. When a subscriber's queue is full its new items are dropped,
counted, logged, and ``on_overflow(name)`` is called so the owner can resync instead of
silently diverging.

Keys are what :attr:`esl_apps.protocol.Event.key` gives (``CHANNEL_CREATE``,
``sofia::register``) or any private key (e.g. a resync snapshot) published by the agent.
"""
import logging
from typing import Callable, Dict, List, Optional

import gevent
import gevent.queue

log = logging.getLogger("fscluster.dispatch")

DEFAULT_QUEUE = 50_000


class Subscriber:
    """One worker greenlet draining one bounded queue of ``(callable, item)``."""

    def __init__(self, name: str, handlers: Dict[str, Callable], queue_size: int,
                 on_overflow: Callable[[str], None]):
        self.name = name
        self.handlers = dict(handlers)
        self.queue: gevent.queue.Queue = gevent.queue.Queue(queue_size)
        self.dropped = 0
        self.failed = 0
        self.busy = False
        self._on_overflow = on_overflow
        self._greenlet = gevent.spawn(self._run)

    def offer(self, key: str, item) -> None:
        try:
            self.queue.put_nowait((self.handlers[key], key, item))
        except gevent.queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event queue full, dropping", extra={
                    "subscriber": self.name, "dropped": self.dropped, "key": key})
            self._on_overflow(self.name)

    def _run(self) -> None:
        while True:
            handler, key, item = self.queue.get()
            self.busy = True
            try:
                handler(item)
            except Exception:  # one bad event must not kill the subscriber
                self.failed += 1
                log.exception("event handler failed", extra={"subscriber": self.name,
                                                             "key": key})
            finally:
                self.busy = False

    def idle(self) -> bool:
        return self.queue.empty() and not self.busy

    def stop(self) -> None:
        self._greenlet.kill()


class EventBus:
    """Subscribers by key; :meth:`publish` is O(subscribers of that key) and never blocks."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE,
                 on_overflow: Optional[Callable[[str], None]] = None):
        self.queue_size = queue_size
        self.on_overflow = on_overflow or (lambda name: None)
        self._by_key: Dict[str, List[Subscriber]] = {}
        self.subscribers: List[Subscriber] = []

    def subscribe(self, name: str, handlers: Dict[str, Callable],
                  queue_size: Optional[int] = None) -> Subscriber:
        subscriber = Subscriber(name, handlers, queue_size or self.queue_size,
                                lambda n: self.on_overflow(n))
        self.subscribers.append(subscriber)
        for key in handlers:
            self._by_key.setdefault(key, []).append(subscriber)
        return subscriber

    def publish(self, key: str, item) -> None:
        for subscriber in self._by_key.get(key, ()):
            subscriber.offer(key, item)

    def keys(self) -> List[str]:
        return list(self._by_key)

    def idle(self) -> bool:
        """True when every queue is drained and every worker waits (tests, clean stop)."""
        return all(s.idle() for s in self.subscribers)

    def stop(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.stop()
