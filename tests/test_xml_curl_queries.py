"""The lookup queries compile for every supported dialect (they run on SQLite and MariaDB in
the service tests; PostgreSQL is not installed here, so it is checked at compile level)."""
import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from xml_curl import queries


class RecordingConnection:
    """Compiles every statement for ``dialect`` and answers no rows."""

    def __init__(self, dialect):
        self.dialect, self.sql = dialect, []

    def execute(self, statement, parameters=None):
        self.sql.append(str(statement.compile(dialect=self.dialect)))
        return self

    def mappings(self):
        return self

    def all(self):
        return []

    def first(self):
        return None

    def __iter__(self):
        return iter(())


@pytest.mark.parametrize("dialect", [mysql.dialect(), postgresql.dialect(), sqlite.dialect()],
                         ids=["mariadb", "postgresql", "sqlite"])
def test_every_lookup_compiles_and_binds_its_inputs(dialect):
    conn = RecordingConnection(dialect)
    hostile = "x' OR '1'='1"
    assert queries.find_user(conn, hostile, hostile) is None
    assert queries.domain_names(conn, hostile) == []
    assert queries.call_group_members(conn, hostile) is None
    assert queries.dialplan_rows(conn, hostile, hostile) == (False, [])
    assert queries.sofia_data(conn, hostile) == ([], [], [])
    assert len(conn.sql) == 7
    assert all(hostile not in sql for sql in conn.sql)   # values are bound, never inlined


@pytest.mark.parametrize("dialect, function", [(mysql.dialect(), "json_array("),
                                               (sqlite.dialect(), "json_array("),
                                               (postgresql.dialect(), "json_build_array(")],
                         ids=["mariadb", "sqlite", "postgresql"])
def test_the_user_row_travels_as_one_json_array_every_dialect_accepts(dialect, function):
    sql = str(queries._FIND_USER.compile(dialect=dialect))
    assert sql.startswith(f"SELECT {'CAST(' if 'build' in function else ''}{function}")
    assert "ORDER BY" not in sql                    # find_user orders the few rows itself
    # PostgreSQL's json_build_array takes at most 100 arguments (FUNC_MAX_ARGS)
    assert len(queries._PACKED) == len(queries._PACKED_NAMES) <= 100
