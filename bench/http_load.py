"""A small HTTP load generator run as its own process (``python -m bench.http_load``): POSTs
form bodies with a **new TCP connection per request**, as mod_xml_curl does, from
``--concurrency`` greenlets — either flat out (closed loop) or paced at ``--rate`` requests/s
(open loop, for latency below saturation). Bounded by ``--duration`` and ``--requests``.
Prints one JSON object: requests, errors, statuses, answer sources (the service's
``X-Fscluster-Source`` header), rps, p50/p99 latency in ms."""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402


_SOURCE = re.compile(rb"\r\nX-Fscluster-Source: (\w+)")


def request_bytes(body: bytes, path: str = "/fscluster") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: freeswitch-xml/1.0\r\n"
            f"Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def one(port: int, payload: bytes, timeout: float):
    started = time.perf_counter()
    # socket() + connect(), not create_connection(): under gevent that one resolves even
    # "127.0.0.1" through getaddrinfo on a thread pool — a thread hop per request, which
    # cost the generator more CPU than the request itself and starved the server measured.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data[9:12]) if data.startswith(b"HTTP/1.") else 0
    source = _SOURCE.search(data, 0, 512)
    return status, source.group(1).decode() if source else "", time.perf_counter() - started


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def run(port, payloads, concurrency, duration, max_requests, rate, timeout=15.0):
    counter = itertools.count()
    latencies, statuses, sources, errors = [], {}, {}, {}
    deadline = time.monotonic() + duration
    interval = concurrency / rate if rate else 0.0

    def worker(offset):
        next_at = time.monotonic() + offset * (interval / concurrency if interval else 0)
        while time.monotonic() < deadline:
            index = next(counter)
            if index >= max_requests:
                return
            if interval:
                gevent.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            try:
                status, source, elapsed = one(port, payloads[index % len(payloads)], timeout)
            except OSError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            statuses[status] = statuses.get(status, 0) + 1
            sources[source] = sources.get(source, 0) + 1
            latencies.append(elapsed)

    started = time.monotonic()
    gevent.joinall([gevent.spawn(worker, i) for i in range(concurrency)])
    seconds = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "statuses": statuses,
            "sources": sources,
            "seconds": round(seconds, 3), "rps": round(len(latencies) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 3) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3) if latencies else None}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", required=True, help="file: one urlencoded body per line")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = flat out")
    args = parser.parse_args(argv)
    with open(args.bodies, "rb") as handle:
        payloads = [request_bytes(line.rstrip(b"\n")) for line in handle if line.strip()]
    result = run(args.port, payloads, args.concurrency, args.duration, args.requests, args.rate)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
