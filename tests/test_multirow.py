"""esl_apps.multirow without a server: the statements it builds for PyMySQL."""
import pymysql
import pytest
from hypothesis import given, settings, strategies as st

from esl_apps.multirow import MultiRowStatement

SQL = ("INSERT INTO t (a, b, c) VALUES (%(a)s, %(b)s, %(c)s) "
       "ON DUPLICATE KEY UPDATE b = VALUES(b)")


def escape_of(no_backslash_escapes=False):
    """A real PyMySQL connection's escaping, not connected (it needs only server_status)."""
    conn = pymysql.connections.Connection(defer_connect=True)
    conn.server_status = (pymysql.constants.SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
                          if no_backslash_escapes else 0)
    return conn.escape


def test_rows_become_one_statement_in_column_order():
    bulk = MultiRowStatement(SQL)
    assert bulk.names == ("a", "b", "c")
    rows = [{"c": None, "b": "x'y", "a": 1}, {"a": 2, "b": "%s", "c": 1.5}]
    assert list(bulk.statements(rows, escape_of())) == [
        "INSERT INTO t (a, b, c) VALUES (1, 'x\\'y', NULL),(2, '%s', 1.5e0) "
        "ON DUPLICATE KEY UPDATE b = VALUES(b)"]


def test_equal_values_of_other_types_keep_their_own_literal():
    rows = [{"a": 1, "b": True, "c": 1.0}, {"a": "1", "b": 1, "c": True}]
    sql, = MultiRowStatement(SQL).statements(rows, escape_of())
    assert "VALUES (1, 1, 1.0e0),('1', 1, 1)" in sql


def test_no_backslash_escapes_mode_is_pymysqls():
    sql, = MultiRowStatement(SQL).statements([{"a": "o'\\", "b": 0, "c": 0}],
                                             escape_of(no_backslash_escapes=True))
    assert "('o''\\', 0, 0)" in sql


def test_long_rows_split_into_statements_under_the_limit():
    bulk = MultiRowStatement(SQL)
    rows = [{"a": i, "b": "v" * 50, "c": None} for i in range(40)]
    statements = list(bulk.statements(rows, escape_of(), max_chars=600))
    assert len(statements) > 1 and all(len(s) <= 600 for s in statements)
    values = ",".join(s[len(bulk.prefix):-len(bulk.postfix)] for s in statements)
    assert values == ",".join(f"({i}, '{'v' * 50}', NULL)" for i in range(40))


def test_not_an_insert_values_statement():
    with pytest.raises(ValueError, match="single-row INSERT"):
        MultiRowStatement("UPDATE t SET a = %(a)s")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.one_of(st.none(), st.integers(), st.text(max_size=20)),
    st.one_of(st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
    st.text(max_size=5)), max_size=30))
def test_same_text_as_pymysql_executemany_formats(rows):
    """Row by row, exactly what PyMySQL's own cursor formats for the same values."""
    escape = escape_of()
    cursor = pymysql.cursors.Cursor(escape.__self__)
    bulk = MultiRowStatement(SQL)
    dicts = [dict(zip("abc", row)) for row in rows]
    expected = [cursor.mogrify(bulk.row_format, row) for row in rows]
    got = ",".join(s[len(bulk.prefix):-len(bulk.postfix)] for s in bulk.statements(dicts, escape))
    assert got == ",".join(expected)
