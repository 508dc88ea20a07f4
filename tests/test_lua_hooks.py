"""lua/fscluster.lua under a real Lua interpreter, with FreeSWITCH's Lua API stubbed
(``argv``, ``stream:write``, ``freeswitch.consoleLog``, ``freeswitch.getGlobalVariable``) and a
stand-in ``fscluster`` CLI that echoes its arguments."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LUA = shutil.which("lua5.3") or shutil.which("lua5.2") or shutil.which("lua")
pytestmark = pytest.mark.skipif(LUA is None, reason="no Lua interpreter")

PRELUDE = """
local written, logged = {}, {}
stream = { write = function(self, text) table.insert(written, text) end }
freeswitch = {
  consoleLog = function(level, msg) table.insert(logged, level .. ":" .. msg) end,
  getGlobalVariable = function(name) if name == "fscluster_cli" then return CLI end end,
}
argv = ARGS
dofile(SCRIPT)
io.write(table.concat(written), "@@LOG@@", table.concat(logged))
"""


@pytest.fixture
def fake_cli(tmp_path):
    path = tmp_path / "fscluster"
    path.write_text("#!/bin/sh\necho \"cli: $*\"\n[ \"$1\" = release ] && exit 3\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def run_lua(cli, *args):
    lua_args = ", ".join(f'"{a}"' for a in args)
    code = (f'CLI = "{cli}"\nSCRIPT = "{ROOT}/lua/fscluster.lua"\nARGS = {{ {lua_args} }}\n'
            + PRELUDE)
    done = subprocess.run([LUA, "-e", code], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("@@LOG@@", 1)


def test_status_and_flush_run_the_cli(fake_cli):
    assert run_lua(fake_cli, "status") == ["cli: status\n", "info:fscluster status: done\n"]
    assert run_lua(fake_cli, "flush")[0] == "cli: cache flush\n"


def test_vip_commands_and_a_failing_cli(fake_cli):
    assert run_lua(fake_cli, "takeover", "vip1")[0] == "cli: takeover vip1\n"
    written, logged = run_lua(fake_cli, "release", "vip2")
    assert written == "cli: release vip2\n" and logged.startswith("err:")


def test_bad_arguments_never_reach_a_shell(fake_cli):
    for args in (("takeover", "vip1;touch /tmp/x"), ("takeover",), ("nope",), ()):
        written, logged = run_lua(fake_cli, *args)
        assert written.startswith("usage: lua fscluster.lua") and logged == ""
    assert run_lua("relative/path", "status")[0].startswith("-ERR global fscluster_cli")
