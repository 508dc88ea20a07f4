"""Per-dialect triggers that bump ``cluster_cache_generation`` on every lookup-table write.

Triggers, not application code, so that FusionPBX's own UI (which writes the ``v_*`` tables
directly) invalidates every node's cache as well. One statement per (table, operation);
MariaDB, SQLite and PostgreSQL each need their own spelling.
"""
from typing import List

from fscluster.schema import LOOKUP_TABLES

GENERATION_ROW = "global"
BUMP_SQL = ("UPDATE cluster_cache_generation SET generation = generation + 1 "
         f"WHERE name = '{GENERATION_ROW}'")
_OPERATIONS = ("INSERT", "UPDATE", "DELETE")


def trigger_statements(dialect: str) -> List[str]:
    """The DDL creating every generation trigger for ``dialect`` (mysql, sqlite, postgresql)."""
    statements = []
    if dialect == "postgresql":
        statements.append(
            "CREATE OR REPLACE FUNCTION fscluster_bump_generation() RETURNS trigger AS $$ "
            f"BEGIN {BUMP_SQL}; RETURN NULL; END; $$ LANGUAGE plpgsql")
    for table in LOOKUP_TABLES:
        for operation in _OPERATIONS:
            name = f"{table.name}_gen_{operation[0].lower()}"
            if dialect in ("mysql", "mariadb"):
                statements.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {operation} ON {table.name} "
                                  f"FOR EACH ROW {BUMP_SQL}")
            elif dialect == "sqlite":
                statements.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {operation} ON "
                                  f"{table.name} FOR EACH ROW BEGIN {BUMP_SQL}; END")
            elif dialect == "postgresql":
                statements.append(f"CREATE OR REPLACE TRIGGER {name} AFTER {operation} ON "
                                  f"{table.name} FOR EACH STATEMENT EXECUTE FUNCTION "
                                  "fscluster_bump_generation()")
            else:
                raise ValueError(f"no trigger dialect for {dialect!r}")
    return statements
