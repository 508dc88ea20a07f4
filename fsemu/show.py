"""``show registrations`` / ``show channels`` as mod_commands.c ``show_function`` prints them.

Rows come from the *core* tables scoped to this switchname (``select * from registrations
where hostname='<switchname>'``, ``select * from channels where hostname=… order by
created_epoch``), every value a string (``show_as_json_callback``: ``cJSON_CreateString``,
NULL → ""), columns in table order. ``as json`` is ``cJSON_PrintUnformatted`` of
``{"row_count":N,"rows":[…]}``; with no row at all it is the literal ``{"row_count": 0}``.
The default (``delim`` ``,``) prints a header line, the rows, then ``\\n<N> total.\\n``.
"""
import json
from typing import Dict, List, Optional

from fscluster.fs_tables import channels, registrations

#: table → column names, in FreeSWITCH's CREATE TABLE order (select * order)
COLUMNS = {
    "registrations": [c.name for c in registrations.columns],
    "channels": [c.name for c in channels.columns],
}
USAGE = "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"


def _cell(value) -> str:
    return "" if value is None else str(value)


def format_rows(table: str, rows: List[Dict[str, object]], fmt: str, delim: str = ",") -> str:
    columns = COLUMNS[table]
    if fmt == "json":
        if not rows:
            return '{"row_count": 0}'
        body = {"row_count": len(rows),
                "rows": [{col: _cell(row.get(col)) for col in columns} for row in rows]}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    lines = [delim.join(columns)] if rows else []
    lines += [delim.join(_cell(row.get(col)) for col in columns) for row in rows]
    head = "\n".join(lines) + "\n" if lines else ""
    return f"{head}\n{len(rows)} total.\n"


def _format(words: List[str]):
    """``… as json`` / ``… as delim |``: returns (format, delimiter, remaining words)."""
    if len(words) >= 2 and words[-2].lower() == "as":
        return words[-1].lower(), ",", words[:-2]
    if len(words) >= 3 and words[-3].lower() == "as" and words[-2].lower() == "delim":
        return "delim", words[-1], words[:-3]
    return "delim", ",", words


def show(switch, arg: Optional[str]) -> str:
    words = (arg or "").split()
    fmt, delim, words = _format(words)
    if not words:
        return USAGE
    what = words[0].lower()
    name = switch.settings.switchname
    if what == "registrations":
        rows = switch.store.core_registrations(name)
    elif what == "channels":
        if len(words) > 1 and words[1].lower() == "count":
            return f"\n{len(switch.store.channels(name))} total.\n"
        rows = switch.store.channels(name)
    else:
        return USAGE
    return format_rows(what, rows, fmt, delim)
