"""``python -m fsemu`` as its own process, driven through the JSON-lines control socket."""
import json
import os

import pytest

from tests.servers.fsemu import ControlClient, EslClient, start_emulator_process
from tests.servers.proc import free_port, port_open, wait_for

pytestmark = pytest.mark.integration


def test_standalone_emulator_serves_esl_and_obeys_the_control_socket(tmp_path):
    control_port = free_port()
    server = start_emulator_process(
        "pbx9", f"sqlite:///{tmp_path}/fs.sqlite", os.path.join(tmp_path, "fsemu.log"),
        password="pw", extra_args=["--control-port", str(control_port),
                                   "--profile", "vip2:127.0.0.1:5092"])
    try:
        wait_for(lambda: port_open(control_port), 30, "fsemu control socket")
        control = ControlClient("127.0.0.1", control_port)
        client = EslClient(server.port).login("pw")
        client.send("event plain CUSTOM sofia::register")
        (binding,) = control.request("register", users=["1000"], profile="vip2")
        assert client.events(1)[0].get("call-id") == binding["call_id"]
        shown = json.loads(control.request("api", command="show registrations as json"))
        assert shown["rows"][0]["url"] == "sofia/vip2/sip:1000@127.0.0.1:20000"
        with pytest.raises(RuntimeError, match="KeyError"):
            control.request("no_such_op")
        control.close()
    finally:
        server.stop()
    assert not server.running
    assert "fsemu running" in server.log_tail()
