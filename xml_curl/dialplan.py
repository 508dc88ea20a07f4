"""Render a dialplan context from ``v_dialplans.dialplan_xml`` rows, as FusionPBX's
``dialplan.lua`` does (multiple method): the rows arrive already filtered and ordered by
``dialplan_order``; each fragment is parsed and re-serialised by lxml, so a broken row is
skipped instead of breaking the whole context. Pure."""
from typing import Iterable, Tuple

from xml_curl.xmldoc import append_all, child, document, fragments, serialize


def render_dialplan(context: str, rows: Iterable[Tuple[str, str]]) -> bytes:
    """``rows`` are (dialplan_uuid, dialplan_xml) in order."""
    root, section = document("dialplan", description="")
    node = child(section, "context", name=context)
    for dialplan_uuid, xml_text in rows:
        append_all(node, fragments(xml_text, f"v_dialplans/{dialplan_uuid}"))
    return serialize(root)
