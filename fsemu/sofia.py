"""mod_sofia's profiles and its ``sofia …`` / ``sofia_contact`` API, as mod_sofia.c answers them.

Profile lifecycle (sofia.c ``sofia_profile_thread_run``, mod_sofia.c ``cmd_profile``):
``start`` parses sofia.conf *synchronously* (through xml_curl when bound: ``config_sofia``),
answers at once, and the profile comes up asynchronously — announced by ``CUSTOM
sofia::profile_start``; the starting thread fetches the directory with ``purpose=gateways``
(``launch_sofia_worker_thread``). ``stop``/``restart`` are refused until the profile has been up
``min_restart_uptime`` seconds; stopping hangs up the profile's calls on this node
(``switch_core_session_hupall_matching_var("sofia_profile_name", …)``) and unregisters its
gateways; ``restart`` then re-reads sofia.conf and starts again. Registration rows are *not*
touched by a stop.
"""
import dataclasses
import time
from typing import Callable, Dict, List, Optional, Tuple

from fsemu.settings import ProfileSettings
from fsemu.sofia_reg import Registrar


USAGE = "-ERR Usage: sofia status|xmlstatus|profile <name> start|stop|restart|rescan|recover\n"


@dataclasses.dataclass
class Profile:
    settings: ProfileSettings
    state: str = "STARTING"          # STARTING → RUNNING → STOPPING → (gone)
    started: float = 0.0
    respawn: bool = False

    @property
    def name(self) -> str:
        return self.settings.name


#: ``(profile_name, reconfig) -> (answered, ProfileSettings or None)``: sofia.conf through
#: xml_curl; ``answered`` False means no usable document (FreeSWITCH then reads static XML)
ConfigFetcher = Callable[[str, bool], Tuple[bool, Optional[ProfileSettings]]]


class Sofia:
    """The profiles of one switch and their commands."""

    def __init__(self, switch):
        self.switch = switch
        self.profiles: Dict[str, Profile] = {}
        #: the profiles the last boot started (what "up" means for a fresh switch)
        self.booted: List[str] = []
        self.registrar = Registrar(switch)
        #: xml_curl hooks (set when a binding is configured, see fsemu.runtime)
        self.fetch_config: Optional[ConfigFetcher] = None
        self.fetch_all: Optional[Callable[[], Optional[Dict[str, ProfileSettings]]]] = None
        self.fetch_gateways: Optional[Callable[[str], None]] = None
        #: called with (profile name) when a stop hangs up the profile's calls
        self.on_profile_stop: List[Callable[[str], None]] = []
        switch.commands["sofia"] = self.api
        switch.commands["sofia_contact"] = self.contact_api
        switch.on_start.append(self._boot)
        self._sweeper = None

    # -- lifecycle -------------------------------------------------------------------------

    def _boot(self) -> None:
        """mod_sofia load: ``config_sofia`` reads sofia.conf (xml_curl first, static XML when
        it gives no usable answer) and starts every profile in it."""
        self.profiles.clear()
        fetched = self.fetch_all() if self.fetch_all is not None else None
        configured = list(fetched.values()) if fetched is not None \
            else list(self.switch.settings.profiles)
        names = self.switch.settings.autostart_profiles
        self.booted = [p.name for p in configured if names is None or p.name in names]
        for settings in configured:
            if settings.name in self.booted:
                self._launch(settings)
        self._schedule_sweep()

    def stop_all(self) -> None:
        """The switch is going down: no more sweeps, no profile left."""
        if self._sweeper is not None:
            self._sweeper.kill(block=False)
            self._sweeper = None
        self.profiles.clear()

    def loaded_profile(self, name: str) -> Optional[Profile]:
        """What ``sofia_glue_find_profile`` sees: a starting profile is not in the hash yet."""
        profile = self.profiles.get(name)
        return profile if profile is not None and profile.state != "STARTING" else None

    def running_profile(self, name: str) -> Optional[Profile]:
        profile = self.profiles.get(name)
        return profile if profile is not None and profile.state == "RUNNING" else None

    def _config_for(self, name: str, reconfig: bool) -> Optional[ProfileSettings]:
        """``config_sofia``: the xml_curl answer when bound and usable, else the static file."""
        if self.fetch_config is not None:
            answered, fetched = self.fetch_config(name, reconfig)
            if answered:
                return fetched
        return self.switch.settings.profile(name)

    def _launch(self, settings: ProfileSettings) -> Profile:
        profile = Profile(settings)
        self.profiles[settings.name] = profile
        self.switch.scheduler.spawn_later(self.switch.settings.profile_start_delay,
                                          self._up, profile)
        return profile

    def _up(self, profile: Profile) -> None:
        if self.profiles.get(profile.name) is not profile or profile.state != "STARTING":
            return
        if self.fetch_gateways is not None:
            self.fetch_gateways(profile.name)
        profile.state = "RUNNING"
        profile.started = self.switch.clock()
        self.switch.fire_custom("sofia::profile_start", [
            ("module_name", "mod_sofia"), ("profile_name", profile.name),
            ("profile_uri", profile.settings.url)], ("sofia.c", "sofia_profile_thread_run", 3335))

    def _down(self, profile: Profile) -> None:
        """The profile thread's exit path: hang up its calls, drop it, respawn if asked."""
        for hook in self.on_profile_stop:
            hook(profile.name)
        if self.profiles.get(profile.name) is profile:
            del self.profiles[profile.name]
        if profile.respawn:
            settings = self._config_for(profile.name, True)
            if settings is not None:
                self._launch(settings)

    def _schedule_sweep(self) -> None:
        interval = self.switch.settings.reg_sweep_interval
        if interval > 0:
            self._sweeper = self.switch.scheduler.spawn_later(interval, self._sweep)

    def _sweep(self) -> None:
        """The worker thread's periodic ``sofia_reg_check_expire``, once per running profile."""
        for _ in [p for p in self.profiles.values() if p.state == "RUNNING"]:
            self.registrar.check_expire()
        self._schedule_sweep()

    # -- API -------------------------------------------------------------------------------

    def api(self, arg: Optional[str]) -> str:
        argv = (arg or "").split()
        if not argv:
            return USAGE
        command = argv[0].lower()
        if command == "status":
            if len(argv) >= 3 and argv[1].lower() == "profile":
                return self._profile_status(argv[2], len(argv) > 3 and argv[3].lower() == "reg")
            return self._status()
        if command == "profile" and len(argv) >= 3:
            return self._profile_command(argv[1], argv[2].lower(), argv[3:])
        if command == "profile":
            return "Invalid Args!\n"
        if command == "recover":
            return self.recover(None, flush=len(argv) > 1 and argv[1].lower() == "flush")
        return USAGE

    def _status(self) -> str:
        """mod_sofia.c ``cmd_status``: fixed-width table, then ``N profile(s) M alias(es)``."""
        line = "=" * 94
        out = [f"{'Name':>25}\t{'   Type':<}\t  {'Data':>40}\t{'State'}", line]
        loaded = [p for p in self.profiles.values() if p.state != "STARTING"]
        for profile in sorted(loaded, key=lambda p: p.name):
            state = "RUNNING" if profile.state == "RUNNING" else "DOWN"
            inuse = self.switch.channels.count_for_profile(profile.name)
            out.append(f"{profile.name:>25}\t{'profile':<}\t  {profile.settings.url:>40}\t"
                       f"{state} ({inuse})")
        count = len(loaded)
        out += [line, f"{count} profile{'' if count == 1 else 's'} 0 aliases", ""]
        return "\n".join(out)

    def _profile_status(self, name: str, with_reg: bool) -> str:
        """``sofia status profile X [reg]``: registrations of that profile from
        ``sip_registrations`` (no hostname filter: other nodes' rows show as ``Host: …``)."""
        profile = self.loaded_profile(name)
        if profile is None:
            return "Invalid Profile!\n"
        line = "=" * 94
        rows = self.switch.store.sip_registrations(profile=name)
        out = [line, f"Name             \t{name}", "Domain Name      \tN/A",
               "Auto-NAT         \tfalse", f"URL              \t{profile.settings.url}",
               "CALLS-IN         \t0", "FAILED-CALLS-IN  \t0", "CALLS-OUT        \t0",
               "FAILED-CALLS-OUT \t0", f"REGISTRATIONS    \t{len(rows)}", line]
        if with_reg:
            now = int(self.switch.clock())
            out = out[:-1] + ["", "Registrations:", line]
            for row in rows:
                expires = int(row["expires"] or 0)
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires))
                out += [f"Call-ID:    \t{row['call_id']}",
                        f"User:       \t{row['sip_user']}@{row['sip_host']}",
                        f"Contact:    \t{row['contact']}", f"Agent:      \t{row['user_agent']}",
                        f"Status:     \t{row['status']}({row['rpid']}) EXP({when}) "
                        f"EXPSECS({expires - now})",
                        f"Ping-Status:\t{row['ping_status']}", "Ping-Time:\t0.00",
                        f"Host:       \t{row['hostname']}",
                        f"IP:         \t{row['network_ip']}", f"Port:       \t{row['network_port']}",
                        f"Auth-User:  \t{row['sip_username']}",
                        f"Auth-Realm: \t{row['sip_realm']}",
                        f"MWI-Account:\t{row['mwi_user']}@{row['mwi_host']}", ""]
            out += [f"Total items returned: {len(rows)}", line]
        return "\n".join(out) + "\n"

    def _profile_command(self, name: str, action: str, rest: List[str]) -> str:
        if action == "start":
            return "Reload XML [Success]\n" + self.start(name)
        if action == "rescan":
            if self.loaded_profile(name) is None:
                return f"Invalid Profile [{name}]"
            return "Reload XML [Success]\n+OK scan complete\n"
        profile = self.loaded_profile(name)
        if profile is None:
            return f"Invalid Profile [{name}]"
        if action in ("stop", "restart"):
            return self.stop(profile, respawn=action == "restart")
        if action == "recover":
            return self.recover(name, flush=bool(rest) and rest[0].lower() == "flush")
        if action == "flush_inbound_reg":
            call_id = rest[0] if rest and rest[0] != "reboot" else None
            self.registrar.check_expire(flush=True, call_id=call_id)
            return "+OK\n"
        return "-ERR Unknown command!\n"

    def start(self, name: str) -> str:
        """``cmd_profile start``: already running → rescan (success); else launch."""
        if name in self.profiles:
            return f"{name} started successfully\n"
        settings = self._config_for(name, True)
        if settings is None:
            return f"Failure starting {name}\n"
        self._launch(settings)
        return f"{name} started successfully\n"

    def stop(self, profile: Profile, respawn: bool) -> str:
        rsec = self.switch.settings.min_restart_uptime
        diff = self.switch.clock() - profile.started if profile.state == "RUNNING" else 0
        if profile.state != "RUNNING" or diff < rsec:
            remain = max(1, int(rsec - int(diff)))
            return (f"Profile {profile.name} must be up for at least {int(rsec)} seconds to "
                    f"stop/restart.\nPlease wait {remain} second{'' if remain == 1 else 's'}\n")
        profile.state = "STOPPING"
        profile.respawn = respawn
        self.switch.scheduler.spawn_later(0, self._down, profile)
        return f"{'restarting' if respawn else 'stopping'}: {profile.name}"

    def recover(self, name: Optional[str], flush: bool = False) -> str:
        """``sofia [profile X] recover [flush]`` (sofia_glue.c ``sofia_glue_profile_recover``;
        bare: ``sofia_glue_recover`` = the same for *every profile this node runs*).
        switch_core_sqldb.c ``switch_core_recovery_recover`` selects technology, profile and
        ``runtime_uuid != own`` — never the hostname — so a bare recover also takes the live
        calls of another active node that runs a profile of the same name."""
        names = [name] if name else sorted(p.name for p in self.profiles.values()
                                           if p.state != "STARTING")
        channels = self.switch.channels
        if flush:
            for profile in names:
                channels.flush_recovery(profile)
            return "Flushing recovery database.\n"
        count = sum(channels.recover(profile) for profile in names)
        self.switch.fire_custom("sofia::recovery_recovered", [
            ("profile_name", name or "all"), ("recovered_calls", str(count))],
            ("mod_sofia.c", "cmd_profile" if name else "sofia_function", 4200))
        if count:
            return f"Recovered {count} session(s)\n"
        return "No sessions to recover.\n"

    def contact_api(self, arg: Optional[str]) -> str:
        """``sofia_contact [profile/]user@domain``: every matching ``sip_registrations`` row,
        whatever node wrote it (``sofia_reg_find_reg_url_multi``); ``error/user_not_registered``
        when none."""
        target = (arg or "").strip()
        profile_name = None
        if "/" in target:
            profile_name, _, target = target.partition("/")
            if profile_name == "*":
                profile_name = None
        user, _, domain = target.partition("@")
        rows = self.switch.store.find_contacts(user, domain or None)
        urls = []
        for row in rows:
            name = profile_name or row["profile_name"]
            uri = row["contact"].split("<", 1)[-1].rstrip(">")
            urls.append(f"sofia/{name}/{uri}")
        return ",".join(urls) if urls else "error/user_not_registered"
