"""A real single MariaDB server (Debian's mariadb-server) in a temporary datadir.

The Galera fixture (tests/servers/galera.py) builds three of these into a cluster; tests that
only need "a MariaDB" use one, which starts in a few seconds.
"""
import os
import shutil
import subprocess

import pymysql

from tests.servers.proc import Server, free_port, wait_for

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
TEST_USER, TEST_PASSWORD = "fscluster", "fscluster-test-pw"


def install_datadir(datadir: str, log_path: str) -> None:
    os.makedirs(datadir, exist_ok=True)
    with open(log_path, "ab") as log:
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)


class MariaDB:
    """One mariadbd; ``extra_args`` lets the Galera fixture add its wsrep options."""

    def __init__(self, workdir: str, name: str = "mariadb", extra_args=()):
        self.name = name
        self.base = os.path.join(workdir, name)
        self.datadir = os.path.join(self.base, "data")
        self.socket = os.path.join(self.base, "mysqld.sock")
        self.port = free_port()
        self.log_path = os.path.join(self.base, "server.log")
        self.extra_args = list(extra_args)
        self.server = None

    def argv(self):
        return [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket}",
                f"--pid-file={self.base}/mysqld.pid", f"--log-error={self.log_path}",
                "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
                "--skip-name-resolve", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci"] + self.extra_args

    def install(self) -> None:
        if not os.path.isdir(os.path.join(self.datadir, "mysql")):
            install_datadir(self.datadir, os.path.join(self.base, "install.log"))

    def start(self, wait: bool = True) -> "MariaDB":
        os.makedirs(self.base, exist_ok=True)
        self.server = Server(self.name, self.argv(), os.path.join(self.base, "stdout.log"))
        self.server.start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        def ready():
            self.server.alive()
            with self.root_connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return True
        wait_for(ready, timeout, f"{self.name} on port {self.port}")

    def root_connection(self, **kwargs):
        return pymysql.connect(unix_socket=self.socket, user="root", connect_timeout=2,
                               autocommit=True, **kwargs)

    def sql(self, statement: str, args=None):
        with self.root_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall()

    def create_database(self, name: str) -> str:
        """A fresh database and a TCP user for it; returns its SQLAlchemy URL."""
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        self.sql(f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' IDENTIFIED BY "
                 f"'{TEST_PASSWORD}'")
        self.sql(f"GRANT ALL ON *.* TO '{TEST_USER}'@'127.0.0.1'")
        return self.url(name)

    def url(self, database: str, port: int = None) -> str:
        return (f"mysql+pymysql://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:"
                f"{port or self.port}/{database}")

    def stop(self) -> None:
        if self.server:
            self.server.stop(timeout=60)

    def kill(self) -> None:
        if self.server:
            self.server.kill()
