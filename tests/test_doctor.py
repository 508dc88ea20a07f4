"""doctor: HAProxy stats parsing (pure), memcached and event-socket probes against real
sockets, and the CLI's table and exit code."""
import socket
import threading

import pytest

from esl_apps.protocol import CommandParser, encode_frame
from fscluster.cli import main
from fscluster.doctor import (esl_check, haproxy_rows, memcached_checks, parse_stat,
                              parse_stick_server)
from tests.servers.proc import free_port

STAT = """# pxname,svname,qcur,status,addr,sid,check_status,last_chk,last_agt,
galera_read,FRONTEND,,OPEN,,,,,,
galera_read,db1,0,UP,127.0.0.1:3306,1,L4OK,,up,
galera_read,db2,0,DOWN (agent),127.0.0.1:3307,2,L7STS,,down (not Synced: Donor/Desynced),
galera_read,BACKEND,0,UP,,,,,,
galera_write,FRONTEND,,OPEN,,,,,,
galera_write,db1,0,UP,127.0.0.1:3306,1,,,,
galera_write,db2,0,DOWN,127.0.0.1:3307,2,,,,
galera_write,BACKEND,0,UP,,,,,,
"""
TABLE = ("# table: galera_write, type: integer, size:2, used:1\n"
         "0x55: key=1 use=0 exp=0 server_id=1 server_key=db1\n")


def test_haproxy_rows_say_which_node_is_out_and_why_and_who_writes():
    rows = {r.component: r for r in haproxy_rows(parse_stat(STAT), TABLE)}
    assert rows["haproxy galera_read/db1"].ok
    db2 = rows["haproxy galera_read/db2"]
    assert not db2.ok and "Donor/Desynced" in db2.detail
    assert rows["haproxy galera_write"].ok
    assert rows["haproxy galera_write"].detail.startswith("writer db1")


def test_write_listener_with_no_node_up_is_down():
    stat = STAT.replace("galera_write,db1,0,UP", "galera_write,db1,0,DOWN")
    row = [r for r in haproxy_rows(parse_stat(stat), "") if r.component == "haproxy galera_write"]
    assert not row[0].ok and "writes fail" in row[0].detail


def test_stick_table_writer_parsed_with_or_without_server_key():
    assert parse_stick_server(TABLE) == ("1", "db1")
    assert parse_stick_server("0x1: key=1 use=0 exp=0 server_id=3\n") == ("3", "")
    assert parse_stick_server("# table: galera_write, used:0\n") is None


@pytest.mark.integration
def test_memcached_probe(memcached_server):
    closed = free_port()
    rows = memcached_checks([memcached_server.address, ("127.0.0.1", closed)], 1.0)
    assert rows[0].ok and rows[0].detail.startswith("VERSION")
    assert not rows[1].ok and rows[1].detail == "Connection refused"


class _FakeEventSocket:
    """Just enough mod_event_socket for a login: auth/request, then +OK or -ERR."""

    def __init__(self, password):
        self.password = password
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(encode_frame([("Content-Type", "auth/request")]))
            parser = CommandParser()
            commands = []
            while not commands:
                commands = parser.commands(conn.recv(1024))
            ok = commands[0] == f"auth {self.password}"
            conn.sendall(encode_frame([("Content-Type", "command/reply"),
                                       ("Reply-Text", "+OK accepted" if ok else "-ERR invalid")]))
        self.sock.close()


def test_event_socket_login_accepted_and_rejected():
    assert esl_check("127.0.0.1", _FakeEventSocket("ClueCon").port, "ClueCon", 2).ok
    rejected = esl_check("127.0.0.1", _FakeEventSocket("ClueCon").port, "wrong", 2)
    assert not rejected.ok and rejected.detail == "auth rejected: -ERR invalid"


def test_event_socket_that_never_speaks_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    with silent:
        row = esl_check("127.0.0.1", silent.getsockname()[1], "ClueCon", 0.3)
    assert not row.ok and row.detail == "timed out"


def test_doctor_cli_exits_1_and_names_every_component(tmp_path, capsys):
    closed = free_port()
    ini = tmp_path / "fscluster.ini"
    ini.write_text(f"[galera]\nnodes = db1=127.0.0.1:{closed}\n"
                   f"[haproxy]\nstats_socket = {tmp_path}/none.sock\n"
                   f"[memcached]\nservers = 127.0.0.1:{closed}\n"
                   f"[esl]\nport = {closed}\n[log]\nformat = text\n")
    assert main(["--config", str(ini), "doctor", "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    for component in ("galera db1", "haproxy", "memcached", "event socket"):
        assert component in out
    assert "stats socket: No such file or directory" in out
