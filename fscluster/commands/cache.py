"""``fscluster cache flush``: make every node drop its cached lookups now."""
from fscluster.cache import Cache
from fscluster.db import Database


def register(sub):
    parser = sub.add_parser("cache", help="lookup cache")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("flush", help="bump the cluster generation (all nodes) and empty the "
                                     "local memcached").set_defaults(func=flush)


def flush(config, args):
    db = Database.from_config(config)
    db.bump_generation()
    generation = db.generation()
    local = Cache(config.memcached_servers, config.memcached_timeout).flush_local()
    print(f"generation now {generation}; every node serves fresh answers within "
          f"{config.generation_poll:g}s; local memcached "
          f"{'emptied' if local else 'not reachable (nothing to empty)'}")
