"""``fscluster``: the operator's command line. Each subcommand lives in its own module under
:mod:`fscluster.commands` and registers itself; this file only wires them and turns
:class:`FsclusterError` into one clear line on stderr (exit 2) instead of a traceback."""
import argparse
import importlib
import sys

from fscluster import config as config_mod
from fscluster import log
from fscluster.errors import FsclusterError

#: Modules under fscluster.commands, each with ``register(subparsers)``.
COMMAND_MODULES = ("db", "cache", "render", "galera", "doctor", "failover")


#: Subcommands keepalived runs every second (track_script, notify): parsed with only their own
#: module imported, so each run costs a fraction of the whole CLI's start-up.
HOT_COMMANDS = {"health": "failover", "notify": "failover"}


def _command_word(argv):
    """The subcommand in ``argv`` (the first word that is not an option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(modules=COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fscluster", description="Operate an fscluster FreeSWITCH/FusionPBX cluster node.")
    parser.add_argument("--config", help="INI file (default: $FSCLUSTER_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(f"fscluster.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    hot = HOT_COMMANDS.get(_command_word(argv))
    args = build_parser((hot,) if hot else COMMAND_MODULES).parse_args(argv)
    try:
        config = config_mod.load(args.config)
        log.setup(config.log_format)
        return args.func(config, args) or 0
    except FsclusterError as exc:
        print(f"fscluster: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
