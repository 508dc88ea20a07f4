"""The rendered xml_curl.conf.xml: mod_xml_curl's binding to this node's service."""
import dataclasses

from lxml import etree

from fscluster import freeswitch_conf
from fscluster.cli import main
from fscluster.config import Config


def binding_params(text):
    root = etree.fromstring(text.encode())
    assert root.get("name") == "xml_curl.conf"
    binding = root.find("bindings/binding")
    return {p.get("name"): p for p in binding.iter("param")}


def test_default_binding_without_credentials():
    params = binding_params(freeswitch_conf.render_xml_curl_conf(Config()))
    url = params["gateway-url"]
    assert url.get("value") == "http://127.0.0.1:8080/fscluster"
    assert url.get("bindings") == "directory|dialplan|configuration"
    assert "gateway-credentials" not in params
    assert params["timeout"].get("value") == "4"      # 1.5 s DB budget + 3 s connect → 4.5 s


def test_credentials_are_escaped_and_timeout_stays_under_the_guarantee():
    config = dataclasses.replace(Config(), listen=("0.0.0.0", 9090), http_username="fs",
                                 http_password='p&<"w', xml_curl_db_deadline=1.0,
                                 db_connect_timeout=1.0)
    params = binding_params(freeswitch_conf.render_xml_curl_conf(config))
    assert params["gateway-url"].get("value") == "http://127.0.0.1:9090/fscluster"
    assert params["gateway-credentials"].get("value") == 'fs:p&<"w'
    assert params["auth-scheme"].get("value") == "basic"
    assert freeswitch_conf.xml_curl_answer_within(config) == 2.0
    assert params["timeout"].get("value") == "1"


def test_render_command_prints_the_file(capsys, monkeypatch):
    monkeypatch.delenv("FSCLUSTER_CONFIG", raising=False)
    assert main(["render", "xml_curl"]) == 0
    out = capsys.readouterr().out
    assert "autoload_configs/xml_curl.conf.xml" in out and 'name="gateway-url"' in out
