"""``fscluster doctor``: one table saying whether this node's dependencies are healthy, and why
not; exits 1 when something is down (usable from monitoring)."""
from fscluster import doctor
from fscluster.table import render


def register(sub):
    parser = sub.add_parser("doctor", help="check Galera nodes, HAProxy backends, memcached and "
                                           "the event socket; exit 1 if any is unhealthy")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds per probe (default: %(default)s)")
    parser.set_defaults(func=run)


def run(config, args):
    checks = doctor.run(config, args.timeout)
    print(render(["component", "target", "health", "detail"],
                 [(c.component, c.target, "ok" if c.ok else "DOWN", c.detail) for c in checks]))
    return 0 if all(c.ok for c in checks) else 1
