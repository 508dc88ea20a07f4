"""Channels and calls: core ``channels``/``calls`` rows, ``CHANNEL_*`` events, call recovery.

What FreeSWITCH does, and where:
- switch_core_sqldb.c ``core_event_handler``: ``CHANNEL_CREATE`` inserts into ``channels``
  (own hostname), ``CHANNEL_ANSWER`` sets ``callstate`` ACTIVE, ``CHANNEL_BRIDGE`` inserts
  into ``calls`` and sets ``call_uuid``, ``CHANNEL_DESTROY`` deletes the channel and its calls.
- Channel event headers (switch_channel.c ``switch_channel_event_set_basic_data`` then the
  caller profile, ``switch_caller_profile_event_set_data`` with prefix ``Caller``, then
  ``variable_*``): the order is taken from the real ``dialplan.http`` capture.
- ``track-calls``: answered sofia channels are written to ``recovery`` (switch_core_sqldb.c
  ``switch_core_recovery_track``: ``runtime_uuid`` = Core-UUID, ``hostname`` = switchname);
  ``recover`` re-creates the channels of rows whose ``runtime_uuid`` is not ours and re-owns
  the rows. The former owner's ``channels``/``calls`` rows stay behind (FreeSWITCH only clears
  its own hostname's rows, at its own start). ``metadata`` here is JSON of what the emulator
  needs to re-create the leg; FreeSWITCH stores the channel's XML there.
"""
import dataclasses
import json
import time
import uuid as uuidlib
from typing import Dict, List, Optional, Tuple

from fsemu.event import Header

STATE_NUMBERS = {"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_EXECUTE": 4,
                 "CS_EXCHANGE_MEDIA": 5, "CS_HANGUP": 10, "CS_REPORTING": 11,
                 "CS_DESTROY": 12}


@dataclasses.dataclass
class Channel:
    uuid: str
    direction: str            # inbound | outbound
    profile: str
    domain: str
    cid_num: str
    dest: str
    network_addr: str = "127.0.0.1"
    created: float = 0.0
    answered: float = 0.0
    bridged: float = 0.0
    call_uuid: str = ""
    other: Optional["Channel"] = None
    state: str = "CS_INIT"
    callstate: str = "RINGING"

    @property
    def name(self) -> str:
        user = self.cid_num if self.direction == "inbound" else self.dest
        return f"sofia/{self.profile}/{user}@{self.domain}"

    def metadata(self) -> str:
        keys = ("direction", "profile", "domain", "cid_num", "dest", "network_addr",
                "created", "answered", "call_uuid")
        return json.dumps({key: getattr(self, key) for key in keys}, sort_keys=True)


def _micros(epoch: float) -> str:
    return str(int(epoch * 1_000_000))


def basic_headers(ch: Channel) -> List[Header]:
    """``switch_channel_event_set_basic_data``."""
    return [
        ("Channel-State", ch.state), ("Channel-Call-State", ch.callstate),
        ("Channel-State-Number", str(STATE_NUMBERS.get(ch.state, 0))),
        ("Channel-Name", ch.name), ("Unique-ID", ch.uuid), ("Call-Direction", ch.direction),
        ("Presence-Call-Direction", ch.direction),
        ("Channel-HIT-Dialplan", "true" if ch.direction == "inbound" else "false"),
        ("Channel-Call-UUID", ch.call_uuid or ch.uuid),
        ("Answer-State", "answered" if ch.answered else "ringing"),
        ("Channel-Read-Codec-Name", "PCMU"), ("Channel-Read-Codec-Rate", "8000"),
        ("Channel-Read-Codec-Bit-Rate", "64000"), ("Channel-Write-Codec-Name", "PCMU"),
        ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "64000")]


def profile_headers(ch: Channel, prefix: str = "Caller") -> List[Header]:
    """``switch_caller_profile_event_set_data`` with ``prefix`` (Caller, Hunt, Other-Leg)."""
    items = [
        ("Direction", ch.direction), ("Logical-Direction", ch.direction),
        ("Username", ch.cid_num), ("Dialplan", "XML"), ("Caller-ID-Name", ch.cid_num),
        ("Caller-ID-Number", ch.cid_num), ("Orig-Caller-ID-Name", ch.cid_num),
        ("Orig-Caller-ID-Number", ch.cid_num), ("Network-Addr", ch.network_addr),
        ("ANI", ch.cid_num), ("Destination-Number", ch.dest), ("Unique-ID", ch.uuid),
        ("Source", "mod_sofia"), ("Context", ch.domain), ("Channel-Name", ch.name),
        ("Profile-Index", "1"), ("Profile-Created-Time", _micros(ch.created)),
        ("Channel-Created-Time", _micros(ch.created)),
        ("Channel-Answered-Time", _micros(ch.answered)), ("Channel-Progress-Time", "0"),
        ("Channel-Progress-Media-Time", "0"), ("Channel-Hangup-Time", "0"),
        ("Channel-Transfer-Time", "0"), ("Channel-Resurrect-Time", "0"),
        ("Channel-Bridged-Time", _micros(ch.bridged)), ("Channel-Last-Hold", "0"),
        ("Channel-Hold-Accum", "0"), ("Screen-Bit", "true"), ("Privacy-Hide-Name", "false"),
        ("Privacy-Hide-Number", "false")]
    return [(f"{prefix}-{name}", value) for name, value in items]


def variable_headers(ch: Channel) -> List[Header]:
    """The ``variable_*`` the cluster reads (a real channel carries many more)."""
    return [("variable_direction", ch.direction), ("variable_uuid", ch.uuid),
            ("variable_sip_from_user", ch.cid_num), ("variable_sip_from_host", ch.domain),
            ("variable_channel_name", ch.name), ("variable_sip_network_ip", ch.network_addr),
            ("variable_user_name", ch.cid_num), ("variable_domain_name", ch.domain),
            ("variable_user_context", ch.domain), ("variable_sofia_profile_name", ch.profile),
            ("variable_recovery_profile_name", ch.profile), ("variable_sip_to_user", ch.dest),
            ("variable_sip_to_host", ch.domain), ("variable_call_uuid", ch.call_uuid or ch.uuid)]


def channel_headers(ch: Channel) -> List[Header]:
    """A channel event's own headers: basic data, ``Caller-*``, ``variable_*``."""
    return basic_headers(ch) + profile_headers(ch) + variable_headers(ch)


def _other_leg(ch: Channel) -> List[Header]:
    """``Other-Leg-*`` (switch_caller_profile_event_set_data with prefix ``Other-Leg``)."""
    other = ch.other
    if other is None:
        return []
    return [("Other-Type", "originatee" if ch.direction == "inbound" else "originator"),
            ("Other-Leg-Direction", other.direction),
            ("Other-Leg-Caller-ID-Number", other.cid_num),
            ("Other-Leg-Destination-Number", other.dest),
            ("Other-Leg-Unique-ID", other.uuid), ("Other-Leg-Channel-Name", other.name)]


class Channels:
    """The live channels of one switch (memory, like sessions) mirrored into SQL."""

    def __init__(self, switch):
        self.switch = switch
        self.live: Dict[str, Channel] = {}
        switch.on_start.append(self.live.clear)

    def count_for_profile(self, profile: str) -> int:
        return sum(1 for ch in self.live.values() if ch.profile == profile)

    # -- the call lifecycle the driver plays -----------------------------------------------

    def originate(self, caller: str, callee: str, domain: str, profile: str,
                  network_addr: str = "127.0.0.1") -> Tuple[Channel, Channel]:
        """An inbound leg from ``caller`` and the outbound leg to ``callee`` (both ringing)."""
        now = self.switch.clock()
        a = Channel(str(uuidlib.uuid4()), "inbound", profile, domain, caller, callee,
                    network_addr, created=now)
        b = Channel(str(uuidlib.uuid4()), "outbound", profile, domain, caller, callee,
                    network_addr, created=now)
        a.call_uuid = b.call_uuid = a.uuid
        a.other, b.other = b, a
        for ch in (a, b):
            self._create(ch)
        return a, b

    def _create(self, ch: Channel) -> None:
        self.live[ch.uuid] = ch
        self.switch.session_count += 1
        self.switch.sessions_since_startup += 1
        name = self.switch.settings.switchname
        self.switch.store.add_channel({
            "uuid": ch.uuid, "direction": ch.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ch.created)),
            "created_epoch": int(ch.created), "name": ch.name, "state": ch.state,
            "cid_name": ch.cid_num, "cid_num": ch.cid_num, "ip_addr": ch.network_addr,
            "dest": ch.dest, "dialplan": "XML", "context": ch.domain, "hostname": name,
            "callstate": ch.callstate, "call_uuid": ch.call_uuid,
            "presence_id": f"{ch.cid_num}@{ch.domain}", "secure": "",
        })
        self._fire("CHANNEL_CREATE", ch, "switch_core_state_machine.c",
                   "switch_core_session_run", 0)

    def answer(self, a: Channel) -> None:
        now = self.switch.clock()
        for ch in (a, a.other):
            if ch is None or ch.answered:
                continue
            ch.answered, ch.state, ch.callstate = now, "CS_EXECUTE", "ACTIVE"
            self.switch.store.update_channel(ch.uuid, self.switch.settings.switchname,
                                             {"callstate": "ACTIVE", "state": "CS_EXECUTE"})
            self._fire("CHANNEL_ANSWER", ch, "switch_channel.c",
                       "switch_channel_perform_mark_answered", 3906)
            self._track(ch)

    def bridge(self, a: Channel) -> None:
        b = a.other
        now = self.switch.clock()
        a.bridged = b.bridged = now
        a.state = b.state = "CS_EXCHANGE_MEDIA"
        self.switch.store.add_call({
            "call_uuid": a.uuid, "call_created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "call_created_epoch": int(now), "caller_uuid": a.uuid, "callee_uuid": b.uuid,
            "hostname": self.switch.settings.switchname})
        self._fire("CHANNEL_BRIDGE", a, "switch_ivr_bridge.c", "audio_bridge_on_exchange_media",
                   0, [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]
                   + _other_leg(a))

    def hangup(self, ch: Channel, cause: str = "NORMAL_CLEARING") -> None:
        """Both legs: ``CHANNEL_HANGUP_COMPLETE`` (with the CDR variables), rows deleted."""
        for leg in (ch, ch.other):
            if leg is None or leg.uuid not in self.live:
                continue
            self._hangup_leg(leg, cause)

    def _hangup_leg(self, ch: Channel, cause: str) -> None:
        now = self.switch.clock()
        ch.state, ch.callstate = "CS_REPORTING", "HANGUP"
        start, answer = int(ch.created), int(ch.answered)
        extra = [("Hangup-Cause", cause), ("variable_hangup_cause", cause),
                 ("variable_start_epoch", str(start)), ("variable_answer_epoch", str(answer)),
                 ("variable_end_epoch", str(int(now))),
                 ("variable_duration", str(int(now) - start)),
                 ("variable_billsec", str(int(now) - answer if answer else 0))] + _other_leg(ch)
        self._fire("CHANNEL_HANGUP_COMPLETE", ch, "switch_core_state_machine.c",
                   "switch_core_session_reporting_state", 0, extra)
        del self.live[ch.uuid]
        self.switch.session_count -= 1
        name = self.switch.settings.switchname
        self.switch.store.delete_channel(ch.uuid, name)
        if self.switch.identity is not None:
            self.switch.store.untrack(ch.uuid, self.switch.identity.core_uuid)

    def hangup_profile(self, profile: str, cause: str = "MANAGER_REQUEST") -> int:
        legs = [ch for ch in self.live.values() if ch.profile == profile]
        for ch in legs:
            if ch.uuid in self.live:
                self._hangup_leg(ch, cause)
        return len(legs)

    def hangup_all(self, cause: str) -> None:
        for ch in list(self.live.values()):
            if ch.uuid in self.live:
                self._hangup_leg(ch, cause)

    # -- recovery --------------------------------------------------------------------------

    def _track(self, ch: Channel) -> None:
        profile = self.switch.sofia.profiles.get(ch.profile)
        if profile is None or not profile.settings.track_calls:
            return
        self.switch.store.track({
            "runtime_uuid": self.switch.identity.core_uuid, "technology": "sofia",
            "profile_name": ch.profile, "hostname": self.switch.settings.switchname,
            "uuid": ch.uuid, "metadata": ch.metadata()})

    def recover(self, profile: str) -> int:
        rows = self.switch.store.recoverable("sofia", profile, self.switch.identity.core_uuid)
        recovered = []
        for row in rows:
            if row["uuid"] in self.live:
                continue
            data = json.loads(row["metadata"] or "{}")
            ch = Channel(row["uuid"], data.get("direction", "inbound"), row["profile_name"],
                         data.get("domain", ""), data.get("cid_num", ""), data.get("dest", ""),
                         data.get("network_addr", "127.0.0.1"), created=self.switch.clock(),
                         answered=self.switch.clock(), call_uuid=data.get("call_uuid", ""),
                         state="CS_EXECUTE", callstate="ACTIVE")
            self._create(ch)
            recovered.append(ch)
        by_call: Dict[str, List[Channel]] = {}
        for ch in recovered:
            by_call.setdefault(ch.call_uuid, []).append(ch)
        for legs in by_call.values():
            if len(legs) == 2:
                legs[0].other, legs[1].other = legs[1], legs[0]
        self.switch.store.finish_recovery("sofia", profile, self.switch.identity.core_uuid,
                                          self.switch.settings.switchname,
                                          [ch.uuid for ch in recovered])
        return len(recovered)

    def flush_recovery(self, profile: str) -> None:
        self.switch.store.flush_recovery("sofia", profile)

    def _fire(self, name: str, ch: Channel, calling_file: str, function: str, line: int,
              extra: Optional[List[Header]] = None) -> None:
        headers = channel_headers(ch) + list(extra or [])
        event = self.switch.events.make(name, headers, (calling_file, function, line),
                                        now=self.switch.clock())
        self.switch.fire(event)
