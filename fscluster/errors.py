"""The exception tree: callers catch these by meaning, not by library."""


class FsclusterError(Exception):
    """Base of every error fscluster raises on purpose."""


class ConfigError(FsclusterError):
    """A missing or wrong config value; the message names the key and is one line."""


class DatabaseUnavailable(FsclusterError):
    """The DB could not be reached (after retries); distinct from 'row not found'."""
