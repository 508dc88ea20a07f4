"""FreeSWITCH configuration files rendered from fscluster's config (pure functions).

Each ``render_*`` takes the Config and returns the file's text; :func:`render_xml_curl` is
the ``fscluster render xml_curl`` target, :func:`render_freeswitch` the ``fscluster render
freeswitch`` one (every file of a node, xml_curl.conf.xml included). Rendered with lxml so
values are escaped.
"""
import math

from typing import Dict

from lxml import etree

from fscluster.config import Config
from fscluster.errors import ConfigError

#: The path FreeSWITCH posts to (any path is answered; this one names the caller).
XML_CURL_PATH = "/fscluster"


def xml_curl_answer_within(config: Config) -> float:
    """The longest the service takes to answer (200 or 503): the lookup's DB budget, plus
    one connection attempt that may already be under way when the budget runs out."""
    return config.xml_curl_db_deadline + config.db_connect_timeout


def xml_curl_timeout(config: Config) -> int:
    """mod_xml_curl's ``timeout`` (whole seconds, CURLOPT_TIMEOUT): the largest whole second
    strictly under what the service guarantees, at least 1 — so FreeSWITCH never waits on
    a lookup longer than the service would take to give up on it (DESIGN.md §3)."""
    return max(1, math.ceil(xml_curl_answer_within(config)) - 1)


def gateway_url(config: Config) -> str:
    host, port = config.listen
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{XML_CURL_PATH}"


def _param(parent, name: str, value: str, **attrs):
    node = etree.SubElement(parent, "param", name=name, value=value)
    for key, attr in attrs.items():
        node.set(key, attr)
    return node


def render_xml_curl_conf(config: Config) -> str:
    """``autoload_configs/xml_curl.conf.xml``: one binding for directory, dialplan and
    configuration pointing at this node's service."""
    root = etree.Element("configuration", name="xml_curl.conf",
                         description="cURL XML Gateway (fscluster)")
    binding = etree.SubElement(etree.SubElement(root, "bindings"), "binding", name="fscluster")
    _param(binding, "gateway-url", gateway_url(config),
           bindings="directory|dialplan|configuration")
    if config.http_username:
        _param(binding, "gateway-credentials",
               f"{config.http_username}:{config.http_password}")
        _param(binding, "auth-scheme", "basic")
    _param(binding, "timeout", str(xml_curl_timeout(config)))
    _param(binding, "disable-100-continue", "true")
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def render_xml_curl(config: Config, args) -> dict:
    """``fscluster render xml_curl``."""
    return {"autoload_configs/xml_curl.conf.xml": render_xml_curl_conf(config)}


# ---------------------------------------------------------------------- the cluster side
#: MariaDB Connector/ODBC ``Option`` bit for multi-statements (MULTI_STATEMENTS, 1 << 26):
#: without it sofia logs "Cannot execute batched statements" and the profile does not start.
ODBC_MULTI_STATEMENTS = 67108864
ODBC_DSN_NAME = "fscluster"


def _db_parts(config: Config):
    """(host, port, database, user, password) of the write path, for ODBC."""
    from sqlalchemy.engine import make_url
    url = make_url(config.db_url)
    if not url.drivername.startswith(("mysql", "mariadb")):
        raise ConfigError(f"db.url: FreeSWITCH shares its tables through MariaDB ODBC; "
                          f"{url.drivername} has no rendering")
    return (url.host or "127.0.0.1", url.port or 3306, url.database or "",
            url.username or "", url.password or "")


def odbc_dsn(config: Config) -> str:
    """The DSN FreeSWITCH is given (``odbc://DSN:user:pass``, DSN defined in odbc.ini)."""
    _host, _port, _db, user, password = _db_parts(config)
    if ":" in user or ":" in password:
        raise ConfigError("db.url: FreeSWITCH's DSN is DSN:user:password, so neither the user "
                          "nor the password may contain ':'")
    return f"odbc://{ODBC_DSN_NAME}:{user}:{password}"


def render_odbc_ini(config: Config) -> str:
    """``/etc/odbc.ini``: the DSN on the local HAProxy write listener, multi-statements on."""
    host, port, database, _user, _password = _db_parts(config)
    return (f"[{ODBC_DSN_NAME}]\nDescription = fscluster shared FreeSWITCH tables (Galera via "
            f"HAProxy)\nDriver = MariaDB Unicode\nSERVER = {host}\nPORT = {port}\n"
            f"DATABASE = {database}\nOption = {ODBC_MULTI_STATEMENTS}\n")


def render_event_socket_conf(config: Config) -> str:
    """``event_socket.conf.xml``: loopback only, the agent's password."""
    root = etree.Element("configuration", name="event_socket.conf",
                         description="Socket Client (fscluster agent)")
    settings = etree.SubElement(root, "settings")
    _param(settings, "nat-map", "false")
    _param(settings, "listen-ip", config.esl_host)
    _param(settings, "listen-port", str(config.esl_port))
    _param(settings, "password", config.esl_password)
    _param(settings, "apply-inbound-acl", "loopback.auto")
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def render_switch_conf(config: Config, node: str) -> str:
    """``switch.conf.xml``: switchname = node name (the identity every row carries) and the
    core tables (``registrations``, ``channels``, ``calls``, ``recovery``) in the shared DB."""
    root = etree.Element("configuration", name="switch.conf", description="Core Configuration")
    settings = etree.SubElement(root, "settings")
    _param(settings, "switchname", node)
    _param(settings, "core-db-dsn", odbc_dsn(config))
    _param(settings, "max-sessions", "1000")
    _param(settings, "sessions-per-second", "30")
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def vip_profile_forced(config: Config) -> Dict[str, str]:
    """Settings every VIP profile carries wherever it is rendered (this static reference or
    the sofia.conf the xml_curl service serves): tracked calls and registrations in the
    shared DB, and a start that does not clear the other nodes' rows (DESIGN.md §3). Without
    a MariaDB URL (the embedded demo) there is no shared DSN to give."""
    forced = {"track-calls": "true", "auto-clear-sql": "false"}
    if config.db_url.startswith(("mysql", "mariadb")):
        forced["odbc-dsn"] = odbc_dsn(config)
    return forced


def render_vip_profile(config: Config, vip) -> str:
    """``sip_profiles/vips/<vip>.xml``: the VIP profile's cluster settings — the address is
    the VIP, registrations and tracked calls live in the shared DB, nothing clears other
    nodes' rows on start. The xml_curl service serves the same profile from the DB only to
    the node holding the VIP; this file is the static reference of what it must contain."""
    root = etree.Element("profile", name=vip.name)
    settings = etree.SubElement(root, "settings")
    values = {"sip-ip": vip.address, "rtp-ip": vip.address, "ext-sip-ip": vip.address,
              "ext-rtp-ip": vip.address, "odbc-dsn": odbc_dsn(config), "auth-calls": "true"}
    values.update(vip_profile_forced(config))
    for name, value in values.items():
        _param(settings, name, value)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def render_freeswitch(config: Config, args) -> dict:
    """``fscluster render freeswitch``: every FreeSWITCH-side file of one node."""
    node = getattr(args, "node", None) or config.node_name
    files = {
        "autoload_configs/xml_curl.conf.xml": render_xml_curl_conf(config),
        "autoload_configs/event_socket.conf.xml": render_event_socket_conf(config),
        "autoload_configs/switch.conf.xml": render_switch_conf(config, node),
        "odbc.ini": render_odbc_ini(config),
    }
    for vip in config.vips:
        files[f"sip_profiles/vips/{vip.name}.xml"] = render_vip_profile(config, vip)
    return files
