"""Registrations as sofia_reg.c handles them: SQL rows, then CUSTOM events, in that order.

A :class:`Binding` is what one phone's REGISTER carries; :class:`Registrar` turns it into
``sip_registrations`` + core ``registrations`` rows and the events FreeSWITCH fires
(``sofia_reg_handle_register_token``), sweeps expiries (``sofia_reg_check_expire``: events
for expired rows of *every* hostname, delete of own rows only) and fails auth (403 →
``sofia::register_failure``; a 401 challenge fires nothing the agent uses).
"""
import dataclasses
from typing import Iterable, List, Optional, Sequence

from fsemu.event import Header

CALLING = "sofia_reg.c"
#: (function, line) as in the real capture (1.10.12) where known
REGISTER_ATTEMPT_AT = ("sofia_reg_handle_register_token", 1606)
REGISTER_AT = ("sofia_reg_handle_register_token", 2059)
UNREGISTER_AT = ("sofia_reg_handle_register_token", 2207)
FAILURE_AT = ("sofia_reg_handle_register_token", 1700)
EXPIRE_AT = ("sofia_reg_del_callback", 1011)


@dataclasses.dataclass(frozen=True)
class Binding:
    """One REGISTER: who, from where, on which profile, for how long."""

    user: str
    domain: str
    profile: str
    call_id: str
    network_ip: str = "127.0.0.1"
    network_port: int = 5070
    user_agent: str = "fsemu-phone"
    expires: int = 3600
    transport: str = "udp"

    @property
    def contact_uri(self) -> str:
        suffix = f";transport={self.transport}" if self.transport != "udp" else ""
        return f"sip:{self.user}@{self.network_ip}:{self.network_port}{suffix}"

    @property
    def contact(self) -> str:
        """``contact_str``: display (``""`` when none) and the Contact URI in brackets."""
        return f'"" <{self.contact_uri}>'

    @property
    def status(self) -> str:
        return {"udp": "Registered(UDP)", "tcp": "Registered(TCP)",
                "tls": "Registered(TLS)"}[self.transport]

    @property
    def url(self) -> str:
        """The core ``registrations.url``: ``sofia/<profile>/<contact uri without params>``."""
        return f"sofia/{self.profile}/sip:{self.user}@{self.network_ip}:{self.network_port}"


def sip_row(binding: Binding, switchname: str, server_ip: str, now: int,
            late_margin: int) -> dict:
    """The ``insert into sip_registrations`` of ``sofia_reg_handle_register_token``."""
    expires = now + binding.expires + late_margin
    return {
        "call_id": binding.call_id, "sip_user": binding.user, "sip_host": binding.domain,
        "presence_hosts": "", "contact": binding.contact, "status": binding.status,
        "rpid": "unknown", "expires": expires, "user_agent": binding.user_agent,
        "server_user": binding.user, "server_host": server_ip,
        "profile_name": binding.profile, "hostname": switchname,
        "network_ip": binding.network_ip, "network_port": str(binding.network_port),
        "sip_username": binding.user, "sip_realm": binding.domain,
        "mwi_user": binding.user, "mwi_host": binding.domain,
        "orig_server_host": server_ip, "orig_hostname": switchname,
        "sub_host": binding.domain, "ping_status": "Reachable", "ping_count": 0,
    }


def core_row(binding: Binding, switchname: str, now: int, late_margin: int) -> dict:
    """``switch_core_add_registration`` arguments."""
    return {
        "reg_user": binding.user, "realm": binding.domain, "token": binding.call_id,
        "url": binding.url, "expires": now + binding.expires + late_margin,
        "network_ip": binding.network_ip, "network_port": str(binding.network_port),
        "network_proto": binding.transport, "hostname": switchname, "metadata": None,
    }


def attempt_headers(binding: Binding, auth_result: str) -> List[Header]:
    """``sofia::register_attempt``. Note sofia's swap: from-* carry the To user/host."""
    b = binding
    return [("profile-name", b.profile), ("from-user", b.user), ("from-host", b.domain),
            ("contact", b.contact), ("call-id", b.call_id), ("rpid", "unknown"),
            ("status", b.status), ("expires", str(b.expires)), ("to-user", b.user),
            ("to-host", b.domain), ("network-ip", b.network_ip),
            ("network-port", str(b.network_port)), ("username", b.user), ("realm", b.domain),
            ("user-agent", b.user_agent), ("auth-result", auth_result)]


def register_headers(binding: Binding, update: bool) -> List[Header]:
    """``sofia::register``; then the directory user's variables merged from the auth lookup
    (as in the 1.10.12 capture)."""
    b = binding
    headers = [("profile-name", b.profile), ("from-user", b.user), ("from-host", b.domain),
               ("presence-hosts", "n/a"), ("contact", b.contact), ("call-id", b.call_id),
               ("rpid", "unknown"), ("status", b.status), ("expires", str(b.expires)),
               ("to-user", b.user), ("to-host", b.domain), ("network-ip", b.network_ip),
               ("network-port", str(b.network_port)), ("username", b.user),
               ("realm", b.domain), ("user-agent", b.user_agent)]
    if update:
        headers.append(("update-reg", "true"))
    return headers + [("sip_number_alias", b.user), ("sip_auth_username", b.user),
                      ("sip_auth_realm", b.domain), ("number_alias", b.user),
                      ("user_name", b.user), ("domain_name", b.domain),
                      ("user_context", b.domain)]


def unregister_headers(binding: Binding) -> List[Header]:
    """``sofia::unregister`` (REGISTER with Expires: 0)."""
    b = binding
    return [("profile-name", b.profile), ("username", b.user), ("from-user", b.user),
            ("from-host", b.domain), ("contact", b.contact), ("call-id", b.call_id),
            ("rpid", "unknown"), ("realm", b.domain), ("expires", "0")]


def socket_closed_headers(binding: Binding) -> List[Header]:
    """``sofia::unregister`` when a TCP/TLS/WS registration's socket closes (sofia.c
    ``our_sofia_event_callback``, ``nua_i_media_error``): no contact, no expires."""
    b = binding
    return [("profile-name", b.profile), ("from-user", b.user), ("from-host", b.domain),
            ("call-id", b.call_id), ("rpid", "unknown"), ("reason", "socket-disconnection")]


def failure_headers(binding: Binding) -> List[Header]:
    """``sofia::register_failure`` (only on 403; ``profile-name`` really is added twice)."""
    b = binding
    return [("profile-name", b.profile), ("to-user", b.user), ("to-host", b.domain),
            ("network-ip", b.network_ip), ("user-agent", b.user_agent),
            ("profile-name", b.profile), ("network-port", str(b.network_port)),
            ("registration-type", "REGISTER")]


def expire_headers(row: dict) -> List[Header]:
    """``sofia_reg_del_callback``: ``expires`` is the row's absolute epoch, not seconds."""
    return [("profile-name", row["profile_name"] or ""), ("call-id", row["call_id"] or ""),
            ("user", row["sip_user"] or ""), ("host", row["sip_host"] or ""),
            ("contact", row["contact"] or ""), ("expires", str(row["expires"])),
            ("user-agent", row["user_agent"] or ""), ("realm", row["sip_realm"] or "")]


class Registrar:
    """Registration handling for one switch (the rows are the state; nothing is cached)."""

    def __init__(self, switch):
        self.switch = switch

    def _profile(self, name: str):
        return self.switch.sofia.running_profile(name)

    def register(self, bindings: Sequence[Binding], auth_result: str = "SUCCESS") -> int:
        """Successful REGISTERs. ``auth_result`` ``RENEWED`` on a known contact is a refresh
        (row updated and re-homed, ``update-reg: true``). Returns how many were accepted
        (bindings for a profile that is not running are dropped, as SIP to a dead port is)."""
        switch = self.switch
        name = switch.settings.switchname
        now = int(switch.clock())
        entries, events = [], []
        for binding in bindings:
            profile = self._profile(binding.profile)
            if profile is None:
                continue
            settings = profile.settings
            row = sip_row(binding, name, settings.sip_ip, now, settings.expires_late_margin)
            refresh = (auth_result == "RENEWED" and settings.multiple_registrations != "false"
                       and switch.store.binding_exists(row))
            entries.append((row, core_row(binding, name, now, settings.expires_late_margin),
                            refresh))
            events.append((binding, refresh))
        if not entries:
            return 0
        multi = self._profile(bindings[0].profile).settings.multiple_registrations
        switch.store.register(entries, multi, switch.settings.core_multiple_registrations)
        for binding, refresh in events:
            switch.fire_custom("sofia::register_attempt", attempt_headers(binding, auth_result),
                               (CALLING,) + REGISTER_ATTEMPT_AT)
            switch.fire_custom("sofia::register", register_headers(binding, refresh),
                               (CALLING,) + REGISTER_AT)
        return len(entries)

    def unregister(self, binding: Binding) -> bool:
        profile = self._profile(binding.profile)
        if profile is None:
            return False
        switch = self.switch
        row = sip_row(binding, switch.settings.switchname, profile.settings.sip_ip, 0, 0)
        switch.store.unregister(row, profile.settings.multiple_registrations,
                                switch.settings.switchname,
                                switch.settings.core_multiple_registrations)
        switch.fire_custom("sofia::unregister", unregister_headers(binding),
                           (CALLING,) + UNREGISTER_AT)
        return True

    def socket_closed(self, binding: Binding) -> bool:
        """The phone's TCP/TLS connection dropped (``tcp-unreg-on-socket-close``): its row goes
        (by call-id + source address, any hostname), the core row (own hostname) too."""
        if binding.transport == "udp" or self._profile(binding.profile) is None:
            return False
        switch = self.switch
        switch.store.socket_closed(binding.call_id, binding.network_ip, str(binding.network_port),
                                   binding.user, binding.domain, switch.settings.switchname,
                                   switch.settings.core_multiple_registrations)
        switch.fire_custom("sofia::unregister", socket_closed_headers(binding),
                           ("sofia.c", "our_sofia_event_callback", 1868))
        return True

    def fail(self, binding: Binding) -> bool:
        """A REGISTER answered 403 (wrong password): attempt (FORBIDDEN) + register_failure."""
        if self._profile(binding.profile) is None:
            return False
        self.switch.fire_custom("sofia::register_attempt", attempt_headers(binding, "FORBIDDEN"),
                                (CALLING,) + REGISTER_ATTEMPT_AT)
        self.switch.fire_custom("sofia::register_failure", failure_headers(binding),
                                (CALLING,) + FAILURE_AT)
        return True

    def check_expire(self, now: Optional[int] = None, flush: bool = False,
                     call_id: Optional[str] = None) -> List[dict]:
        """One ``sofia_reg_check_expire`` pass (or a flush: every row with ``expires > 0``).

        Fires ``sofia::expire`` for the selected rows of **every** hostname, deletes only
        this switch's own; returns the rows it fired for."""
        switch = self.switch
        when = None if flush else int(switch.clock() if now is None else now)
        rows = switch.store.expiring(when)
        if call_id is not None:
            rows = [row for row in rows if row["call_id"] == call_id]
        for row in rows:
            switch.fire_custom("sofia::expire", expire_headers(row), (CALLING,) + EXPIRE_AT)
        switch.store.delete_expired(switch.settings.switchname, when, call_id)
        return rows


def bindings_for(users: Iterable[str], domain: str, profile: str, prefix: str = "fsemu",
                 expires: int = 3600, first_port: int = 20000) -> List[Binding]:
    """N distinct phones (one call-id and source port each) for storms."""
    return [Binding(user, domain, profile, f"{prefix}-{user}-{index}@{domain}",
                    network_port=first_port + index % 40000, expires=expires)
            for index, user in enumerate(users)]
