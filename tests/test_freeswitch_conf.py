"""``fscluster render freeswitch``: switchname, shared DSN with multi-statements, VIP profiles."""
import argparse

import pytest
from lxml import etree

from fscluster.config import load
from fscluster.errors import ConfigError
from fscluster.freeswitch_conf import render_freeswitch

ENV = {"FSCLUSTER_DB_URL": "mysql+pymysql://fs:s3cret@127.0.0.1:3306/fusionpbx"}


def params(xml):
    return {p.get("name"): p.get("value") for p in etree.fromstring(xml).iter("param")}


def test_every_file_of_a_node():
    files = render_freeswitch(load(environ=ENV), argparse.Namespace(node="pbx3"))
    assert sorted(files) == [
        "autoload_configs/event_socket.conf.xml", "autoload_configs/switch.conf.xml",
        "autoload_configs/xml_curl.conf.xml", "odbc.ini", "sip_profiles/vips/vip1.xml",
        "sip_profiles/vips/vip2.xml"]
    switch = params(files["autoload_configs/switch.conf.xml"])
    assert switch["switchname"] == "pbx3"
    assert switch["core-db-dsn"] == "odbc://fscluster:fs:s3cret"
    assert "Option = 67108864" in files["odbc.ini"] and "DATABASE = fusionpbx" in files["odbc.ini"]
    esl = params(files["autoload_configs/event_socket.conf.xml"])
    assert (esl["listen-ip"], esl["listen-port"], esl["apply-inbound-acl"]) == \
        ("127.0.0.1", "8021", "loopback.auto")


def test_vip_profile_settings():
    files = render_freeswitch(load(environ=ENV), argparse.Namespace(node=None))
    vip2 = params(files["sip_profiles/vips/vip2.xml"])
    assert vip2["sip-ip"] == vip2["rtp-ip"] == "198.18.0.102"
    assert (vip2["track-calls"], vip2["auto-clear-sql"]) == ("true", "false")
    assert vip2["odbc-dsn"] == "odbc://fscluster:fs:s3cret"


def test_values_are_escaped_and_bad_urls_refused():
    env = dict(ENV, FSCLUSTER_ESL_PASSWORD='pw"<&>')
    files = render_freeswitch(load(environ=env), argparse.Namespace(node=None))
    assert params(files["autoload_configs/event_socket.conf.xml"])["password"] == 'pw"<&>'
    with pytest.raises(ConfigError, match="ODBC"):
        render_freeswitch(load(environ={"FSCLUSTER_DB_URL": "sqlite:///x.db"}),
                          argparse.Namespace(node=None))
    with pytest.raises(ConfigError, match="':'"):
        render_freeswitch(load(environ={"FSCLUSTER_DB_URL": "mysql+pymysql://fs:a:b@h/db"}),
                          argparse.Namespace(node=None))
