"""Start-up shared by the long-running services (``fscluster-agent``, ``fscluster-xmlcurl``):
``--config``, a config error as one line on stderr (exit 2, no traceback), then the logs."""
import argparse
import sys
from typing import Optional

from fscluster import config as config_mod
from fscluster import log
from fscluster.config import Config
from fscluster.errors import FsclusterError


def load_config(prog: str, description: str, argv=None) -> Optional[Config]:
    """The validated config with logging set up, or None after printing why not."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="INI file (default: $FSCLUSTER_CONFIG)")
    args = parser.parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except FsclusterError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    log.setup(config.log_format)
    return config
