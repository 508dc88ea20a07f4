"""``fscluster-xmlcurl``: run the xml_curl service (gevent WSGI) for this node.

gevent's monkey patching happens here, first, and nowhere else: the DB driver (PyMySQL) and
memcached client then yield instead of blocking, so one process serves many concurrent
lookups. Every client socket gets a timeout so a stalled peer cannot pin a greenlet.
"""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402  (after monkey patching, on purpose)
import sys  # noqa: E402

import gevent.socket  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from fscluster.cache import Cache, GenerationClock  # noqa: E402
from fscluster.db import Database, within  # noqa: E402
from fscluster.entrypoint import load_config  # noqa: E402
from fscluster.freeswitch_conf import vip_profile_forced, xml_curl_answer_within  # noqa: E402
from xml_curl.app import make_app  # noqa: E402
from xml_curl.local_cache import LocalCache  # noqa: E402
from xml_curl.service import LookupService  # noqa: E402

#: How long one client connection may stay silent (reading a request, writing an answer).
CLIENT_TIMEOUT = 10.0
#: Concurrent connections served at once; more wait in the listen backlog.
MAX_CONNECTIONS = 1000

logger = logging.getLogger("fscluster.xml_curl")


class Handler(WSGIHandler):
    def handle(self):
        self.socket.settimeout(CLIENT_TIMEOUT)
        return super().handle()


def build(config):
    """The WSGI app for ``config``, wired to its DB, memcached and generation clock."""
    db = Database.from_config(config)
    cache = Cache(config.memcached_servers, config.memcached_timeout,
                  socket_module=gevent.socket)
    # the request that refreshes the generation must not wait long on a hung DB either
    clock = GenerationClock(lambda: within(config.xml_curl_db_deadline, db.generation),
                            config.generation_poll)
    clock.refresh()  # before serving, so concurrent first requests do not all see "unknown"
    service = LookupService(db, cache, clock, vip_names={v.name for v in config.vips},
                            cache_ttl=config.cache_ttl, negative_ttl=config.negative_ttl,
                            db_deadline=config.xml_curl_db_deadline,
                            answer_within=xml_curl_answer_within(config),
                            local=LocalCache(config.cache_local_entries),
                            db_concurrency=db.read.pool.size(),
                            vip_settings=vip_profile_forced(config))
    return make_app(service, node_name=config.node_name, max_body=config.max_body,
                    username=config.http_username, password=config.http_password)


def serve(config, app) -> int:
    """Serve ``app`` on ``config.listen`` until interrupted (also used by the benchmark's
    constant-document floor, so both measure the same HTTP stack)."""
    server = WSGIServer(config.listen, app, handler_class=Handler, log=None,
                        error_log=logger, spawn=Pool(MAX_CONNECTIONS))
    try:
        server.init_socket()
    except OSError as exc:
        print(f"fscluster-xmlcurl: cannot listen on {config.listen[0]}:{config.listen[1]}: "
              f"{exc.strerror}", file=sys.stderr)
        return 2
    logger.info("xml_curl service listening", extra={
        "listen": f"{config.listen[0]}:{config.listen[1]}", "node": config.node_name,
        "credentials_required": bool(config.http_username)})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None) -> int:
    config = load_config("fscluster-xmlcurl", __doc__.split("\n")[0], argv)
    if config is None:
        return 2
    return serve(config, build(config))


if __name__ == "__main__":
    sys.exit(main())
