"""The SQL behind each lookup: portable SQLAlchemy Core, run unchanged on MariaDB, SQLite
and PostgreSQL (the one function whose name differs, :class:`json_array`, is rendered per
dialect by SQLAlchemy). Every user-supplied value is a bound parameter. Each function takes
an open connection and returns plain data for the pure renderers; None means "not in the
DB" (never "DB down": that raises)."""
import json
from typing import List, Optional, Sequence, Tuple

from sqlalchemy import String, and_, bindparam, case, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from fscluster.schema import (cluster_vips, v_dialplans, v_domains, v_extension_settings,
                              v_extensions, v_gateways, v_sip_profile_domains,
                              v_sip_profile_settings, v_sip_profiles, v_sofia_global_settings,
                              v_voicemails)
from xml_curl.directory import USER_COLUMNS, UserRecord
from xml_curl.sofia import SofiaProfile

TRUE = "true"
#: The user lookup runs on every cache miss and the server parses its text each time; short
#: table aliases make that text 30 % shorter (and the server's and PyMySQL's work with it).
_E, _D = v_extensions.alias("e"), v_domains.alias("d")
_VM, _S = v_voicemails.alias("vm"), v_extension_settings.alias("s")
_EXT_COLUMNS = [_E.c[name] for name in USER_COLUMNS]
_VM_COLUMNS = [_VM.c.voicemail_id, _VM.c.voicemail_password, _VM.c.voicemail_mail_to,
               _VM.c.voicemail_file, _VM.c.voicemail_local_after_email,
               _VM.c.voicemail_enabled]
_SETTING_COLUMNS = [_S.c.extension_setting_type, _S.c.extension_setting_name,
                    _S.c.extension_setting_value]


def _for_node(column, hostname: str):
    """FusionPBX's hostname filter: rows for every node (NULL/empty) or for this one."""
    return or_(column.is_(None), column == "", column == hostname)


def _mailbox_id():
    """FusionPBX's voicemail box: the number alias when set, else the extension."""
    alias = _E.c.number_alias
    return case((and_(alias.is_not(None), alias != ""), alias), else_=_E.c.extension)


class json_array(GenericFunction):  # noqa: N801 (SQLAlchemy names functions in lower case)
    """``json_array(a, b, …)`` → the JSON text ``[a, b, …]`` (NULL → null): MariaDB ≥ 10.2
    and SQLite's JSON1 spell it so; PostgreSQL spells it ``json_build_array`` (≤ 100
    arguments) and gets a cast to text so every driver hands back a string."""
    type = String()
    inherit_cache = True


@compiles(json_array, "postgresql")
def _json_array_postgresql(element, compiler, **kw):
    return f"CAST(json_build_array({compiler.process(element.clauses, **kw)}) AS TEXT)"


#: The user's own row and its voicemail travel as one JSON array column: PyMySQL parses
#: every column's description packet in pure Python, and 56 of them were 45 % of a cold
#: lookup's CPU (cProfile, bench cold path); the JSON text costs MariaDB no more CPU than
#: the columns did and is parsed by the json module's C decoder.
_PACKED = (_D.c.domain_name, _E.c.domain_uuid, *_EXT_COLUMNS, *_VM_COLUMNS)
_PACKED_NAMES = ("domain_name", "domain_uuid", *USER_COLUMNS,
                 *[f"vm_{c.name}" for c in _VM_COLUMNS])
_USER_QUERY = (
    select(json_array(*_PACKED), *_SETTING_COLUMNS)
    .select_from(
        _E.join(_D, _D.c.domain_uuid == _E.c.domain_uuid)
        .outerjoin(_VM, and_(_VM.c.domain_uuid == _E.c.domain_uuid,
                             _VM.c.voicemail_id == _mailbox_id()))
        .outerjoin(_S, and_(_S.c.extension_uuid == _E.c.extension_uuid,
                            _S.c.extension_setting_enabled == TRUE)))
)


_DOMAIN, _USER = bindparam("domain"), bindparam("user")
#: Built once: building it per call (copying the Select, SQLAlchemy computing its
#: compiled-cache key) was ~10 % of a cold lookup's CPU (py-spy, bench cold path). No ORDER
#: BY: it cost MariaDB a temporary table and a filesort for the few rows that
#: :func:`find_user` orders itself.
_FIND_USER = _USER_QUERY.where(
    _D.c.domain_name == _DOMAIN, _D.c.domain_enabled == TRUE, _E.c.enabled == TRUE,
    or_(_E.c.extension == _USER, _E.c.number_alias == _USER))


def find_user(conn: Connection, domain: str, user: str) -> Optional[UserRecord]:
    """The enabled extension ``user`` (or number alias) of the enabled ``domain``; an exact
    extension match wins over an alias, then the lowest extension_uuid. One round trip
    (voicemail and settings joined: a row per enabled setting, or one without)."""
    rows = [(dict(zip(_PACKED_NAMES, json.loads(packed))), setting)
            for packed, *setting in conn.execute(_FIND_USER, {"domain": domain, "user": user})]
    if not rows:
        return None
    first = min((row for row, _setting in rows),
                key=lambda row: (row["extension"] != user, row["extension_uuid"]))
    settings = tuple(sorted(
        (kind, name or "", value or "") for row, (kind, name, value) in rows
        if kind is not None and row["extension_uuid"] == first["extension_uuid"]))
    voicemail = None
    if first["vm_voicemail_id"] is not None:
        voicemail = {c.name: first[f"vm_{c.name}"] for c in _VM_COLUMNS}
    return UserRecord(domain_uuid=first["domain_uuid"], domain_name=first["domain_name"],
                      extension={name: first[name] for name in USER_COLUMNS},
                      voicemail=voicemail, settings=settings)


def domain_names(conn: Connection, name: Optional[str] = None) -> List[str]:
    """Enabled domains (only ``name`` when given), sorted."""
    query = select(v_domains.c.domain_name).where(v_domains.c.domain_enabled == TRUE)
    if name is not None:
        query = query.where(v_domains.c.domain_name == name)
    return [row[0] for row in conn.execute(query.order_by(v_domains.c.domain_name))]


def call_group_members(conn: Connection, domain: str) -> Optional[List[Tuple[str, str]]]:
    """(extension, call_group) of the enabled extensions of an enabled domain; None when
    the domain is unknown or disabled."""
    if not domain_names(conn, domain):
        return None
    rows = conn.execute(
        select(v_extensions.c.extension, v_extensions.c.call_group)
        .select_from(v_extensions.join(
            v_domains, v_domains.c.domain_uuid == v_extensions.c.domain_uuid))
        .where(v_domains.c.domain_name == domain, v_extensions.c.enabled == TRUE,
               v_extensions.c.call_group.is_not(None), v_extensions.c.call_group != ""))
    return [(row[0], row[1]) for row in rows]


def dialplan_rows(conn: Connection, context: str, hostname: str
                  ) -> Tuple[bool, List[Tuple[str, str]]]:
    """(context exists, [(dialplan_uuid, dialplan_xml)]) for ``context`` plus FusionPBX's
    shared contexts (``${domain_name}``, ``global``; not for ``public`` or ``…@…``),
    enabled rows for this node, in ``dialplan_order``."""
    contexts = [context]
    if context != "public" and "@" not in context:
        contexts += ["${domain_name}", "global"]
    rows = conn.execute(
        select(v_dialplans.c.dialplan_uuid, v_dialplans.c.dialplan_xml,
               v_dialplans.c.dialplan_context)
        .where(v_dialplans.c.dialplan_context.in_(contexts),
               v_dialplans.c.dialplan_enabled == TRUE,
               _for_node(v_dialplans.c.hostname, hostname))
        .order_by(v_dialplans.c.dialplan_order, v_dialplans.c.dialplan_name,
                  v_dialplans.c.dialplan_uuid)).all()
    exists = any(row[2] == context for row in rows)
    return exists, [(row[0], row[1]) for row in rows]


def sofia_data(conn: Connection, hostname: str
               ) -> Tuple[List[Tuple[str, str]], List[SofiaProfile], Sequence[str]]:
    """(global settings, this node's enabled profiles, VIPs this node holds)."""
    global_settings = [(r[0], r[1] or "") for r in conn.execute(
        select(v_sofia_global_settings.c.global_setting_name,
               v_sofia_global_settings.c.global_setting_value)
        .where(v_sofia_global_settings.c.global_setting_enabled == TRUE)
        .order_by(v_sofia_global_settings.c.global_setting_name))]
    profiles = conn.execute(
        select(v_sip_profiles.c.sip_profile_uuid, v_sip_profiles.c.sip_profile_name)
        .where(v_sip_profiles.c.sip_profile_enabled == TRUE,
               _for_node(v_sip_profiles.c.sip_profile_hostname, hostname))
        .order_by(v_sip_profiles.c.sip_profile_name)).all()
    uuids = [row[0] for row in profiles]
    settings, domains, gateways = {}, {}, {}
    if uuids:
        for uuid, name, value in conn.execute(
                select(v_sip_profile_settings.c.sip_profile_uuid,
                       v_sip_profile_settings.c.sip_profile_setting_name,
                       v_sip_profile_settings.c.sip_profile_setting_value)
                .where(v_sip_profile_settings.c.sip_profile_uuid.in_(uuids),
                       v_sip_profile_settings.c.sip_profile_setting_enabled == TRUE)):
            settings.setdefault(uuid, []).append((name or "", value or ""))
        for uuid, name, alias, parse in conn.execute(
                select(v_sip_profile_domains.c.sip_profile_uuid,
                       v_sip_profile_domains.c.sip_profile_domain_name,
                       v_sip_profile_domains.c.sip_profile_domain_alias,
                       v_sip_profile_domains.c.sip_profile_domain_parse)
                .where(v_sip_profile_domains.c.sip_profile_uuid.in_(uuids))
                .order_by(v_sip_profile_domains.c.sip_profile_domain_name)):
            domains.setdefault(uuid, []).append((name, alias, parse))
        names = [row[1] for row in profiles]
        for row in conn.execute(
                select(v_gateways).where(v_gateways.c.profile.in_(names),
                                         v_gateways.c.enabled == TRUE,
                                         _for_node(v_gateways.c.hostname, hostname))
                .order_by(v_gateways.c.gateway_uuid)).mappings():
            gateways.setdefault(row["profile"], []).append(dict(row))
    result = [SofiaProfile(name=name, settings=tuple(settings.get(uuid, ())),
                           domains=tuple(domains.get(uuid, ())),
                           gateways=tuple(gateways.get(name, ())))
              for uuid, name in profiles]
    held = [row[0] for row in conn.execute(
        select(cluster_vips.c.vip_name).where(cluster_vips.c.owner_node == hostname))]
    return global_settings, result, held
