"""mod_xml_curl's side of the wire: the form FreeSWITCH POSTs, built from a REQUEST_PARAMS event.

mod_xml_curl.c ``xml_url_fetch``: ``hostname=<switchname>&section=…&tag_name=…&key_name=…&
key_value=…`` (these raw), then ``switch_event_build_param_string`` of the request event:
every header as ``name=<switch_url_encode(value)>`` joined by ``&`` — so the core block
(``Event-Name=REQUEST_PARAMS``, ``Core-UUID``, …, ``Event-Sequence``) comes first, then the
caller's parameters. ``Event-Date-GMT`` keeps its comma (``,`` is not in SWITCH_URL_UNSAFE).
Content-Type ``application/x-www-form-urlencoded``, User-Agent ``freeswitch-xml/1.0``.
Only HTTP 200 with parseable XML is used; anything else falls back (to static XML).
Shapes: the captures in ``fixtures/freeswitch-1.10.12/xml_curl/*.http``.
"""
import logging
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Tuple

from lxml import etree

from esl_apps.protocol import url_encode
from fsemu.channels import Channel, basic_headers, profile_headers, variable_headers
from fsemu.event import EventFactory, Header
from fsemu.settings import ProfileSettings

log = logging.getLogger("fsemu.xml_curl")
USER_AGENT = "freeswitch-xml/1.0"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def form_body(switchname: str, section: str, tag_name: str, key_name: str, key_value: str,
              events: EventFactory, params: List[Header], calling: Tuple[str, str, int]) -> str:
    event = events.make("REQUEST_PARAMS", params, calling)
    head = (f"hostname={switchname}&section={section}&tag_name={tag_name}"
            f"&key_name={key_name}&key_value={key_value}")
    return head + "".join(f"&{name}={url_encode(value)}" for name, value in event.headers)


def post(url: str, body: str, timeout: float) -> Tuple[int, str]:
    """POST the form; returns (status, text). Network errors are status 0 (never raised)."""
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "User-Agent": USER_AGENT, "Accept": "*/*",
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        log.warning("xml_curl fetch failed", extra={"url": url, "error": str(exc)})
        return 0, ""


class XmlCurlClient:
    """Builds (and sends) each request kind FreeSWITCH makes, for one switch identity."""

    def __init__(self, url: str, switchname: str, events: EventFactory, timeout: float = 5.0):
        self.url, self.switchname, self.events, self.timeout = url, switchname, events, timeout

    def _send(self, section, tag_name, key_name, key_value, params, calling) -> Tuple[int, str]:
        body = form_body(self.switchname, section, tag_name, key_name, key_value, self.events,
                         params, calling)
        return post(self.url, body, self.timeout)

    def sofia_conf(self, profile: Optional[str] = None, reconfig: bool = False):
        """sofia.c ``config_sofia``: ``profile`` and ``reconfig=true`` on a profile (re)start."""
        params = [("profile", profile)] if profile else []
        if reconfig:
            params.append(("reconfig", "true"))
        return self._send("configuration", "configuration", "name", "sofia.conf", params,
                          ("sofia.c", "config_sofia", 4495))

    def gateways(self, profile: str):
        """sofia.c ``launch_sofia_worker_thread``: the directory with ``purpose=gateways``."""
        return self._send("directory", "", "", "", [("purpose", "gateways"),
                                                    ("profile", profile)],
                          ("sofia.c", "launch_sofia_worker_thread", 3073))

    def directory_sip_auth(self, user: str, domain: str, profile: str = "vip1",
                           method: str = "REGISTER", call_id: str = "1-1@127.0.0.1",
                           ip: str = "127.0.0.1", port: int = 5070, to_user: Optional[str] = None,
                           user_agent: str = "unknown", server: str = "127.0.0.1:5090"):
        """sofia_reg.c ``sofia_reg_parse_auth`` for a REGISTER or INVITE digest."""
        to_user = to_user or user
        server_host, _, server_port = server.partition(":")
        params = [("action", "sip_auth"), ("sip_profile", profile),
                  ("sip_user_agent", user_agent), ("sip_auth_username", user),
                  ("sip_auth_realm", domain), ("sip_auth_nonce", "00000000-0000-4000-8000-000000000000"),
                  ("sip_auth_uri", f"sip:{server}" if method == "REGISTER" else f"sip:{to_user}@{server}"),
                  ("sip_contact_user", user), ("sip_contact_host", ip),
                  ("sip_to_user", to_user), ("sip_to_host", domain), ("sip_via_protocol", "udp"),
                  ("sip_from_user", user), ("sip_from_host", domain), ("sip_call_id", call_id)]
        if method == "INVITE":
            params += [("sip_request_user", to_user), ("sip_request_host", server_host),
                       ("sip_request_port", server_port)]
        else:
            params.append(("sip_request_host", domain))
        params += [("sip_auth_qop", "auth"), ("sip_auth_cnonce", "6b8b4567"),
                   ("sip_auth_nc", "00000001"), ("sip_auth_response", "0" * 32),
                   ("sip_auth_method", method), ("client_port", str(port)), ("key", "id"),
                   ("user", user), ("domain", domain), ("ip", ip)]
        return self._send("directory", "domain", "name", domain, params,
                          ("sofia_reg.c", "sofia_reg_parse_auth", 3124))

    def user_call(self, user: str, domain: str):
        """mod_dptools.c ``user_outgoing_channel`` (``bridge user/1001@demo.local``)."""
        return self._send("directory", "domain", "name", domain,
                          [("as_channel", "true"), ("action", "user_call"), ("key", "id"),
                           ("user", user), ("domain", domain)],
                          ("mod_dptools.c", "user_outgoing_channel", 4366))

    def dialplan(self, caller: str, destination: str, context: str, profile: str = "vip1",
                 call_uuid: Optional[str] = None):
        """mod_dialplan_xml.c ``dialplan_xml_locate``: the channel's data (basic, Caller-*,
        variable_*, Hunt-*), as in the ``dialplan.http`` capture."""
        ch = Channel(call_uuid or "00000000-0000-4000-8000-000000000001", "inbound", profile,
                     context, caller, destination, state="CS_ROUTING")
        params = basic_headers(ch) + profile_headers(ch) + variable_headers(ch) + \
            profile_headers(ch, "Hunt")
        return self._send("dialplan", "", "", "", params,
                          ("mod_dialplan_xml.c", "dialplan_xml_locate", 610))


def profiles_from_sofia_conf(text: str) -> Optional[Dict[str, ProfileSettings]]:
    """The profiles of a sofia.conf document, or None when it is not one FreeSWITCH would use
    (not XML, a "not found" result, no sofia.conf): then it falls back to static XML. A
    profile whose ``sip-port`` is not a number is left out (sofia would fail to start it)."""
    try:
        root = etree.fromstring(text.encode(), _PARSER)
    except etree.XMLSyntaxError:
        return None
    if root.find(".//result[@status='not found']") is not None:
        return None
    config = root.find(".//configuration[@name='sofia.conf']")
    if config is None:
        return None
    profiles = {}
    for node in config.iterfind("./profiles/profile"):
        name = node.get("name", "")
        params = {p.get("name"): p.get("value", "") for p in node.iter("param")}
        port = params.get("sip-port", "5060") or "5060"
        if not name or not port.isdigit():
            continue
        profiles[name] = ProfileSettings(
            name, sip_ip=params.get("sip-ip", "127.0.0.1"), sip_port=int(port),
            track_calls=params.get("track-calls", "false").lower() == "true",
            multiple_registrations=params.get("multiple-registrations", "contact").lower())
    return profiles


class SofiaFetcher:
    """What a starting profile fetches, wired into :class:`fsemu.sofia.Sofia`."""

    def __init__(self, url: str, switch, timeout: float):
        self.url, self.switch, self.timeout = url, switch, timeout

    def _client(self) -> XmlCurlClient:
        return XmlCurlClient(self.url, self.switch.settings.switchname, self.switch.events,
                             self.timeout)

    def _fetch(self, name: Optional[str], reconfig: bool):
        status, text = self._client().sofia_conf(name, reconfig)
        return profiles_from_sofia_conf(text) if status == 200 else None

    def profile_settings(self, name: str, reconfig: bool):
        """``config_sofia`` for one profile: (answered?, its settings or None)."""
        profiles = self._fetch(name, reconfig)
        return (False, None) if profiles is None else (True, profiles.get(name))

    def all_profiles(self):
        """``config_sofia`` at boot (no ``profile`` parameter): every profile, or None."""
        return self._fetch(None, False)

    def gateways(self, name: str) -> None:
        self._client().gateways(name)
