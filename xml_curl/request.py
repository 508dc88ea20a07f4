"""Parse a mod_xml_curl form body into a typed, frozen :class:`XmlRequest` — no I/O.

mod_xml_curl POSTs ``hostname=…&section=…&tag_name=…&key_name=…&key_value=…`` followed by
every header of the request event, each value run through ``switch_url_encode`` — which
leaves some characters raw (``Event-Date-GMT=Tue,%2024…`` keeps its comma) and always encodes
``+``. So values are split on ``&`` and ``=`` first, then decoded with ``unquote`` (never
``unquote_plus``: a ``+`` in a caller id stays a ``+``). The first occurrence of a name wins,
so an event header cannot override the fields mod_xml_curl put in front. Nothing in a body,
however malformed, raises anything but :class:`RequestError` (for a body with no ``section``).

Values are decoded lazily (:class:`Form`): a request carries ~40 event headers, a lookup
reads ~15 of them, and ``unquote`` on every value was most of the warm path's own cost.
"""
import dataclasses
from typing import Dict, Iterator, Mapping
from urllib.parse import unquote

#: A body is bounded by the HTTP layer; this bounds the work on a hostile one inside it.
MAX_FIELDS = 4096

#: Lookup kinds the service answers; anything else gets "not found".
USER, MESSAGE_COUNT, GROUP_CALL, REVERSE_AUTH, GATEWAYS, DOMAIN = (
    "user", "message-count", "group_call", "reverse-auth-lookup", "gateways", "domain")
DIALPLAN, SOFIA = "dialplan", "sofia.conf"
UNSUPPORTED = "unsupported"


class RequestError(ValueError):
    """The body is not a mod_xml_curl request at all (no ``section``)."""


def _decode(text: str) -> str:
    return unquote(text, errors="replace") if "%" in text else text


class Form(Mapping):
    """The fields of a form body: names decoded, each value decoded when read."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Dict[str, str]):
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        return _decode(self._raw[name])

    def get(self, name: str, default=None):
        """Mapping.get without its KeyError round: most names a lookup tries are absent."""
        raw = self._raw.get(name)
        return default if raw is None else _decode(raw)

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def parse_form(body: bytes) -> Form:
    """Decode an urlencoded body; first occurrence of a name wins; never raises."""
    raw: Dict[str, str] = {}
    for name, _sep, value in [pair.partition("=") for pair in
                              body.decode("utf-8", "replace").split("&", MAX_FIELDS)[:MAX_FIELDS]]:
        if "%" in name:
            name = unquote(name, errors="replace")
        name = name.strip()
        if name and name not in raw:
            raw[name] = value
    return Form(raw)


def _first(fields: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = fields.get(name, "").strip()
        if value:
            return value
    return ""


@dataclasses.dataclass(frozen=True)
class XmlRequest:
    """What FreeSWITCH asked for, with the fields every lookup needs already resolved."""

    section: str
    hostname: str
    tag_name: str = ""
    key_name: str = ""
    key_value: str = ""
    purpose: str = ""
    action: str = ""
    user: str = ""
    domain: str = ""
    context: str = ""
    destination: str = ""
    profile: str = ""
    calling_function: str = ""
    sip_auth_method: str = ""
    params: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False,
                                                  compare=False)

    @property
    def kind(self) -> str:
        """Which lookup this is (one of the module constants), decided as FusionPBX's
        xml_handler does: purpose, then action, then the calling function, then the user."""
        if self.section == "directory":
            if self.purpose == "gateways":
                return GATEWAYS
            if self.action in (MESSAGE_COUNT, GROUP_CALL, REVERSE_AUTH):
                return self.action
            if self.calling_function == "switch_xml_locate_domain":
                return DOMAIN
            if self.user and self.domain:
                return USER
            return UNSUPPORTED
        if self.section == "dialplan":
            return DIALPLAN if self.context else UNSUPPORTED
        if self.section == "configuration" and self.key_value == SOFIA:
            return SOFIA
        return UNSUPPORTED


def parse(body: bytes, default_hostname: str = "") -> XmlRequest:
    """The typed request in ``body``; ``default_hostname`` when FreeSWITCH sent none."""
    fields = parse_form(body)
    section = fields.get("section", "").strip()
    if not section:
        raise RequestError("not a mod_xml_curl request: no 'section' field")
    domain = _first(fields, "domain", "domain_name", "variable_domain_name",
                    "variable_sip_from_host")
    if not domain and fields.get("tag_name") == "domain":
        domain = fields.get("key_value", "").strip()
    return XmlRequest(
        section=section,
        hostname=_first(fields, "hostname") or default_hostname,
        tag_name=fields.get("tag_name", ""),
        key_name=fields.get("key_name", ""),
        key_value=fields.get("key_value", ""),
        purpose=_first(fields, "purpose"),
        action=_first(fields, "action"),
        user=_first(fields, "user"),
        domain=domain,
        context=_first(fields, "Caller-Context", "Hunt-Context"),
        destination=_first(fields, "Caller-Destination-Number", "Hunt-Destination-Number"),
        profile=_first(fields, "profile", "sip_profile"),
        calling_function=_first(fields, "Event-Calling-Function"),
        sip_auth_method=_first(fields, "sip_auth_method").upper(),
        params=fields,
    )

