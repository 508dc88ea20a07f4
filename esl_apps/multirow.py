"""PyMySQL's multi-row ``INSERT … VALUES (…),(…) …``, with each distinct value escaped once.

A storm's rows repeat most of their values (node, profile, realm, port, user agent, the
batch's ``updated_at``), and PyMySQL's ``executemany`` escapes every value of every row
(three Python calls each): in a storm that cost about as much CPU as parsing the events
(14.5–17 µs per registration row; 9–11 µs here, measured). This does what ``executemany`` does —
split the statement with PyMySQL's own ``RE_INSERT_VALUES``, format one ``(…)`` per row, join
rows into statements of bounded size — and keeps each escaped literal for the rest of the
statement being built. The escaping itself stays PyMySQL's ``Connection.escape`` (what its
cursors call; it honours ``NO_BACKSLASH_ESCAPES``), and tests/test_multirow.py holds the
output to PyMySQL's own ``Cursor.mogrify``. Only text literals are shared: equal numbers
can still differ (``1``, ``1.0``, ``True``; ``0.0`` and ``-0.0`` even hash alike).
"""
import re
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Mapping

from pymysql.cursors import RE_INSERT_VALUES

#: Characters per statement, as PyMySQL's ``Cursor.max_stmt_length`` (bytes): even all
#: 4-byte UTF-8 this stays under MariaDB's default ``max_allowed_packet`` (16 MiB).
MAX_STATEMENT_CHARS = 1_024_000
_NAMED = re.compile(r"%\(([^)]+)\)s")


class MultiRowStatement:
    """One compiled ``pyformat`` INSERT (``VALUES (%(a)s, %(b)s)``) made positional."""

    def __init__(self, sql: str):
        match = RE_INSERT_VALUES.match(sql)
        if match is None:
            raise ValueError(f"not a single-row INSERT … VALUES (…): {sql[:80]!r}")
        self.prefix, values, self.postfix = (match.group(1), match.group(2).rstrip(),
                                             match.group(3) or "")
        self.names = tuple(_NAMED.findall(values))
        self.row_format = _NAMED.sub("%s", values)
        names = self.names
        self.values_of = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))

    def statements(self, rows: Iterable[Mapping], escape: Callable[[object], str],
                   max_chars: int = MAX_STATEMENT_CHARS) -> Iterator[str]:
        """The SQL texts for ``rows`` (mappings holding at least :attr:`names`); they contain
        no placeholders, so run them with no parameters (a '%' in a value stays as it is)."""
        memo = {}

        def literal(value) -> str:
            if type(value) is not str:  # equal numbers can differ (0.0, -0.0): not shared
                return escape(value)
            text = memo.get(value)
            if text is None:
                text = memo[value] = escape(value)
            return text

        row_format, values_of = self.row_format, self.values_of
        room = max_chars - len(self.prefix) - len(self.postfix)
        batch, size = [], 0
        for row in rows:
            text = row_format % tuple(map(literal, values_of(row)))
            if batch and size + len(text) > room:
                yield self.prefix + ",".join(batch) + self.postfix
                batch, size = [], 0
                memo.clear()
            batch.append(text)
            size += len(text) + 1
        if batch:
            yield self.prefix + ",".join(batch) + self.postfix
