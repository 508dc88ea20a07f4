"""The service as FreeSWITCH meets it: a real ``fscluster-xmlcurl`` process over HTTP, with
real memcached and MariaDB (and SQLite): warm and cold answers, a DB change served within
the generation poll bound, memcached killed mid-run, the DB stopped with a warm and a cold
cache, the DB hanging. Each test has its own memcached: fresh test databases reach the same generation
numbers, so a shared one would hand one test's answers to another."""
import json
import os

import pytest
from lxml import etree
from sqlalchemy import update
from sqlalchemy.engine import make_url

from fscluster import schema, seed
from fscluster.config import Config
from fscluster.db import Database
from tests.servers.mariadb import MariaDB
from tests.servers.memcached import Memcached
from tests.servers.proc import wait_for
from tests.servers.tcpproxy import TcpProxy
from tests.xml_curl_support import XmlCurlProcess, fixture_body, fixture_names
from xml_curl import xmldoc

pytestmark = pytest.mark.integration
POLL = 0.5          # FSCLUSTER_CACHE_GENERATION_POLL given to the service
BOUND = 2.0         # DESIGN.md: every node serves a change within 2 s


def user_body(user="1001", domain="demo.local"):
    return f"hostname=pbx1&section=directory&action=sip_auth&user={user}&domain={domain}".encode()


def variables(body):
    return {v.get("name"): v.get("value") for v in etree.fromstring(body).iter("variable")}


def start(tmp_path, db_url, memcached=None, **env):
    env = {"FSCLUSTER_DB_URL": db_url, "FSCLUSTER_NODE_NAME": "pbx1",
           "FSCLUSTER_MEMCACHED_SERVERS": f"127.0.0.1:{memcached.port}" if memcached else "",
           **env}
    return XmlCurlProcess(str(tmp_path), env).start()


@pytest.fixture
def seeded_mariadb(mariadb_db):
    seed.seed(mariadb_db, domains=2, extensions=10, vips=Config().vips)
    return mariadb_db


@pytest.fixture
def own_memcached(tmp_path):
    server = Memcached(str(tmp_path)).start()
    yield server
    server.stop()


def test_sqlite_without_memcached_answers_every_capture(tmp_path):
    url = f"sqlite:///{tmp_path}/fscluster.sqlite"
    db = Database(url)
    db.create_schema()
    seed.seed(db, domains=1, extensions=5, vips=Config().vips)
    service = start(tmp_path, url)
    try:
        for name in fixture_names():
            status, body, headers = service.post(fixture_body(name))
            assert status == 200, name
            assert etree.fromstring(body).tag == "document"
            assert headers["X-Fscluster-Source"] == (
                "local" if name == "directory-user_call" else "db")  # register's answer
    finally:
        service.stop()


def test_mariadb_memcached_warm_cold_and_generation_propagation(tmp_path, seeded_mariadb,
                                                                 own_memcached):
    service = start(tmp_path, seeded_mariadb.url, own_memcached)
    try:
        cold = {name: service.post(fixture_body(name)) for name in fixture_names()}
        warm = {name: service.post(fixture_body(name)) for name in fixture_names()}
        assert {name: (c[0], c[2]["X-Fscluster-Source"]) for name, c in cold.items()} == {
            name: (200, "local" if name == "directory-user_call" else "db")  # = register's
            for name in fixture_names()}
        assert {name: w[2]["X-Fscluster-Source"] for name, w in warm.items()} == {
            name: "local" for name in fixture_names()}
        assert all(warm[name][1] == cold[name][1] for name in fixture_names())
    finally:
        service.stop()
    restarted = start(tmp_path, seeded_mariadb.url, own_memcached)  # empty process, warm memcached
    try:
        again = {name: restarted.post(fixture_body(name)) for name in fixture_names()}
        assert {name: a[2]["X-Fscluster-Source"] for name, a in again.items()} == {
            name: "local" if name == "directory-user_call" else "memcached"
            for name in fixture_names()}
        assert all(again[name][1] == cold[name][1] for name in fixture_names())
        assert variables(restarted.post(user_body())[1])["toll_allow"] == "domestic"
        with seeded_mariadb.write.begin() as conn:
            conn.execute(update(schema.v_extensions).where(
                schema.v_extensions.c.extension == "1001").values(toll_allow="international"))
        wait_for(lambda: variables(restarted.post(user_body())[1])["toll_allow"] ==
                 "international", BOUND, "the change to be served")
    finally:
        restarted.stop()


def test_memcached_killed_mid_run_answers_from_the_db(tmp_path, seeded_mariadb, own_memcached):
    service = start(tmp_path, seeded_mariadb.url, own_memcached,
                    FSCLUSTER_CACHE_LOCAL_ENTRIES="0")
    try:
        expected = service.post(user_body())[1]
        assert service.post(user_body())[2]["X-Fscluster-Source"] == "memcached"
        own_memcached.kill()
        for _ in range(20):
            status, body, headers = service.post(user_body())
            assert (status, body, headers["X-Fscluster-Source"]) == (200, expected, "db")
        assert service.post(user_body("nobody"))[1] == xmldoc.NOT_FOUND
    finally:
        service.stop()


def test_db_stopped_warm_cache_answers_cold_gets_503_then_recovers(tmp_path, own_memcached):
    mariadb = MariaDB(str(tmp_path), name=f"mariadb-xc-{os.getpid()}")
    mariadb.install()
    mariadb.start()
    try:
        url = mariadb.create_database("xc")
        db = Database(url)
        db.create_schema()
        seed.seed(db, domains=1, extensions=5, vips=Config().vips)
        db.dispose()
        service = start(tmp_path, url, own_memcached, FSCLUSTER_CACHE_LOCAL_ENTRIES="0")
        try:
            warm = service.post(user_body("1001"))[1]
            mariadb.stop()
            status, body, headers = service.post(user_body("1001"))
            assert (status, body, headers["X-Fscluster-Source"]) == (200, warm, "memcached")
            status, body, _headers = service.post(user_body("1002"))
            assert status == 503 and body != xmldoc.NOT_FOUND
            assert service.post(user_body("1002"))[0] == 503      # nothing was cached
            logged = [json.loads(line) for line in service.log_text().splitlines()
                      if line.startswith("{")]
            assert any(r["msg"].startswith("db unavailable") and r["level"] == "warning"
                       for r in logged)
            assert "fscluster-test-pw" not in service.log_text()
            mariadb.start()
            wait_for(lambda: service.post(user_body("1002"))[0] == 200, 30,
                     "answers after the DB is back")
        finally:
            service.stop()
    finally:
        mariadb.stop()


def test_a_hung_db_is_abandoned_before_freeswitch_gives_up(tmp_path, seeded_mariadb):
    """A black-holed DB (connections up, no answer ever) gets a 503 within what the rendered
    binding timeout is derived from (``xml_curl_answer_within``: 1 + 4 s here) — not after
    PyMySQL's read timeout (3 × 4 = 12 s); the abandoned connection is dropped, not pooled,
    and answers come back once the DB does."""
    url = make_url(seeded_mariadb.url)
    proxy = TcpProxy("127.0.0.1", (url.host, url.port))
    service = start(tmp_path, url.set(port=proxy.port).render_as_string(hide_password=False),
                    FSCLUSTER_CACHE_LOCAL_ENTRIES="0", FSCLUSTER_XML_CURL_DB_DEADLINE="1",
                    FSCLUSTER_DB_CONNECT_TIMEOUT="4")
    try:
        assert service.post(user_body("1001"))[0] == 200
        proxy.set_hung(True)
        for user in ("1002", "1003"):           # the second may also refresh the generation
            status, body, headers = service.post(user_body(user), timeout=5 + 3)
            assert (status, headers["X-Fscluster-Source"]) == (503, "unavailable")
        proxy.set_hung(False)
        wait_for(lambda: service.post(user_body("1002"))[0] == 200, 30, "answers again")
        assert service.post(user_body("1004"))[0] == 200
    finally:
        service.stop()
        proxy.close()
