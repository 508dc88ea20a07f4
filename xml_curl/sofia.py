"""Render ``sofia.conf`` for one node, in the shape of FusionPBX's ``sofia.conf.lua``, with
the cluster's two rules on top (DESIGN.md §3):

- a profile named after a configured VIP is served only to the node that holds that VIP
  (``cluster_vips.owner_node``), so a takeover is "bump the generation, start the profile";
- VIP profiles get ``auto-clear-sql=false`` (a starting profile must not wipe the other
  nodes' rows in the shared DB) and the global settings ``auto-restart=false`` (an address
  change must not restart profiles behind the agent's back).
Pure: rows in, bytes out."""
import dataclasses
from typing import AbstractSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from xml_curl.xmldoc import child, document, param, serialize

#: (sofia gateway param, v_gateways column), written when the column is not empty.
GATEWAY_PARAMS = (
    ("username", "username"), ("distinct-to", "distinct_to"),
    ("auth-username", "auth_username"), ("password", "password"), ("realm", "realm"),
    ("from-user", "from_user"), ("from-domain", "from_domain"), ("proxy", "proxy"),
    ("register-proxy", "register_proxy"), ("outbound-proxy", "outbound_proxy"),
    ("expire-seconds", "expire_seconds"), ("register", "register"),
    ("retry-seconds", "retry_seconds"), ("extension", "extension"), ("ping", "ping"),
    ("context", "context"), ("caller-id-in-from", "caller_id_in_from"),
    ("supress-cng", "supress_cng"), ("extension-in-contact", "extension_in_contact"),
)
FORCED_GLOBAL = {"auto-restart": "false"}
FORCED_VIP_PROFILE = {"auto-clear-sql": "false"}


@dataclasses.dataclass(frozen=True)
class SofiaProfile:
    name: str
    settings: Sequence[Tuple[str, str]]
    domains: Sequence[Tuple[str, str, str]]          # (name, alias, parse)
    gateways: Sequence[Mapping[str, Optional[str]]]  # v_gateways rows


def select_profiles(profiles: Iterable[SofiaProfile], vip_names: AbstractSet[str],
                    held: AbstractSet[str]) -> List[SofiaProfile]:
    """Base profiles always; a VIP's profile only where that VIP is held."""
    return [p for p in profiles if p.name not in vip_names or p.name in held]


def _forced(pairs: Iterable[Tuple[str, str]], forced: Mapping[str, str]):
    kept = [(name, value) for name, value in pairs if name not in forced]
    return sorted(kept + list(forced.items()))


def _gateway(parent, row: Mapping[str, Optional[str]]) -> None:
    node = child(parent, "gateway", name=str(row.get("gateway_uuid") or "").lower())
    for name, column in GATEWAY_PARAMS:
        if row.get(column):
            param(node, name, row[column])
    transport = (row.get("register_transport") or "").lower()
    if transport:
        param(node, "register-transport", transport if transport in ("tcp", "tls") else "udp")
        if transport == "tls":
            param(node, "contact-params", "transport=tls")
    variables = child(node, "variables")
    if row.get("sip_cid_type"):
        param(variables, "sip_cid_type", row["sip_cid_type"], tag="variable")


def render_sofia(global_settings: Iterable[Tuple[str, str]],
                 profiles: Iterable[SofiaProfile], vip_names: AbstractSet[str],
                 vip_settings: Mapping[str, str] = FORCED_VIP_PROFILE) -> bytes:
    """``profiles`` already chosen for the node (see :func:`select_profiles`); VIP profiles
    get ``vip_settings`` over their DB settings
    (:func:`fscluster.freeswitch_conf.vip_profile_forced`)."""
    root, section = document("configuration")
    conf = child(section, "configuration", name="sofia.conf", description="sofia Endpoint")
    settings = child(conf, "global_settings")
    for name, value in _forced(global_settings, FORCED_GLOBAL):
        param(settings, name, value)
    profiles_node = child(conf, "profiles")
    for profile in sorted(profiles, key=lambda p: p.name):
        node = child(profiles_node, "profile", name=profile.name)
        child(node, "aliases")
        gateways = child(node, "gateways")
        for row in profile.gateways:
            _gateway(gateways, row)
        domains = child(node, "domains")
        for name, alias, parse in profile.domains:
            child(domains, "domain", name=name or "false", alias=alias or "false",
                  parse=parse or "false")
        settings = child(node, "settings")
        forced = vip_settings if profile.name in vip_names else {}
        for name, value in _forced(profile.settings, forced):
            param(settings, name, value)
    return serialize(root)
