"""``xml_curl.*`` benchmark: the service on real MariaDB + memcached, 100 domains × 100
extensions, loaded from a separate process (bench/http_load.py: 50 concurrent connections,
a new TCP connection per request, as mod_xml_curl does).

- ``floor_rps``: the same server stack answering a constant document (bench/xml_curl_floor.py)
- ``directory_warm_rps`` / ``dialplan_warm_rps``: every answer already cached (the
  per-process LRU in front of memcached, as deployed)
- ``directory_memcached_rps``: the same with the per-process LRU off — every answer a
  memcached round trip
- ``directory_cold_rps``: the same service without memcached and without its per-process
  cache — the DB on every request
- ``warm_ratio`` = directory warm / floor; ``cold_ratio`` = directory cold / floor
  (200 answers only; ``cold_503`` counts misses that waited past ``db_deadline`` for a DB
  slot and got 503 — FreeSWITCH's fallback — during the cold rounds)
- ``p99_ms``: warm directory latency at half the measured warm throughput (below saturation;
  at saturation a closed loop of 50 only measures queueing: ``p99_saturated_ms``), the
  median of three 4 s paced runs
Targets (issue 2): warm ≥ 70 % of floor, p99 < 10 ms, cold ≥ 25 % of floor.

The machine is shared, so floor, warm and cold are measured in interleaved short rounds and
each figure is the median of its rounds: a burst of background load hits all of them alike.
With two or more CPUs the service under test (every variant, the floor too) runs on CPU 0
and everything else — MariaDB, memcached, the load generator — on the others (bench/cpus.py).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import shutil
from pathlib import Path

from bench import cpus
from fscluster import seed
from fscluster.config import Config
from fscluster.db import Database
from tests.servers.mariadb import MariaDB
from tests.servers.memcached import Memcached
from tests.xml_curl_support import ROOT, XmlCurlProcess, fixture_body

DOMAINS, EXTENSIONS = 100, 100
CONCURRENCY = 50
SECONDS = 2.0
ROUNDS = 5


def _bodies(workdir: str):
    """Request bodies files: every user (REGISTER sip_auth), every context (dialplan)."""
    register = fixture_body("directory-sip_auth-register").decode()
    plan = fixture_body("dialplan").decode()
    users, contexts = [], []
    for index in range(DOMAINS):
        domain = seed.domain_name(index)
        contexts.append(plan.replace("Caller-Context=demo.local", f"Caller-Context={domain}"))
        for number in range(seed.FIRST_EXTENSION, seed.FIRST_EXTENSION + EXTENSIONS):
            users.append(register.replace("user=1001&domain=demo.local",
                                          f"user={number}&domain={domain}"))
    paths = {}
    for name, lines in (("users", users), ("contexts", contexts), ("floor", [register])):
        paths[name] = os.path.join(workdir, f"{name}.bodies")
        Path(paths[name]).write_text("\n".join(lines) + "\n")
    return paths


def _load(port: int, bodies: str, seconds: float = SECONDS, requests: int = 10_000_000,
          rate: float = 0.0, source: str = "", concurrency: int = CONCURRENCY,
          allow_503: bool = False) -> dict:
    """One load run; ``rps`` counts 200 answers only. With ``source``, every 200 must have
    come from that layer; 503 (DB busy past the deadline) only where ``allow_503``."""
    argv = [sys.executable, "-m", "bench.http_load", "--port", str(port), "--bodies", bodies,
            "--concurrency", str(concurrency), "--duration", str(seconds),
            "--requests", str(requests), "--rate", str(rate)]
    out = subprocess.run(argv, cwd=str(ROOT), capture_output=True, check=True,
                         timeout=seconds + 60)
    result = json.loads(out.stdout)
    allowed = {"200", "503"} if allow_503 else {"200"}
    bad = {s: n for s, n in result["statuses"].items() if s not in allowed}
    if bad or result["errors"]:
        raise RuntimeError(f"load saw errors {result['errors']} / statuses {bad}")
    sources = {k: n for k, n in result["sources"].items() if k != "unavailable"}
    if source and set(sources) != {source}:
        raise RuntimeError(f"expected every answer from {source}, got {result['sources']}")
    result["503"] = result["statuses"].get("503", 0)
    result["rps"] = round(result["statuses"].get("200", 0) / result["seconds"], 1)
    return result


def run() -> dict:
    workdir = tempfile.mkdtemp(prefix=f"fscluster-bench-xc-{os.getpid()}-")
    affinity = os.sched_getaffinity(0)
    on_cpu0 = cpus.isolate_cpu0()
    mariadb = MariaDB(workdir, name="mariadb-bench")
    memcached = Memcached(workdir)
    processes = []
    try:
        mariadb.install()
        mariadb.start()
        memcached.start()
        url = mariadb.create_database("bench")
        db = Database(url)
        db.create_schema()
        seed.seed(db, domains=DOMAINS, extensions=EXTENSIONS, vips=Config().vips)
        db.dispose()
        bodies = _bodies(workdir)
        common = {"FSCLUSTER_DB_URL": url, "FSCLUSTER_NODE_NAME": "pbx1",
                  "FSCLUSTER_CACHE_GENERATION_POLL": "1", "FSCLUSTER_LOG_FORMAT": "json"}
        floor = XmlCurlProcess(workdir, dict(common, FSCLUSTER_MEMCACHED_SERVERS=""), "floor")
        floor.server.argv = [sys.executable, "-m", "bench.xml_curl_floor"]
        warm = XmlCurlProcess(workdir, dict(
            common, FSCLUSTER_MEMCACHED_SERVERS=f"127.0.0.1:{memcached.port}"), "warm")
        cold = XmlCurlProcess(workdir, dict(common, FSCLUSTER_MEMCACHED_SERVERS="",
                                            FSCLUSTER_CACHE_LOCAL_ENTRIES="0"), "cold")
        memcached_only = XmlCurlProcess(workdir, dict(
            common, FSCLUSTER_MEMCACHED_SERVERS=f"127.0.0.1:{memcached.port}",
            FSCLUSTER_CACHE_LOCAL_ENTRIES="0"), "memcached")
        for process in (floor, warm, cold, memcached_only):
            process.server.argv = on_cpu0 + process.server.argv
            processes.append(process.start())

        # priming at the DB's own concurrency, so no miss waits past the deadline
        _load(warm.port, bodies["users"], seconds=60, requests=DOMAINS * EXTENSIONS,
              concurrency=10)
        _load(warm.port, bodies["contexts"], seconds=30, requests=DOMAINS, concurrency=10)
        # every process in its steady state before measuring (pools filled, code paths run)
        for process, name in ((floor, "floor"), (cold, "users"), (memcached_only, "users")):
            _load(process.port, bodies[name], seconds=1, allow_503=True)
        runs = {"floor": [], "warm": [], "cold": [], "dialplan": [], "memcached": []}
        for _round in range(ROUNDS):
            runs["floor"].append(_load(floor.port, bodies["floor"]))
            runs["warm"].append(_load(warm.port, bodies["users"], source="local"))
            runs["dialplan"].append(_load(warm.port, bodies["contexts"], source="local"))
            runs["cold"].append(_load(cold.port, bodies["users"], source="db",
                                      allow_503=True))
            runs["memcached"].append(_load(memcached_only.port, bodies["users"],
                                           source="memcached"))
        warm_rps = statistics.median(r["rps"] for r in runs["warm"])
        paced = [_load(warm.port, bodies["users"], seconds=4, rate=warm_rps / 2, source="local")
                 for _round in range(3)]
    finally:
        for process in processes:
            process.stop()
        memcached.stop()
        mariadb.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        os.sched_setaffinity(0, affinity)
    median = {name: statistics.median(r["rps"] for r in rounds) for name, rounds in runs.items()}
    ratio = lambda name: round(statistics.median(  # noqa: E731
        r["rps"] / f["rps"] for r, f in zip(runs[name], runs["floor"])), 3)
    return {
        "xml_curl.floor_rps": median["floor"],
        "xml_curl.directory_warm_rps": median["warm"],
        "xml_curl.directory_cold_rps": median["cold"],
        "xml_curl.dialplan_warm_rps": median["dialplan"],
        "xml_curl.directory_memcached_rps": median["memcached"],
        "xml_curl.memcached_ratio": ratio("memcached"),
        "xml_curl.warm_ratio": ratio("warm"),
        "xml_curl.cold_ratio": ratio("cold"),
        "xml_curl.cold_503": sum(r["503"] for r in runs["cold"]),
        "xml_curl.p99_ms": statistics.median(r["p99_ms"] for r in paced),
        "xml_curl.p50_ms": statistics.median(r["p50_ms"] for r in paced),
        "xml_curl.p99_paced_rps": statistics.median(r["rps"] for r in paced),
        "xml_curl.p99_saturated_ms": statistics.median(r["p99_ms"] for r in runs["warm"]),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
