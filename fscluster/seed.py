"""Realistic FusionPBX-shaped data for the demo (`make run`), tests and benchmarks.

UUIDs are derived (uuid5) from names, so seeding is reproducible and re-running it skips what
exists instead of duplicating it. The first domain is ``demo.local`` with extensions
1000, 1001, …; passwords are derived from a salt so tests can compute them
(:func:`extension_password`) without the DB.
"""
import hashlib
import uuid
from typing import Callable, Iterable, List, Optional

from sqlalchemy import insert, select

from fscluster import schema
from fscluster.db import Database

NAMESPACE = uuid.UUID("6f1c3c1e-7d3a-4f39-9a53-2f0d8f7f2a10")
DEMO_DOMAIN = "demo.local"
FIRST_EXTENSION = 1000


def _id(*parts) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def domain_name(index: int) -> str:
    return DEMO_DOMAIN if index == 0 else f"tenant{index:04d}.example.net"


def extension_password(domain: str, extension: str, salt: str = "demo") -> str:
    return hashlib.sha256(f"{salt}:{domain}:{extension}".encode()).hexdigest()[:20]


LOCAL_EXTENSION_XML = (
    '<extension name="local_extension" continue="false">'
    '<condition field="destination_number" expression="^(\\d{{3,5}})$">'
    '<action application="set" data="call_timeout=30"/>'
    '<action application="bridge" data="user/$1@{domain}"/>'
    '</condition></extension>')

GLOBAL_XML = (
    '<extension name="call_direction" continue="true">'
    '<condition field="${call_direction}" expression="^$">'
    '<action application="export" data="call_direction=local" inline="true"/>'
    '</condition></extension>')


def _domain_rows(index: int, extensions: int, salt: str):
    domain = domain_name(index)
    domain_uuid = _id("domain", domain)
    yield schema.v_domains, dict(domain_uuid=domain_uuid, domain_name=domain,
                                 domain_enabled="true", domain_description="seeded")
    for number in range(FIRST_EXTENSION, FIRST_EXTENSION + extensions):
        ext = str(number)
        ext_uuid = _id("extension", domain, ext)
        yield schema.v_extensions, dict(
            extension_uuid=ext_uuid, domain_uuid=domain_uuid, extension=ext,
            number_alias=str(number + 1000) if number % 10 == 0 else None,
            password=extension_password(domain, ext, salt), user_context=domain,
            effective_caller_id_name=f"Extension {ext}", effective_caller_id_number=ext,
            outbound_caller_id_number="+15550100" + ext[-3:], toll_allow="domestic",
            call_timeout="30", call_group="sales" if number % 2 else "support",
            max_registrations="3", limit_max="5", directory_visible="true",
            directory_exten_visible="true", enabled="true", description="seeded")
        yield schema.v_extension_settings, dict(
            extension_setting_uuid=_id("extension_setting", domain, ext),
            domain_uuid=domain_uuid, extension_uuid=ext_uuid,
            extension_setting_type="variable", extension_setting_name="record_stereo",
            extension_setting_value="true", extension_setting_enabled="true")
        yield schema.v_voicemails, dict(
            voicemail_uuid=_id("voicemail", domain, ext), domain_uuid=domain_uuid,
            voicemail_id=ext, voicemail_password=str(number * 7 % 10000).zfill(4),
            voicemail_mail_to=f"{ext}@{domain}", voicemail_enabled="true",
            voicemail_local_after_email="true", voicemail_file="attach")
    yield schema.v_dialplans, dict(
        dialplan_uuid=_id("dialplan", domain, "local"), domain_uuid=domain_uuid,
        dialplan_context=domain, dialplan_name="local_extension", dialplan_continue="false",
        dialplan_xml=LOCAL_EXTENSION_XML.format(domain=domain), dialplan_order=890,
        dialplan_enabled="true")


def _cluster_rows(vips: Iterable):
    yield schema.v_dialplans, dict(
        dialplan_uuid=_id("dialplan", "global", "call_direction"), dialplan_context="global",
        dialplan_name="call_direction", dialplan_continue="true", dialplan_xml=GLOBAL_XML,
        dialplan_order=5, dialplan_enabled="true")
    for name, value in (("log-level", "0"), ("debug-presence", "0"),
                        ("auto-restart", "false")):
        yield schema.v_sofia_global_settings, dict(
            sofia_global_setting_uuid=_id("sofia_global", name), global_setting_name=name,
            global_setting_value=value, global_setting_enabled="true")
    yield schema.v_vars, dict(var_uuid=_id("var", "default_language"), var_category="Defaults",
                              var_name="default_language", var_value="en", var_enabled="true",
                              var_order=1)
    for vip in vips:
        profile_uuid = _id("sip_profile", vip.name)
        yield schema.v_sip_profiles, dict(
            sip_profile_uuid=profile_uuid, sip_profile_name=vip.name, sip_profile_hostname=None,
            sip_profile_enabled="true", sip_profile_description=f"floating profile on {vip.address}")
        settings = {"sip-ip": vip.address, "rtp-ip": vip.address, "sip-port": "5060",
                    "context": "public", "auth-calls": "true", "track-calls": "true",
                    "auto-clear-sql": "false", "manage-presence": "true",
                    "inbound-reg-force-matching-username": "true"}
        for setting, value in settings.items():
            yield schema.v_sip_profile_settings, dict(
                sip_profile_setting_uuid=_id("sip_profile_setting", vip.name, setting),
                sip_profile_uuid=profile_uuid, sip_profile_setting_name=setting,
                sip_profile_setting_value=value, sip_profile_setting_enabled="true")
        yield schema.v_sip_profile_domains, dict(
            sip_profile_domain_uuid=_id("sip_profile_domain", vip.name),
            sip_profile_uuid=profile_uuid, sip_profile_domain_name="all",
            sip_profile_domain_alias="false", sip_profile_domain_parse="false")
        yield schema.v_gateways, dict(
            gateway_uuid=_id("gateway", vip.name), gateway=f"carrier-{vip.name}",
            username="trunkuser", password=extension_password("carrier", vip.name),
            proxy="sip.carrier.invalid", register="false", expire_seconds="800",
            retry_seconds="30", context="public", profile=vip.name, hostname=None,
            enabled="true")


def seed(db: Database, domains: int = 1, extensions: int = 20, vips: Iterable = (),
         salt: str = "demo", progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Insert ``domains`` × ``extensions`` plus cluster-wide rows; returns rows inserted."""
    def existing(conn, table, key, values):
        column = table.c[key]
        return {row[0] for row in conn.execute(select(column).where(column.in_(values)))}

    inserted = 0
    batches: List[Iterable] = [_cluster_rows(vips)] + [
        _domain_rows(index, extensions, salt) for index in range(domains)]
    for done, batch in enumerate(batches):
        by_table = {}
        for table, row in batch:
            by_table.setdefault(table, []).append(row)
        with db.write.begin() as conn:
            for table, rows in by_table.items():
                key = table.primary_key.columns.keys()[0]
                have = existing(conn, table, key, [r[key] for r in rows])
                fresh = [r for r in rows if r[key] not in have]
                for start in range(0, len(fresh), 500):
                    conn.execute(insert(table), fresh[start:start + 500])
                inserted += len(fresh)
        if progress:
            progress(done + 1, len(batches))
    return inserted
