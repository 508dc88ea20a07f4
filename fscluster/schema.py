"""Table definitions: the FusionPBX-compatible tables the service reads, and the cluster's own.

This module is the single source of truth; ``sql/mariadb.sql`` is generated from it
(``fscluster db ddl mariadb``) and a test fails when the two drift apart. Every table has a
primary key (Galera replicates nothing else reliably). Column names follow FusionPBX so an
existing FusionPBX database can be pointed at directly.

A change to any table a lookup reads bumps ``cluster_cache_generation`` through a trigger
(see :mod:`fscluster.triggers`), so edits made by FusionPBX's own UI invalidate every node's
cache too, not only edits made through fscluster.
"""
from sqlalchemy import (BigInteger, Boolean, Column, Double, Index, Integer, MetaData, String,
                        Table, Text)

metadata = MetaData()


def _uuid(name):
    return Column(name, String(36), primary_key=True)


def _ref(name, nullable=True):
    return Column(name, String(36), nullable=nullable)


def _text(name, size=255):
    return Column(name, String(size))


# ---------------------------------------------------------------- FusionPBX-compatible tables
v_domains = Table(
    "v_domains", metadata,
    _uuid("domain_uuid"), _ref("domain_parent_uuid"),
    Column("domain_name", String(255), nullable=False, unique=True),
    _text("domain_enabled", 8), _text("domain_description"),
)

v_extensions = Table(
    "v_extensions", metadata,
    _uuid("extension_uuid"), _ref("domain_uuid", nullable=False),
    Column("extension", String(64), nullable=False), _text("number_alias", 64),
    _text("password"), _text("accountcode"),
    _text("effective_caller_id_name"), _text("effective_caller_id_number"),
    _text("outbound_caller_id_name"), _text("outbound_caller_id_number"),
    _text("emergency_caller_id_name"), _text("emergency_caller_id_number"),
    _text("directory_first_name"), _text("directory_last_name"),
    _text("directory_visible", 8), _text("directory_exten_visible", 8),
    _text("max_registrations", 16), _text("limit_max", 16), _text("limit_destination"),
    _text("missed_call_app"), _text("missed_call_data"),
    _text("user_context"), _text("toll_allow"), _text("call_timeout", 16), _text("call_group"),
    _text("call_screen_enabled", 8), _text("user_record", 16), _text("hold_music"),
    _text("auth_acl"), _text("cidr"), _text("sip_force_contact"), _text("sip_force_expires", 16),
    _text("mwi_account"), _text("sip_bypass_media"), _text("absolute_codec_string"),
    _text("force_ping", 8), _text("dial_string", 4096), _text("do_not_disturb", 8),
    _text("forward_all_enabled", 8), _text("forward_all_destination"),
    _text("forward_busy_enabled", 8), _text("forward_busy_destination"),
    _text("forward_no_answer_enabled", 8), _text("forward_no_answer_destination"),
    _text("forward_user_not_registered_enabled", 8),
    _text("forward_user_not_registered_destination"),
    _text("follow_me_uuid", 36), _text("enabled", 8), _text("description"),
    Index("ix_v_extensions_domain_extension", "domain_uuid", "extension"),
    Index("ix_v_extensions_domain_alias", "domain_uuid", "number_alias"),
)

v_extension_settings = Table(
    "v_extension_settings", metadata,
    _uuid("extension_setting_uuid"), _ref("domain_uuid"), _ref("extension_uuid", nullable=False),
    _text("extension_setting_type", 32), _text("extension_setting_name"),
    _text("extension_setting_value", 4096), _text("extension_setting_enabled", 8),
    _text("extension_setting_description"),
    Index("ix_v_extension_settings_extension", "extension_uuid"),
)

v_voicemails = Table(
    "v_voicemails", metadata,
    _uuid("voicemail_uuid"), _ref("domain_uuid", nullable=False),
    _text("voicemail_id", 64), _text("voicemail_password"), _text("greeting_id", 16),
    _text("voicemail_mail_to", 1024), _text("voicemail_file", 32),
    _text("voicemail_local_after_email", 8), _text("voicemail_enabled", 8),
    _text("voicemail_description"),
    Index("ix_v_voicemails_domain_id", "domain_uuid", "voicemail_id"),
)

v_dialplans = Table(
    "v_dialplans", metadata,
    _uuid("dialplan_uuid"), _ref("domain_uuid"), _ref("app_uuid"),
    _text("hostname"), _text("dialplan_context"), _text("dialplan_name"),
    _text("dialplan_number"), _text("dialplan_continue", 8),
    Column("dialplan_xml", Text), Column("dialplan_order", Integer),
    _text("dialplan_enabled", 8), _text("dialplan_description"),
    Index("ix_v_dialplans_context", "dialplan_context"),
)

v_sip_profiles = Table(
    "v_sip_profiles", metadata,
    _uuid("sip_profile_uuid"), _text("sip_profile_name"), _text("sip_profile_hostname"),
    _text("sip_profile_enabled", 8), _text("sip_profile_description"),
)

v_sip_profile_settings = Table(
    "v_sip_profile_settings", metadata,
    _uuid("sip_profile_setting_uuid"), _ref("sip_profile_uuid", nullable=False),
    _text("sip_profile_setting_name"), _text("sip_profile_setting_value", 4096),
    _text("sip_profile_setting_enabled", 8), _text("sip_profile_setting_description"),
)

v_sip_profile_domains = Table(
    "v_sip_profile_domains", metadata,
    _uuid("sip_profile_domain_uuid"), _ref("sip_profile_uuid", nullable=False),
    _text("sip_profile_domain_name"), _text("sip_profile_domain_alias", 8),
    _text("sip_profile_domain_parse", 8),
)

v_gateways = Table(
    "v_gateways", metadata,
    _uuid("gateway_uuid"), _ref("domain_uuid"), _text("gateway"),
    _text("username"), _text("password"), _text("distinct_to", 8), _text("auth_username"),
    _text("realm"), _text("from_user"), _text("from_domain"), _text("proxy"),
    _text("register_proxy"), _text("outbound_proxy"), _text("expire_seconds", 16),
    _text("register", 8), _text("register_transport", 16), _text("retry_seconds", 16),
    _text("extension"), _text("ping", 16), _text("caller_id_in_from", 8),
    _text("supress_cng", 8), _text("sip_cid_type", 16), _text("codec_prefs"),
    _text("channels", 16), _text("extension_in_contact", 8), _text("context"),
    _text("profile"), _text("hostname"), _text("enabled", 8), _text("description"),
)

v_sofia_global_settings = Table(
    "v_sofia_global_settings", metadata,
    _uuid("sofia_global_setting_uuid"), _text("global_setting_name"),
    _text("global_setting_value", 4096), _text("global_setting_enabled", 8),
    _text("global_setting_description"),
)

v_vars = Table(
    "v_vars", metadata,
    _uuid("var_uuid"), _text("var_category"), _text("var_name"), _text("var_value", 4096),
    _text("var_command", 16), _text("var_hostname"), _text("var_enabled", 8),
    Column("var_order", Integer), _text("var_description"),
)

#: Tables whose changes alter a lookup answer; each carries a generation-bumping trigger.
LOOKUP_TABLES = (v_domains, v_extensions, v_extension_settings, v_voicemails, v_dialplans,
                 v_sip_profiles, v_sip_profile_settings, v_sip_profile_domains, v_gateways,
                 v_sofia_global_settings, v_vars)

# ---------------------------------------------------------------- the cluster's own tables
cluster_cache_generation = Table(
    "cluster_cache_generation", metadata,
    Column("name", String(32), primary_key=True),
    Column("generation", BigInteger, nullable=False, default=1),
)

cluster_nodes = Table(
    "cluster_nodes", metadata,
    Column("node_name", String(64), primary_key=True),
    _text("role", 16),                      # active | passive | unknown
    _text("vips", 255),                     # comma-separated VIP names held now
    Column("last_seen", Double),             # epoch seconds of the agent's last heartbeat
    Column("freeswitch_up", Boolean),
    Column("sessions", Integer), Column("registrations", Integer),
    Column("channels", Integer), Column("uptime_ms", BigInteger),
    Column("register_failures", BigInteger),  # sofia::register_failure seen by the agent
)

cluster_vips = Table(
    "cluster_vips", metadata,
    Column("vip_name", String(64), primary_key=True),
    _text("address", 64), _text("owner_node", 64), _text("previous_owner", 64),
    Column("lease_expires", Double), Column("claimed_at", Double),
    Column("epoch", BigInteger, nullable=False, default=0),  # +1 per change of owner
)

cluster_registrations = Table(
    "cluster_registrations", metadata,
    Column("call_id", String(255), primary_key=True),
    Column("node", String(64), nullable=False), _text("profile_name", 64),
    _text("sip_user"), _text("sip_host"), _text("contact", 1024), _text("status"),
    _text("network_ip", 64), _text("network_port", 16), _text("user_agent"),
    _text("sip_username"), _text("sip_realm"),
    Column("expires", BigInteger),          # absolute epoch seconds
    Column("updated_at", Double),
    Index("ix_cluster_registrations_node", "node", "profile_name"),
)

cluster_channels = Table(
    "cluster_channels", metadata,
    Column("uuid", String(64), primary_key=True),
    Column("node", String(64), nullable=False), _text("direction", 16),
    _text("caller_id_number"), _text("caller_id_name"), _text("destination_number"),
    _text("state", 64), _text("callstate", 64), _text("profile_name", 64),
    _text("call_uuid", 64), Column("created_epoch", BigInteger),
    Column("answered_epoch", BigInteger), Column("updated_at", Double),
    Index("ix_cluster_channels_node", "node"),
)

cluster_events = Table(
    "cluster_events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Double, nullable=False), _text("node", 64), _text("kind", 32),
    _text("vip", 64), _text("from_node", 64), Column("duration_ms", Double),
    Column("detail", Text),                 # JSON: per-step timings and counts
)

cluster_cdr_queue = Table(
    "cluster_cdr_queue", metadata,
    Column("uuid", String(64), primary_key=True),
    Column("node", String(64), nullable=False), Column("enqueued_at", Double),
    Column("payload", Text),                # JSON of the CHANNEL_HANGUP_COMPLETE headers kept
    _text("claimed_by", 64), Column("claimed_at", Double), Column("processed_at", Double),
    Index("ix_cluster_cdr_queue_pending", "processed_at", "claimed_by"),
)

cluster_cdrs = Table(
    "cluster_cdrs", metadata,
    Column("uuid", String(64), primary_key=True), _text("node", 64), _text("direction", 16),
    _text("caller_id_number"), _text("destination_number"), _text("context"),
    Column("start_epoch", BigInteger), Column("answer_epoch", BigInteger),
    Column("end_epoch", BigInteger), Column("duration", Integer), Column("billsec", Integer),
    _text("hangup_cause", 64), _text("processed_by", 64),
)
