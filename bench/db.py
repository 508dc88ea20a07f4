"""``db.*`` benchmark: a scripted writer-node kill under load, on the database cluster path.

A real 3-node Galera cluster behind HAProxy (rendered config + galera agents), the real
``fscluster-xmlcurl`` with no cache (every lookup reads Galera through HAProxy) and the real
``fscluster-agent`` mirroring a registration storm from an emulated FreeSWITCH. After a few
seconds of load the node HAProxy writes to is SIGKILLed, then restarted (it rejoins by IST);
the load runs until the cluster is whole again.

- ``failover_failed_lookups``: lookups of existing users that did not return the user
  (target 0)
- ``failover_max_stall_ms``: the longest single lookup during the run (target < 2000)
- ``lost_registrations``: call-ids FreeSWITCH holds that the mirror lacks, plus mirror rows
  FreeSWITCH does not hold, once the cluster is back (target 0)
"""
import os
import shutil
import tempfile

from fscluster.db import Database
from tests.db_resilience_support import LookupLoad, PbxStack
from tests.servers.galera import GaleraCluster
from tests.servers.haproxy import GaleraFront, backend_server_of
from tests.servers.proc import wait_for


def run() -> dict:
    workdir = tempfile.mkdtemp(prefix=f"fscluster-bench-db-{os.getpid()}-")
    cluster = GaleraCluster(workdir)
    front = stack = load = storm = None
    try:
        cluster.start()
        cluster.create_database("bench_db")
        front = GaleraFront(workdir, cluster, "bench_db").start()
        db = Database.from_config(front.config)
        db.create_schema()
        db.dispose()
        stack = PbxStack(workdir, front).start()
        load = LookupLoad(stack.cold.url, stack.users, max_seconds=120)
        load.start()
        storm = stack.storm()
        wait_for(lambda: load.done > 200 and len(storm.call_ids) > 200, 30, "load running")
        writer = backend_server_of(front.write_port)
        cluster.kill(writer)
        front.wait_status(writer, "DOWN", 10)
        cluster.start_node(writer)
        front.wait_status(writer, "UP", 60)
        done = load.done
        wait_for(lambda: load.done > done + 200, 30, "lookups after the rejoin")
        storm.stop()
        load.stop()
        lost, extra = stack.mirror_difference()
        return {"db.failover_failed_lookups": len(load.failures),
                "db.failover_max_stall_ms": round(load.max_stall_ms),
                "db.lost_registrations": len(lost) + len(extra),
                "db.failover_lookups": load.done,
                "db.failover_registrations": len(storm.call_ids)}
    finally:
        for part in (storm, load):
            if part is not None:
                part.stop()
        if stack is not None:
            stack.close()
        if front is not None:
            front.stop()
        cluster.teardown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    print(run())
