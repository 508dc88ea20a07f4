"""CLI subcommands, one module each (see :data:`fscluster.cli.COMMAND_MODULES`)."""
