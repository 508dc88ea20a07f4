"""``fscluster render galera``: the check user's SQL (escaped) and the agent's unit."""
from fscluster import config as config_mod
from fscluster.galera_conf import render, sql_string


def test_password_is_escaped_into_one_sql_string():
    assert sql_string("a'b\\c") == "'a''b\\\\c'"
    files = render(config_mod.load(environ={"FSCLUSTER_GALERA_CHECK_PASSWORD": "x'); DROP --"}))
    sql = files["galera-check-user.sql"]
    assert "IDENTIFIED BY 'x''); DROP --';" in sql
    assert [line.split()[0] for line in sql.splitlines()] == ["--", "CREATE", "ALTER"]


def test_agent_unit_listens_on_the_port_haproxy_checks():
    config = config_mod.load(environ={"FSCLUSTER_GALERA_AGENT_PORT": "9300"})
    unit = render(config)["fscluster-galera-agent.service"]
    assert "galera agent --listen 0.0.0.0:9300" in unit and "Restart=always" in unit
