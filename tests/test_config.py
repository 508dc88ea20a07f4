"""Config: defaults, INI, environment overrides, and one clear line for every bad value."""
import pytest

from fscluster import config
from fscluster.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "fscluster.ini"
    path.write_text(text)
    return str(path)


def test_defaults_are_the_embedded_sqlite_and_three_nodes():
    cfg = config.load(environ={})
    assert cfg.db_url.startswith("sqlite:///")
    assert cfg.nodes == ("pbx1", "pbx2", "pbx3")
    assert [v.name for v in cfg.vips] == ["vip1", "vip2"]
    assert all(v.address.startswith("198.18.") for v in cfg.vips)


def test_ini_then_environment(tmp_path):
    path = write(tmp_path, "[node]\nname = pbx2\n[memcached]\nservers = 127.0.0.1:1,127.0.0.2\n"
                           "[xml_curl]\nlisten = 127.0.0.1:9000\n")
    cfg = config.load(path, environ={"FSCLUSTER_NODE_NAME": "pbx3"})
    assert cfg.node_name == "pbx3"
    assert cfg.memcached_servers == (("127.0.0.1", 1), ("127.0.0.2", 11211))
    assert cfg.listen == ("127.0.0.1", 9000)


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, "[db]\nurl = sqlite:////tmp/x.sqlite\n")
    assert config.load(environ={"FSCLUSTER_CONFIG": path}).db_url == "sqlite:////tmp/x.sqlite"


@pytest.mark.parametrize("text, key", [
    ("[db]\nurl = oracle://x\n", "db.url"),
    ("[node]\nname = bad name!\n", "node.name"),
    ("[xml_curl]\nlisten = 127.0.0.1:http\n", "xml_curl.listen"),
    ("[esl]\nport = -3\n", "esl.port"),
    ("[nosuch]\nkey = 1\n", "nosuch.key"),
    ("[cluster]\nvips = vip1=999.1.1.1/24@pbx1>pbx3\n", "cluster.vips"),
    ("[cluster]\nvips = vip1=198.18.0.1/24@pbx9>pbx3\n", "cluster.vips"),
    ("[log]\nformat = xml\n", "log.format"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), environ={})
    assert str(err.value).startswith(key)
    assert "\n" not in str(err.value)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="config file .*No such file"):
        config.load(str(tmp_path / "absent.ini"), environ={})


def test_secrets_stay_out_of_repr_and_redacted_urls():
    cfg = config.load(environ={"FSCLUSTER_DB_URL": "mysql+pymysql://u:s3cret@h/db",
                               "FSCLUSTER_ESL_PASSWORD": "eslpw"})
    assert "s3cret" not in repr(cfg) and "eslpw" not in repr(cfg)
    assert config.redact_url(cfg.db_url) == "mysql+pymysql://u:***@h/db"


def test_cli_reports_config_errors_without_traceback(capsys):
    from fscluster.cli import main
    import os
    os.environ["FSCLUSTER_DB_URL"] = "nonsense"
    try:
        assert main(["db", "init"]) == 2
    finally:
        del os.environ["FSCLUSTER_DB_URL"]
    err = capsys.readouterr().err
    assert err.startswith("fscluster: db.url:") and "Traceback" not in err
