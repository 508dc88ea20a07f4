"""Shared fixtures: real servers on loopback (session-scoped, cleaned up even on failure)
and fresh databases per test."""
import itertools
import logging
import os
import shutil
import tempfile

import pytest

from fscluster.db import Database
from tests.servers.galera import GaleraCluster
from tests.servers.haproxy import GaleraFront
from tests.servers.fsemu import fsemu  # noqa: F401 - fixture, shared by every emulator test
from tests.servers.mariadb import MariaDB
from tests.servers.memcached import Memcached

_db_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _restore_logging():
    """CLI tests run ``log.setup()``, which binds a handler to pytest's captured stderr; put
    the root logger back so a later thread never logs into a closed capture file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def workdir():
    path = tempfile.mkdtemp(prefix="fscluster-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def memcached_server(workdir):
    server = Memcached(workdir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server(workdir):
    server = MariaDB(workdir)
    server.install()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def galera_cluster(workdir):
    """A real 3-node Galera cluster (one per session). Destructive tests call
    ``galera_cluster.restore()`` when done, so the next test finds 3 Synced nodes."""
    cluster = GaleraCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.teardown()


@pytest.fixture(scope="session")
def galera_front(workdir, galera_cluster):
    """HAProxy with the rendered config and a ``fscluster galera agent`` per node, in front of
    ``galera_cluster``; ``galera_front.config`` points db_url/read_url through it, at a
    database holding the fscluster schema."""
    database = f"fsc_{os.getpid()}"
    galera_cluster.create_database(database)
    front = GaleraFront(workdir, galera_cluster, database)
    try:
        front.start()
        db = Database.from_config(front.config)
        db.create_schema()
        db.dispose()
        yield front
    finally:
        front.stop()


@pytest.fixture
def mariadb_db(mariadb_server):
    """A fresh schema on the real MariaDB for one test."""
    url = mariadb_server.create_database(f"t{os.getpid()}_{next(_db_names)}")
    db = Database(url)
    db.create_schema()
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/fscluster.sqlite")
    db.create_schema()
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def any_db(request):
    """The same test on the embedded default and on real MariaDB."""
    yield request.getfixturevalue(f"{request.param}_db")
