"""CPU placement for benchmarks on a shared machine: the code measured gets CPU 0 to itself.

Everything else — MariaDB, memcached, load generators, storm servers — runs on the other
CPUs: in production those are other machines, and a server sharing the measured process's
core is woken onto it by each request (the kernel's wake-affine placement), so the figures
measured the scheduler's ping-pong rather than the code.
"""
import contextlib
import os
from typing import Iterator, List


def isolate_cpu0() -> List[str]:
    """Move this process (and so the servers and load it starts) off CPU 0; the argv
    prefix that starts a measured process on CPU 0. No-op on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return []
    os.sched_setaffinity(0, cpus[1:])
    return ["taskset", "-c", str(cpus[0])]


@contextlib.contextmanager
def on_cpu(prefix: List[str]) -> Iterator[None]:
    """Run this process's own measured work on the CPU ``prefix`` (from :func:`isolate_cpu0`)
    names, then move it back."""
    if not prefix:
        yield
        return
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(prefix[-1])})
    try:
        yield
    finally:
        os.sched_setaffinity(0, affinity)
