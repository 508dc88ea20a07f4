"""``fscluster galera agent``: run the HAProxy health agent beside a Galera node."""
import logging

from fscluster.config import parse_hostport
from fscluster.galera_agent import AgentServer, CachedVerdict
from fscluster.galera_health import check

log = logging.getLogger("fscluster.galera_agent")


def register(sub):
    parser = sub.add_parser("galera", help="Galera DB node helpers")
    actions = parser.add_subparsers(dest="action", required=True)
    agent = actions.add_parser("agent", help="answer HAProxy agent-checks with this DB node's "
                                             "verdict (up / down # reason)")
    agent.add_argument("--listen", help="host:port (default: 0.0.0.0:galera.agent_port)")
    agent.add_argument("--mysql", default="127.0.0.1:3306",
                       help="the local mariadbd to check (default: %(default)s)")
    agent.set_defaults(func=run_agent)


def run_agent(config, args):
    listen = parse_hostport("--listen", args.listen, config.galera_agent_port) \
        if args.listen else ("0.0.0.0", config.galera_agent_port)
    host, port = parse_hostport("--mysql", args.mysql, 3306)
    verdict = CachedVerdict(lambda: check(host, port, config.galera_check_user,
                                          config.galera_check_password))
    server = AgentServer(listen, verdict)
    log.info("galera agent listening", extra={"listen": f"{listen[0]}:{server.server_address[1]}",
                                              "mysql": f"{host}:{port}"})
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
