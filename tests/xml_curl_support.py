"""Shared by the xml_curl tests and benchmark: the real FreeSWITCH captures, in-memory
stand-ins for the cache and clock, and the service as a real subprocess on a free port."""
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional, Tuple

from fscluster.cache import GenerationClock
from tests.captures import xml_curl_names, xml_curl_post
from tests.servers.proc import Server, free_port, port_open, wait_for
from xml_curl.service import LookupService

ROOT = Path(__file__).resolve().parents[1]
fixture_names = xml_curl_names


def fixture_body(name: str) -> bytes:
    """The form body of a capture (loaded by :mod:`tests.captures`)."""
    return xml_curl_post(name)[1]


class DictCache:
    """The Cache interface in a dict; ``up=False`` behaves like a dead memcached."""

    def __init__(self):
        self.data: Dict[str, Tuple[bytes, int]] = {}
        self.up = True

    def get(self, key):
        return self.data.get(key, (None, 0))[0] if self.up else None

    def set(self, key, value, ttl):
        if self.up:
            self.data[key] = (value, ttl)


def make_service(db, cache=None, vip_names=("vip1", "vip2"), interval=0.0, local=None,
                 db_concurrency=10):
    """A service with a fresh generation read per lookup (``interval=0``) and, unless
    given one, no local cache — so tests see memcached (the DictCache) directly."""
    clock = GenerationClock(db.generation, interval)
    return LookupService(db, cache if cache is not None else DictCache(), clock,
                         vip_names=set(vip_names), cache_ttl=3600, negative_ttl=10,
                         db_deadline=1.0, local=local, db_concurrency=db_concurrency)


class XmlCurlProcess:
    """``fscluster-xmlcurl`` as FreeSWITCH's peer sees it: a real process on a free port."""

    def __init__(self, workdir: str, env: Dict[str, str], name: str = "xmlcurl"):
        self.port = free_port()
        full_env = dict(os.environ)
        full_env.update({"FSCLUSTER_XML_CURL_LISTEN": f"127.0.0.1:{self.port}",
                         "FSCLUSTER_LOG_FORMAT": "json", "FSCLUSTER_CACHE_GENERATION_POLL": "0.5"})
        full_env.update(env)
        self.log_path = os.path.join(workdir, f"{name}-{os.getpid()}-{self.port}.log")
        self.server = Server(name, [sys.executable, "-m", "xml_curl.server"], self.log_path,
                             env=full_env, cwd=str(ROOT))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/fscluster"

    def start(self) -> "XmlCurlProcess":
        self.server.start()
        wait_for(lambda: self.server.alive() and port_open(self.port), 30,
                 f"xml_curl service on {self.port}")
        return self

    def post(self, body: bytes, headers: Optional[Dict[str, str]] = None,
             method: str = "POST", timeout: float = 15) -> Tuple[int, bytes, Dict[str, str]]:
        request = urllib.request.Request(self.url, data=body if method == "POST" else None,
                                         method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def stop(self):
        self.server.stop()

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
