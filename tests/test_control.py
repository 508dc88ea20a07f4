"""The agent's control socket: one JSON line each way, errors as one line."""
import os

import gevent
import pytest

from esl_apps.control import ControlError, ControlServer, request
from fscluster.errors import FsclusterError


@pytest.fixture
def server(tmp_path):
    def refuse(req):
        raise FsclusterError("vip9: no such VIP")
    srv = ControlServer(str(tmp_path / "run" / "agent.sock"),
                        {"echo": lambda req: {"got": req["value"]}, "refuse": refuse})
    srv.start()
    yield srv
    srv.stop()


def _call(path, payload):
    return gevent.get_hub().threadpool.apply(request, (path, payload, 5))


def test_round_trip_and_socket_is_private(server):
    assert _call(server.path, {"cmd": "echo", "value": 7}) == {"got": 7}
    assert oct(os.stat(server.path).st_mode & 0o777) == "0o600"


def test_errors_come_back_as_one_line(server):
    with pytest.raises(ControlError, match="vip9: no such VIP"):
        _call(server.path, {"cmd": "refuse"})
    with pytest.raises(ControlError, match="commands: echo, refuse"):
        _call(server.path, {"cmd": "nope"})
    assert server.dispatch(b"x" * 5000 + b"\n")["ok"] is False
    assert server.dispatch(b"not json\n")["ok"] is False


def test_no_agent_is_a_clear_error(tmp_path):
    with pytest.raises(ControlError, match="agent socket"):
        request(str(tmp_path / "absent.sock"), {"cmd": "status"}, 1)
