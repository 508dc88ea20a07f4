"""One PBX's view of the database cluster path, under load, for the resilience tests and the
``db`` benchmark.

:class:`PbxStack` runs, in front of a :class:`tests.servers.haproxy.GaleraFront`:

- the real ``fscluster-xmlcurl`` process (two of them: ``warm`` answers from memcached,
  ``cold`` has no cache at all so every lookup reads Galera through HAProxy's read listener);
- an emulated FreeSWITCH ``pbx1`` (fsemu, its own SQLite core DB: the mirror is what is
  under test here) and the real ``fscluster-agent`` process mirroring its registrations into
  ``cluster_registrations`` through HAProxy's write listener;
- :class:`LookupLoad` (directory ``sip_auth`` lookups of seeded users, failures and the
  longest stall recorded) and :class:`RegistrationStorm` (new phones registering in batches).

Every loop is bounded in count and time; :meth:`PbxStack.close` stops everything.
"""
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import List, Optional, Set, Tuple

from sqlalchemy import create_engine, select, text

from fscluster import seed
from fscluster.config import Config
from fscluster.db import Database
from fscluster.schema import cluster_registrations
from tests.servers.fsemu import start_emulator
from tests.servers.memcached import Memcached
from tests.servers.proc import Server, wait_for
from tests.xml_curl_support import XmlCurlProcess
from xml_curl import xmldoc

NODE = "pbx1"
DOMAIN = "demo.local"
BIN = os.path.dirname(sys.executable)


def sip_auth_body(user: str) -> bytes:
    return (f"hostname={NODE}&section=directory&tag_name=domain&key_name=name&key_value="
            f"{DOMAIN}&action=sip_auth&user={user}&domain={DOMAIN}").encode()


class LookupLoad(threading.Thread):
    """Lookups of existing users, one after another, until stopped (or the bounds hit)."""

    def __init__(self, url: str, users: List[str], max_requests: int = 200_000,
                 max_seconds: float = 300):
        super().__init__(daemon=True)
        self.url, self.users = url, users
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.stop_event = threading.Event()
        self.done = 0
        self.failures: List[Tuple[str, object]] = []
        self.max_stall_ms = 0.0

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        while (not self.stop_event.is_set() and self.done < self.max_requests
               and time.monotonic() < deadline):
            user = self.users[self.done % len(self.users)]
            started = time.monotonic()
            outcome = self._lookup(user)
            self.max_stall_ms = max(self.max_stall_ms, (time.monotonic() - started) * 1000)
            if outcome is not None:
                self.failures.append((user, outcome))
            self.done += 1

    def _lookup(self, user: str) -> Optional[object]:
        """None when the user's directory entry came back, else what came instead."""
        request = urllib.request.Request(self.url, data=sip_auth_body(user), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:
            return repr(exc)
        if body == xmldoc.NOT_FOUND or f'id="{user}"'.encode() not in body:
            return body[:200]
        return None

    def stop(self) -> "LookupLoad":
        self.stop_event.set()
        self.join(30)
        return self


class RegistrationStorm(threading.Thread):
    """New phones registering on the emulator in batches until stopped (bounded)."""

    def __init__(self, emulator, batch: int = 20, interval: float = 0.1,
                 max_batches: int = 3000, first_user: int = 0):
        super().__init__(daemon=True)
        self.emulator, self.batch, self.interval = emulator, batch, interval
        self.max_batches, self.next_user = max_batches, first_user
        self.stop_event = threading.Event()
        self.call_ids: Set[str] = set()

    def run(self):
        for _ in range(self.max_batches):
            if self.stop_event.is_set():
                return
            users = [f"7{self.next_user + i:06d}" for i in range(self.batch)]
            self.next_user += self.batch
            bindings = self.emulator.driver.register(users, domain=DOMAIN)
            self.call_ids.update(b.call_id for b in bindings)
            self.stop_event.wait(self.interval)

    def stop(self) -> "RegistrationStorm":
        self.stop_event.set()
        self.join(60)
        return self


class PbxStack:
    def __init__(self, workdir: str, front, users: int = 50):
        self.base = os.path.join(workdir, f"pbx-stack-{os.getpid()}")
        os.makedirs(self.base, exist_ok=True)
        self.front = front
        self.users = [str(1000 + i) for i in range(users)]
        self.db = Database.from_config(front.config)
        self.memcached = Memcached(self.base)
        self.warm = self.cold = self.emulator = self.agent = None
        self.storms = 0

    def start(self) -> "PbxStack":
        seed.seed(self.db, domains=1, extensions=len(self.users), vips=Config().vips)
        self.memcached.start()
        env = {"FSCLUSTER_DB_URL": self.front.config.db_url,
               "FSCLUSTER_DB_READ_URL": self.front.config.read_url,
               "FSCLUSTER_NODE_NAME": NODE, "FSCLUSTER_CACHE_LOCAL_ENTRIES": "0"}
        self.warm = XmlCurlProcess(self.base, dict(
            env, FSCLUSTER_MEMCACHED_SERVERS=f"127.0.0.1:{self.memcached.port}"), "xc-warm")
        self.cold = XmlCurlProcess(self.base, dict(env, FSCLUSTER_MEMCACHED_SERVERS=""),
                                   "xc-cold")
        self.warm.start(), self.cold.start()
        self.emulator = start_emulator(NODE, f"sqlite:///{self.base}/freeswitch.sqlite")
        self.start_agent()
        self.warm_up()
        return self

    def start_agent(self) -> None:
        ini = os.path.join(self.base, "agent.ini")
        with open(ini, "w", encoding="utf-8") as handle:
            handle.write(f"[node]\nname = {NODE}\ninterface = lo\n"
                         f"[db]\nconnect_timeout = 1\nretry_seconds = 3\n"
                         f"[esl]\nport = {self.emulator.port}\n"
                         f"[cluster]\nvips =\n"
                         f"[agent]\nsocket = {self.base}/agent.sock\n[log]\nformat = text\n")
        env = dict(os.environ, FSCLUSTER_DB_URL=self.front.config.db_url)
        self.agent = Server("agent", [f"{BIN}/fscluster-agent", "--config", ini],
                            os.path.join(self.base, "agent.log"), env=env).start()
        probe = self.emulator.driver.register(["6999999"], domain=DOMAIN)
        wait_for(lambda: self.agent.alive() and probe[0].call_id in self.mirror_call_ids(), 60,
                 "the agent mirroring registrations")

    def warm_up(self) -> None:
        """Every seeded user once through the warm service (fills memcached)."""
        load = LookupLoad(self.warm.url, self.users, max_requests=len(self.users))
        load.run()
        assert not load.failures, load.failures[:3]

    def storm(self) -> RegistrationStorm:
        storm = RegistrationStorm(self.emulator, first_user=self.storms * 100_000)
        self.storms += 1
        storm.start()
        return storm

    def mirror_call_ids(self) -> Set[str]:
        def read(conn):
            return {row[0] for row in conn.execute(select(cluster_registrations.c.call_id)
                                                   .where(cluster_registrations.c.node == NODE))}
        return self.db.retrying(read, write=True, deadline=5)

    def emulator_call_ids(self) -> Set[str]:
        engine = create_engine(f"sqlite:///{self.base}/freeswitch.sqlite")
        try:
            with engine.connect() as conn:
                return {row[0] for row in conn.execute(text(
                    "SELECT call_id FROM sip_registrations WHERE hostname = :h"), {"h": NODE})}
        finally:
            engine.dispose()

    def mirror_difference(self, timeout: float = 60) -> Tuple[Set[str], Set[str]]:
        """(lost, extra) call-ids of the mirror against FreeSWITCH's own rows, once the
        mirror has caught up (or the deadline passed)."""
        result = {}

        def settled():
            expected, mirrored = self.emulator_call_ids(), self.mirror_call_ids()
            result["diff"] = (expected - mirrored, mirrored - expected)
            return not any(result["diff"])
        try:
            wait_for(settled, timeout, "the mirror to match FreeSWITCH's registrations",
                     interval=0.5)
        except TimeoutError:
            pass
        return result["diff"]

    def close(self) -> None:
        for part in (self.agent, self.warm, self.cold, self.emulator, self.memcached):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # noqa: BLE001 - close must reach every part
                    pass
        self.db.dispose()
