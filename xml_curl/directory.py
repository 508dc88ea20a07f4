"""Render directory answers in FusionPBX's shape (its xml_handler ``directory.lua`` and
``action/*.lua``): a user for ``sip_auth``/``user_call``, ``message-count``, ``group_call``,
``reverse-auth-lookup``, and domain lists for ``purpose=gateways`` and
``switch_xml_locate_domain``. Pure: rows in, bytes out; every value escaped by lxml.
"""
import dataclasses
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from xml_curl.xmldoc import child, document, param, serialize

#: (variable name, v_extensions column) written when the column is not empty, in order;
#: the column is the variable's name with "-" as "_".
EXTENSION_VARIABLES: Tuple[Tuple[str, str], ...] = tuple(
    (name, name.replace("-", "_")) for name in (
        "call_group", "call_screen_enabled", "user_record", "hold_music", "toll_allow",
        "accountcode", "user_context", "effective_caller_id_name", "effective_caller_id_number",
        "outbound_caller_id_name", "outbound_caller_id_number", "emergency_caller_id_name",
        "emergency_caller_id_number", "missed_call_app", "missed_call_data", "directory-visible",
        "directory-exten-visible", "limit_destination", "sip-force-contact", "sip-force-expires",
        "absolute_codec_string", "force_ping", "forward_all_enabled", "forward_all_destination",
        "forward_busy_enabled", "forward_busy_destination", "forward_no_answer_enabled",
        "forward_no_answer_destination", "forward_user_not_registered_enabled",
        "forward_user_not_registered_destination", "do_not_disturb"))
#: Every v_extensions column the renderers read (the lookup selects these and no more).
USER_COLUMNS: Tuple[str, ...] = tuple(dict.fromkeys((
    "extension_uuid", "extension", "number_alias", "cidr", "password", "mwi_account",
    "auth_acl", "dial_string", "do_not_disturb", "user_context", "max_registrations",
    "call_timeout", "directory_first_name", "directory_last_name", "limit_max",
    "sip_bypass_media") + tuple(column for _name, column in EXTENSION_VARIABLES)))
#: sip_bypass_media value -> the channel variable FusionPBX sets to "true".
BYPASS_MEDIA = {"bypass-media": "bypass_media",
                "bypass-media-after-bridge": "bypass_media_after_bridge",
                "proxy-media": "proxy_media"}


@dataclasses.dataclass(frozen=True)
class UserRecord:
    """One enabled extension of an enabled domain, with what its answer needs."""

    domain_uuid: str
    domain_name: str
    extension: Mapping[str, Optional[str]]
    voicemail: Optional[Mapping[str, Optional[str]]]
    settings: Sequence[Tuple[str, str, str]]  # (type param|variable, name, value), enabled


def _value(row: Mapping, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _user_element(parent, ext: Mapping):
    attrs = {"id": _value(ext, "extension")}
    if _value(ext, "cidr"):
        attrs["cidr"] = _value(ext, "cidr")
    if _value(ext, "number_alias"):
        attrs["number-alias"] = _value(ext, "number_alias")
    return child(parent, "user", **attrs)


def _domain_users(record: UserRecord):
    root, section = document("directory")
    domain = child(section, "domain", name=record.domain_name, alias="true")
    users = child(child(child(domain, "groups"), "group", name="default"), "users")
    return root, _user_element(users, record.extension)


def dial_string(record: UserRecord) -> str:
    """FusionPBX's rule: DND → ``!USER_BUSY``; the row's own dial_string; else the contact
    found on *any* sofia profile (``*/``), since a user may be registered on any VIP."""
    ext = record.extension
    if _value(ext, "do_not_disturb") == "true":
        return "!USER_BUSY"
    if _value(ext, "dial_string"):
        return _value(ext, "dial_string")
    user = f"{_value(ext, 'extension')}@{record.domain_name}"
    return (f"{{sip_invite_domain={record.domain_name},presence_id={user}}}"
            f"${{sofia_contact(*/{user})}}")


def render_user(record: UserRecord) -> bytes:
    """The user answer for ``sip_auth`` (REGISTER/INVITE) and ``user_call``."""
    ext, vm = record.extension, record.voicemail or {}
    root, user = _domain_users(record)
    params = child(user, "params")
    param(params, "password", _value(ext, "password"))
    param(params, "vm-enabled", _value(vm, "voicemail_enabled") or "true")
    if vm:
        param(params, "vm-password", _value(vm, "voicemail_password"))
        if _value(vm, "voicemail_mail_to"):
            param(params, "vm-email-all-messages", _value(vm, "voicemail_enabled") or "true")
            param(params, "vm-attach-file",
                  "true" if _value(vm, "voicemail_file") in ("", "attach") else "false")
            param(params, "vm-keep-local-after-email",
                  _value(vm, "voicemail_local_after_email") or "true")
            param(params, "vm-mailto", _value(vm, "voicemail_mail_to"))
    if _value(ext, "mwi_account"):
        param(params, "MWI-Account", _value(ext, "mwi_account"))
    if _value(ext, "auth_acl"):
        param(params, "auth-acl", _value(ext, "auth_acl"))
    param(params, "dial-string", dial_string(record))
    param(params, "verto-context", _value(ext, "user_context"))
    param(params, "verto-dialplan", "XML")
    if _value(ext, "max_registrations"):
        param(params, "max-registrations-per-extension", _value(ext, "max_registrations"))
    for kind, name, value in record.settings:
        if kind == "param":
            param(params, name, value)

    variables = child(user, "variables")
    number = _value(ext, "number_alias") or _value(ext, "extension")
    first, last = _value(ext, "directory_first_name"), _value(ext, "directory_last_name")
    for name, value in (
            ("domain_uuid", record.domain_uuid), ("domain_name", record.domain_name),
            ("extension_uuid", _value(ext, "extension_uuid")),
            ("call_timeout", _value(ext, "call_timeout")),
            ("caller_id_name", _value(ext, "extension")), ("caller_id_number", number),
            ("presence_id", f"{_value(ext, 'extension')}@{record.domain_name}"),
            ("directory_full_name", " ".join(filter(None, (first, last)))),
            ("limit_max", _value(ext, "limit_max") or "5")):
        if value:
            param(variables, name, value, tag="variable")
    for name, column in EXTENSION_VARIABLES:
        if _value(ext, column):
            param(variables, name, _value(ext, column), tag="variable")
    bypass = BYPASS_MEDIA.get(_value(ext, "sip_bypass_media"))
    if bypass:
        param(variables, bypass, "true", tag="variable")
    for kind, name, value in record.settings:
        if kind == "variable":
            param(variables, name, value, tag="variable")
    return serialize(root)


def render_message_count(record: UserRecord) -> bytes:
    """``action=message-count`` (mod_voicemail's MWI lookup): the user and its voicemail
    switches only — no password, no dial-string."""
    root, user = _domain_users(record)
    params = child(user, "params")
    param(params, "vm-enabled", _value(record.voicemail or {}, "voicemail_enabled") or "true")
    if _value(record.extension, "mwi_account"):
        param(params, "MWI-Account", _value(record.extension, "mwi_account"))
    return serialize(root)


def render_reverse_auth(record: UserRecord) -> bytes:
    """``action=reverse-auth-lookup``: credentials sofia uses to answer a challenge."""
    root, user = _domain_users(record)
    params = child(user, "params")
    param(params, "reverse-auth-user", _value(record.extension, "extension"))
    param(params, "reverse-auth-pass", _value(record.extension, "password"))
    return serialize(root)


def call_groups(extensions: Iterable[Tuple[str, str]]) -> Mapping[str, Tuple[str, ...]]:
    """``{group: (extension, …)}`` from (extension, call_group "a,b") pairs, sorted."""
    groups = {}
    for extension, call_group in extensions:
        for name in (call_group or "").split(","):
            if name.strip():
                groups.setdefault(name.strip(), []).append(extension)
    return {name: tuple(sorted(groups[name])) for name in sorted(groups)}


def render_group_call(domain_name: str, groups: Mapping[str, Sequence[str]]) -> bytes:
    """``action=group_call``: every call group of the domain, users as pointers."""
    root, section = document("directory")
    domain = child(section, "domain", name=domain_name)
    groups_node = child(domain, "groups")
    for name, members in groups.items():
        users = child(child(groups_node, "group", name=name), "users")
        for extension in members:
            child(users, "user", id=extension, type="pointer")
    return serialize(root)


def render_domains(domain_names: Iterable[str]) -> bytes:
    """``purpose=gateways`` and ``switch_xml_locate_domain``: the domains, no users."""
    root, section = document("directory")
    for name in domain_names:
        child(section, "domain", name=name)
    return serialize(root)
