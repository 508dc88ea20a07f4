"""One place for configuration: typed defaults, then an INI file, then the environment.

The INI path comes from ``--config`` or ``FSCLUSTER_CONFIG``. Any key can be overridden
with ``FSCLUSTER_<SECTION>_<KEY>`` (upper case, e.g. ``FSCLUSTER_DB_URL``). A wrong or
missing value raises :class:`ConfigError` whose message names the key, so start-up fails
with one clear line instead of a traceback.
"""
import configparser
import dataclasses
import ipaddress
import os
import re
from typing import Dict, Optional, Tuple

from fscluster.errors import ConfigError

DEFAULT_DB_URL = "sqlite:///var/fscluster.sqlite"
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_hostport(key: str, value: str, default_port: int) -> Tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(default_port)
    try:
        port_num = int(port)
    except ValueError:
        raise ConfigError(f"{key}: port must be a number, got {port!r}") from None
    if not host or not 0 < port_num < 65536:
        raise ConfigError(f"{key}: expected host:port, got {value!r}")
    return host.strip("[]"), port_num


@dataclasses.dataclass(frozen=True)
class Vip:
    """A floating IP, the sofia profile of the same name, and its preferred master."""

    name: str
    address: str
    prefix: int
    master: str
    backup: str
    router_id: int


@dataclasses.dataclass(frozen=True)
class GaleraNode:
    """One Galera DB server as a PBX reaches it: SQL address and its health agent's port
    (``agent_port`` 0 = ``galera.agent_port``)."""

    name: str
    host: str
    port: int
    agent_port: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    node_name: str = "pbx1"
    db_url: str = dataclasses.field(default=DEFAULT_DB_URL, repr=False)
    db_read_url: str = dataclasses.field(default="", repr=False)
    db_connect_timeout: float = 3.0
    db_retry_seconds: float = 10.0
    memcached_servers: Tuple[Tuple[str, int], ...] = (("127.0.0.1", 11211),)
    memcached_timeout: float = 0.2
    generation_poll: float = 1.0
    negative_ttl: int = 10
    cache_ttl: int = 3600
    cache_local_entries: int = 20000
    listen: Tuple[str, int] = ("127.0.0.1", 8080)
    http_username: str = ""
    http_password: str = dataclasses.field(default="", repr=False)
    max_body: int = 65536
    xml_curl_db_deadline: float = 1.5
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: str = dataclasses.field(default="ClueCon", repr=False)
    esl_timeout: float = 5.0
    esl_idle_timeout: float = 30.0   # no byte for this long: the socket is dead
    interface: str = "eth0"
    nodes: Tuple[str, ...] = ("pbx1", "pbx2", "pbx3")
    vips: Tuple[Vip, ...] = (Vip("vip1", "198.18.0.101", 24, "pbx1", "pbx3", 51),
                             Vip("vip2", "198.18.0.102", 24, "pbx2", "pbx3", 52))
    # < 3 × advert_int: a crashed owner's lease has lapsed when VRRP declares it dead
    lease_seconds: float = 1.5
    node_addresses: Tuple[Tuple[str, str], ...] = (("pbx1", "198.18.0.11"), ("pbx2", "198.18.0.12"),
                                                   ("pbx3", "198.18.0.13"))
    advert_int: int = 1
    fscluster_command: str = "/usr/local/bin/fscluster"
    agent_socket: str = "/run/fscluster/agent.sock"
    galera_nodes: Tuple[GaleraNode, ...] = (GaleraNode("db1", "198.18.1.11", 3306),
                                            GaleraNode("db2", "198.18.1.12", 3306),
                                            GaleraNode("db3", "198.18.1.13", 3306))
    galera_agent_port: int = 9200
    galera_check_user: str = "fscluster_check"
    galera_check_password: str = dataclasses.field(default="", repr=False)
    haproxy_write_listen: Tuple[str, int] = ("127.0.0.1", 3306)
    haproxy_read_listen: Tuple[str, int] = ("127.0.0.1", 3307)
    haproxy_stats_socket: str = "/run/haproxy/fscluster.sock"
    log_format: str = "json"

    @property
    def read_url(self) -> str:
        return self.db_read_url or self.db_url

    def node_address(self, node: str) -> str:
        """The node's own (non-floating) address on ``interface``: keepalived's unicast peer."""
        for name, address in self.node_addresses:
            if name == node:
                return address
        raise ConfigError(f"cluster.addresses: no address for node {node!r}")

    def agent_port(self, node: GaleraNode) -> int:
        return node.agent_port or self.galera_agent_port

    def vip(self, name: str) -> Vip:
        for vip in self.vips:
            if vip.name == name:
                return vip
        raise ConfigError(f"cluster.vips: no VIP named {name!r}")


# (section, key) -> (field, parser). Parsers take (qualified key, raw string).
def _str(key, value):
    return value


def _nonempty(key, value):
    if not value:
        raise ConfigError(f"{key}: must not be empty")
    return value


def _float(key, value):
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def _int(key, value):
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def _node(key, value):
    if not _NODE_NAME.match(value):
        raise ConfigError(f"{key}: not a valid switchname: {value!r}")
    return value


def _db_url(key, value):
    if not re.match(r"^(sqlite|mysql\+pymysql|mariadb\+pymysql|postgresql(\+\w+)?)://", value):
        raise ConfigError(
            f"{key}: expected an SQLAlchemy URL (sqlite:///…, mysql+pymysql://…), got "
            f"{value.split('://')[0]!r}")
    return value


def _log_format(key, value):
    if value not in ("json", "text"):
        raise ConfigError(f"{key}: expected json or text, got {value!r}")
    return value


def _memcached(key, value):
    return tuple(parse_hostport(key, item.strip(), 11211)
                 for item in value.split(",") if item.strip())


def _listen(key, value):
    return parse_hostport(key, value, 8080)


def _nodes(key, value):
    nodes = tuple(_node(key, item.strip()) for item in value.split(",") if item.strip())
    if not nodes:
        raise ConfigError(f"{key}: list at least one node")
    return nodes


def _vips(key, value):
    """``vip1=198.18.0.101/24@pbx1>pbx3, vip2=…@pbx2>pbx3`` (name=address/prefix@master>backup)."""
    vips = []
    pattern = re.compile(r"^([A-Za-z0-9_-]+)=([0-9.]+)/(\d+)@([\w.-]+)>([\w.-]+)$")
    for index, item in enumerate(filter(None, (i.strip() for i in value.split(",")))):
        match = pattern.match(item)
        if not match:
            raise ConfigError(f"{key}: expected name=address/prefix@master>backup, got {item!r}")
        name, address, prefix, master, backup = match.groups()
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise ConfigError(f"{key}: {address!r} is not an IPv4 address") from None
        vips.append(Vip(name, address, int(prefix), master, backup, 51 + index))
    return tuple(vips)


def _addresses(key, value):
    """``pbx1=198.18.0.11, pbx2=198.18.0.12`` (node=IPv4 address)."""
    pairs = []
    for item in filter(None, (i.strip() for i in value.split(","))):
        node, sep, address = item.partition("=")
        try:
            ipaddress.IPv4Address(address.strip())
        except ValueError:
            raise ConfigError(f"{key}: expected node=IPv4 address, got {item!r}") from None
        pairs.append((_node(key, node.strip()), address.strip()))
    return tuple(pairs)


def _galera_nodes(key, value):
    """``db1=198.18.1.11:3306, db2=198.18.1.12:3306/9201`` (name=host:port[/agent port])."""
    nodes = []
    for item in filter(None, (i.strip() for i in value.split(","))):
        name, sep, address = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z0-9_-]+$", name.strip()):
            raise ConfigError(f"{key}: expected name=host:port[/agent_port], got {item!r}")
        address, _slash, agent = address.strip().partition("/")
        host, port = parse_hostport(key, address, 3306)
        agent_port = _int(key, agent) if agent else 0
        nodes.append(GaleraNode(name.strip(), host, port, agent_port))
    if not nodes:
        raise ConfigError(f"{key}: list at least one Galera node")
    if len({n.name for n in nodes}) != len(nodes):
        raise ConfigError(f"{key}: node names must be unique")
    return tuple(nodes)


_KEYS: Dict[Tuple[str, str], Tuple[str, object]] = {
    ("node", "name"): ("node_name", _node),
    ("node", "interface"): ("interface", _nonempty),
    ("db", "url"): ("db_url", _db_url),
    ("db", "read_url"): ("db_read_url", lambda k, v: v and _db_url(k, v)),
    ("db", "connect_timeout"): ("db_connect_timeout", _float),
    ("db", "retry_seconds"): ("db_retry_seconds", _float),
    ("memcached", "servers"): ("memcached_servers", _memcached),
    ("memcached", "timeout"): ("memcached_timeout", _float),
    ("cache", "generation_poll"): ("generation_poll", _float),
    ("cache", "negative_ttl"): ("negative_ttl", _int),
    ("cache", "ttl"): ("cache_ttl", _int),
    ("cache", "local_entries"): ("cache_local_entries", lambda k, v: 0 if v.strip() == "0"
                                  else _int(k, v)),
    ("xml_curl", "listen"): ("listen", _listen),
    ("xml_curl", "username"): ("http_username", _str),
    ("xml_curl", "password"): ("http_password", _str),
    ("xml_curl", "max_body"): ("max_body", _int),
    ("xml_curl", "db_deadline"): ("xml_curl_db_deadline", _float),
    ("esl", "host"): ("esl_host", _nonempty),
    ("esl", "port"): ("esl_port", _int),
    ("esl", "password"): ("esl_password", _nonempty),
    ("esl", "timeout"): ("esl_timeout", _float),
    ("esl", "idle_timeout"): ("esl_idle_timeout", _float),
    ("cluster", "nodes"): ("nodes", _nodes),
    ("cluster", "vips"): ("vips", _vips),
    ("cluster", "lease_seconds"): ("lease_seconds", _float),
    ("cluster", "addresses"): ("node_addresses", _addresses),
    ("keepalived", "advert_int"): ("advert_int", _int),
    ("keepalived", "fscluster_command"): ("fscluster_command", _nonempty),
    ("agent", "socket"): ("agent_socket", _nonempty),
    ("galera", "nodes"): ("galera_nodes", _galera_nodes),
    ("galera", "agent_port"): ("galera_agent_port", _int),
    ("galera", "check_user"): ("galera_check_user", _nonempty),
    ("galera", "check_password"): ("galera_check_password", _str),
    ("haproxy", "write_listen"): ("haproxy_write_listen", lambda k, v: parse_hostport(k, v, 3306)),
    ("haproxy", "read_listen"): ("haproxy_read_listen", lambda k, v: parse_hostport(k, v, 3307)),
    ("haproxy", "stats_socket"): ("haproxy_stats_socket", _nonempty),
    ("log", "format"): ("log_format", _log_format),
}


def load(path: Optional[str] = None, environ: Optional[Dict[str, str]] = None) -> Config:
    """Merge defaults, the INI file and the environment into one validated Config."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("FSCLUSTER_CONFIG")
    raw: Dict[Tuple[str, str], str] = {}
    if path:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except configparser.Error as exc:
            raise ConfigError(f"config file {path}: {exc.message.splitlines()[0]}") from None
        for section in parser.sections():
            for key, value in parser.items(section):
                if (section, key) not in _KEYS:
                    raise ConfigError(f"{section}.{key}: unknown key in {path}")
                raw[(section, key)] = value.strip()
    for section, key in _KEYS:
        env_name = f"FSCLUSTER_{section.upper()}_{key.upper()}"
        if env_name in environ:
            raw[(section, key)] = environ[env_name].strip()
    values = {}
    for (section, key), value in raw.items():
        field, parse = _KEYS[(section, key)]
        values[field] = parse(f"{section}.{key}", value)
    config = Config(**values)
    for vip in config.vips:
        for role, node in (("master", vip.master), ("backup", vip.backup)):
            if node not in config.nodes:
                raise ConfigError(f"cluster.vips: {vip.name} {role} {node!r} is not in cluster.nodes")
    return config


def redact_url(url: str) -> str:
    """The DB URL with its password masked, for logs and tables."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
