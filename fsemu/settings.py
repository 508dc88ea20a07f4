"""What one emulated FreeSWITCH is configured with (switch.conf, event_socket.conf, sofia.conf).

Defaults are FreeSWITCH's own defaults unless noted; the timing knobs exist so tests need
not wait as long as a real box would (they never change *what* happens, only when).
"""
import dataclasses
from typing import Optional, Tuple


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    """One sofia profile (sofia.conf ``<profile name=…>``)."""

    name: str
    sip_ip: str = "127.0.0.1"
    sip_port: int = 5060
    #: ``track-calls`` (DESIGN.md: every VIP profile sets it); fills the core recovery table
    track_calls: bool = True
    #: ``multiple-registrations``: ``contact`` (FusionPBX's default profiles), ``true``, ``false``
    multiple_registrations: str = "contact"
    #: ``sip-expires-late-margin`` (sofia.c default 60): added to the stored absolute expiry
    expires_late_margin: int = 60

    @property
    def url(self) -> str:
        """``sofia status`` Data column (mod_sofia.c ``sofia_status``)."""
        return f"sip:mod_sofia@{self.sip_ip}:{self.sip_port}"


@dataclasses.dataclass(frozen=True)
class Settings:
    switchname: str
    db_url: str
    #: event_socket.conf ``password`` (FreeSWITCH default ``ClueCon``)
    password: str = "ClueCon"
    #: event_socket.conf ``listen-ip`` / ``listen-port`` (port 0: pick a free one)
    listen_ip: str = "127.0.0.1"
    listen_port: int = 0
    #: switch.conf ``multiple-registrations`` (core ``registrations`` table; default off:
    #: one row per user@realm per host)
    core_multiple_registrations: bool = False
    #: ``apply-inbound-acl`` entries (each a comma-separated CIDR list; a peer must pass every
    #: entry); FreeSWITCH's default is ``loopback.auto``
    acl: Tuple[str, ...] = ("127.0.0.0/8,::1/128",)
    profiles: Tuple[ProfileSettings, ...] = (ProfileSettings("vip1"),)
    #: profiles started when the switch starts (others wait for ``sofia profile X start``)
    autostart_profiles: Optional[Tuple[str, ...]] = None
    #: switch.conf ``event-heartbeat-interval``-like knob; FreeSWITCH fires every 20 s
    heartbeat_interval: float = 20.0
    #: sofia worker's ``sofia_reg_check_expire`` period (0: only when the driver asks)
    reg_sweep_interval: float = 30.0
    #: mod_sofia.c refuses ``restart`` of a profile younger than this (FreeSWITCH: 10 s)
    min_restart_uptime: float = 10.0
    #: how long a profile takes from ``start`` to ``sofia::profile_start`` (async in sofia.c)
    profile_start_delay: float = 0.05
    #: mod_event_socket.c MAX_QUEUE_LEN / MAX_MISSED
    max_queue: int = 100_000
    max_missed: int = 500
    #: ``read_packet(listener, &event, 25)``: seconds to send the first command after connect
    auth_timeout: float = 25.0
    #: xml_curl binding; a starting profile fetches sofia.conf and ``purpose=gateways`` here
    xml_curl_url: Optional[str] = None
    xml_curl_timeout: float = 5.0
    #: FreeSWITCH-Hostname / FreeSWITCH-IPv4 in every event (the box's name and address)
    fs_hostname: str = "fsemu-host"
    ipv4: str = "198.18.0.1"
    max_sessions: int = 1000
    version: str = "1.10.12-release~64bit"

    def profile(self, name: str) -> Optional[ProfileSettings]:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        return None
