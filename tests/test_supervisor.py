"""Backoff, subscription command, dispatch isolation, and the supervise loop on a raw server."""
import gevent
import pytest

from esl_apps.connection import Connection
from esl_apps.dispatch import EventBus
from esl_apps.supervisor import Backoff, Supervisor, subscribe_command
from tests.esl_support import ScriptedEsl, gwait, standard_respond


def test_backoff_grows_caps_jitters_and_resets():
    low = Backoff(base=0.1, cap=2.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    high = Backoff(base=0.1, cap=2.0, rng=lambda: 1.0)
    assert [high.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    high.reset()
    assert high.next() == 0.1


def test_subscribe_command_puts_subclasses_after_custom():
    command = subscribe_command(["sofia::register", "CHANNEL_CREATE", "snapshot:channels",
                                 "fscluster::takeover", "CHANNEL_CREATE"])
    assert command == ("event plain BACKGROUND_JOB CHANNEL_CREATE HEARTBEAT "
                       "CUSTOM fscluster::takeover sofia::register")


def test_slow_handler_does_not_stall_others_and_order_is_kept():
    bus = EventBus()
    fast, slow = [], []
    release = gevent.event.Event()

    def slow_handler(item):
        release.wait()
        slow.append(item)
    bus.subscribe("slow", {"A": slow_handler})
    bus.subscribe("fast", {"A": fast.append, "B": fast.append})
    for n in range(100):
        bus.publish("A" if n % 2 else "B", n)
    gwait(lambda: len(fast) == 100, 2, "the fast subscriber")
    assert fast == list(range(100)) and slow == []
    release.set()
    gwait(lambda: len(slow) == 50, 2, "the slow subscriber")
    bus.stop()


def test_overflow_drops_counts_and_reports():
    overflowed = []
    bus = EventBus(queue_size=3, on_overflow=overflowed.append)
    blocker = gevent.event.Event()
    sub = bus.subscribe("stuck", {"A": lambda item: blocker.wait()})
    for n in range(10):
        bus.publish("A", n)  # never blocks the publisher
    assert sub.dropped >= 6 and overflowed[0] == "stuck"
    blocker.set()
    bus.stop()


def test_failing_handler_is_logged_and_keeps_running():
    bus = EventBus()
    seen = []

    def handler(item):
        if item == "bad":
            raise RuntimeError("boom")
        seen.append(item)
    sub = bus.subscribe("x", {"A": handler})
    for item in ("bad", "good"):
        bus.publish("A", item)
    gwait(lambda: seen == ["good"], 2, "the next event")
    assert sub.failed == 1
    bus.stop()


@pytest.fixture
def scripted():
    servers = []

    def start(respond):
        servers.append(ScriptedEsl(respond))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def test_supervisor_reconnects_resubscribes_and_reruns_hooks(scripted):
    server = scripted(standard_respond())
    conn = Connection("127.0.0.1", server.port, "ClueCon", timeout=1, idle_timeout=30)
    supervisor = Supervisor(conn, "pbx1", lambda: ["sofia::register"],
                            backoff=Backoff(base=0.01, cap=0.05))
    hooks = []
    supervisor.on_connected(lambda: hooks.append(conn.api("show registrations as json")))
    supervisor.start()
    gwait(lambda: len(hooks) == 1, 3, "the first sync")
    server.drop_clients()
    gwait(lambda: len(hooks) == 2, 3, "the resync after reconnect")
    subscribes = [c for c in server.commands if c.startswith("event plain")]
    assert len(subscribes) == 2 and "CUSTOM sofia::register" in subscribes[0]
    supervisor.request_resync("test")
    gwait(lambda: len(hooks) == 3, 3, "a requested resync")
    assert supervisor.connects == 2
    supervisor.stop()


def test_supervisor_probes_a_quiet_connection_and_drops_a_hung_one(scripted):
    hang = gevent.event.Event()
    normal = standard_respond()
    server = scripted(lambda command: None if hang.is_set() else normal(command))
    conn = Connection("127.0.0.1", server.port, "ClueCon", timeout=0.3, idle_timeout=30)
    supervisor = Supervisor(conn, "pbx1", lambda: [], probe_interval=0.2,
                            backoff=Backoff(base=0.01, cap=0.05))
    supervisor.start()
    gwait(lambda: server.commands.count("api switchname") >= 3, 5, "probes of a quiet socket")
    assert conn.connected
    hang.set()
    connects = supervisor.connects
    gwait(lambda: not conn.connected or supervisor.connects > connects, 5,
          "a hung FreeSWITCH to be dropped")
    supervisor.stop()


def test_switchname_mismatch_is_fatal_with_one_clear_line(scripted):
    server = scripted(standard_respond(switchname="pbx2"))
    conn = Connection("127.0.0.1", server.port, "ClueCon", timeout=1)
    supervisor = Supervisor(conn, "pbx1", lambda: [])
    supervisor.start()
    supervisor.greenlet.join(timeout=5)
    assert supervisor.greenlet.ready()
    message = str(supervisor.fatal)
    assert "switchname 'pbx2'" in message and "'pbx1'" in message and "\n" not in message
    assert not any(c.startswith("event plain") for c in server.commands)
