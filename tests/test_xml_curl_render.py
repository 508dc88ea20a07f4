"""The pure renderers: FusionPBX's shapes, FreeSWITCH's not-found document, and hostile
values that must come back out of the parsed XML exactly (minus what XML cannot carry)."""
from hypothesis import given, settings, strategies as st
from lxml import etree

from xml_curl import dialplan, directory, sofia, xmldoc
from xml_curl.directory import UserRecord

EXT = {"extension_uuid": "e-1", "extension": "1000", "number_alias": "2000",
       "password": "s3cret", "user_context": "demo.local", "call_timeout": "30",
       "toll_allow": "domestic", "effective_caller_id_name": "Alice",
       "effective_caller_id_number": "1000", "outbound_caller_id_number": "+15550100",
       "max_registrations": "3", "limit_max": None, "call_group": "sales,support",
       "dial_string": None, "do_not_disturb": "false", "cidr": "",
       "sip_bypass_media": "bypass-media", "directory_first_name": "Alice",
       "directory_last_name": "Smith"}
VM = {"voicemail_id": "2000", "voicemail_password": "1234", "voicemail_mail_to": "a@x",
      "voicemail_file": "attach", "voicemail_local_after_email": "true",
      "voicemail_enabled": "true"}


def record(ext=None, vm=VM, settings=(("param", "sip-forbid-register", "false"),
                                      ("variable", "record_stereo", "true"))):
    return UserRecord("d-1", "demo.local", dict(EXT, **(ext or {})), vm, settings)


def tree(body: bytes):
    return etree.fromstring(body)


def params(node, tag="param"):
    return {p.get("name"): p.get("value") for p in node.iter(tag)}


def test_not_found_is_freeswitchs_document():
    root = tree(xmldoc.NOT_FOUND)
    assert root.tag == "document" and root.get("type") == "freeswitch/xml"
    assert root.find("section").get("name") == "result"
    assert root.find("section/result").get("status") == "not found"


def test_user_has_fusionpbx_params_and_variables():
    root = tree(directory.render_user(record()))
    domain = root.find("section/domain")
    assert (domain.get("name"), domain.get("alias")) == ("demo.local", "true")
    user = domain.find("groups/group[@name='default']/users/user")
    assert (user.get("id"), user.get("number-alias")) == ("1000", "2000")
    p = params(user.find("params"))
    assert p["password"] == "s3cret" and p["vm-password"] == "1234"
    assert p["vm-enabled"] == "true" and p["max-registrations-per-extension"] == "3"
    assert p["dial-string"] == ("{sip_invite_domain=demo.local,presence_id=1000@demo.local}"
                                "${sofia_contact(*/1000@demo.local)}")
    assert p["sip-forbid-register"] == "false"
    v = params(user.find("variables"), "variable")
    assert v["user_context"] == "demo.local" and v["toll_allow"] == "domestic"
    assert v["effective_caller_id_name"] == "Alice"
    assert v["outbound_caller_id_number"] == "+15550100"
    assert v["call_timeout"] == "30" and v["call_group"] == "sales,support"
    assert v["caller_id_number"] == "2000" and v["limit_max"] == "5"
    assert v["directory_full_name"] == "Alice Smith" and v["bypass_media"] == "true"
    assert v["record_stereo"] == "true" and "sip-forbid-register" not in v


def test_dnd_and_own_dial_string():
    assert directory.dial_string(record({"do_not_disturb": "true"})) == "!USER_BUSY"
    assert directory.dial_string(record({"dial_string": "sofia/vip1/x"})) == "sofia/vip1/x"


def test_user_without_voicemail_row():
    p = params(tree(directory.render_user(record(vm=None))))
    assert p["vm-enabled"] == "true" and "vm-password" not in p


def test_message_count_and_reverse_auth_shapes():
    mc = params(tree(directory.render_message_count(record())))
    assert mc == {"vm-enabled": "true"}
    ra = params(tree(directory.render_reverse_auth(record())))
    assert ra == {"reverse-auth-user": "1000", "reverse-auth-pass": "s3cret"}


def test_group_call_lists_pointers_per_group():
    groups = directory.call_groups([("1001", "sales"), ("1000", "sales, support"),
                                    ("1002", "")])
    assert groups == {"sales": ("1000", "1001"), "support": ("1000",)}
    root = tree(directory.render_group_call("demo.local", groups))
    sales = root.find("section/domain/groups/group[@name='sales']")
    assert [(u.get("id"), u.get("type")) for u in sales.iter("user")] == [
        ("1000", "pointer"), ("1001", "pointer")]


def test_domains():
    root = tree(directory.render_domains(["a.example", "b.example"]))
    assert [d.get("name") for d in root.iter("domain")] == ["a.example", "b.example"]


def test_dialplan_concatenates_and_skips_a_broken_fragment():
    rows = [("u1", '<extension name="a"><condition field="x" expression="^1$"/></extension>'),
            ("u2", "<extension name='broken'><condition>"),
            ("u3", None),
            ("u4", '<extension name="b"/><extension name="c"/>')]
    root = tree(dialplan.render_dialplan("demo.local", rows))
    context = root.find("section[@name='dialplan']/context")
    assert context.get("name") == "demo.local"
    assert [e.get("name") for e in context] == ["a", "b", "c"]


def test_fragment_entities_are_not_expanded():
    rows = [("u1", '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><extension name="&e;"/>')]
    body = dialplan.render_dialplan("c", rows)
    assert b"root:" not in body
    tree(body)


def _profile(name, settings=(("sip-ip", "198.18.0.101"),)):
    gateway = {"gateway_uuid": "ABC-1", "username": "u", "password": "p", "proxy": "sip.x",
               "register": "false", "register_transport": "tls", "sip_cid_type": "pid"}
    return sofia.SofiaProfile(name, settings, (("all", "false", "false"),), (gateway,))


def test_sofia_profiles_vip_rules_and_forced_settings():
    profiles = [_profile("internal"), _profile("vip1", (("auto-clear-sql", "true"),)),
                _profile("vip2")]
    chosen = sofia.select_profiles(profiles, {"vip1", "vip2"}, {"vip1"})
    assert [p.name for p in chosen] == ["internal", "vip1"]
    root = tree(sofia.render_sofia([("auto-restart", "true"), ("log-level", "0")], chosen,
                                   {"vip1", "vip2"}))
    conf = root.find("section[@name='configuration']/configuration[@name='sofia.conf']")
    assert params(conf.find("global_settings")) == {"auto-restart": "false", "log-level": "0"}
    vip1 = conf.find("profiles/profile[@name='vip1']")
    assert params(vip1.find("settings"))["auto-clear-sql"] == "false"
    internal = conf.find("profiles/profile[@name='internal']")
    assert "auto-clear-sql" not in params(internal.find("settings"))
    gateway = internal.find("gateways/gateway")
    assert gateway.get("name") == "abc-1"
    gp = params(gateway)
    assert gp["register-transport"] == "tls" and gp["contact-params"] == "transport=tls"
    assert params(gateway.find("variables"), "variable") == {"sip_cid_type": "pid"}
    assert internal.find("domains/domain").attrib == {"name": "all", "alias": "false",
                                                      "parse": "false"}


HOSTILE = st.one_of(
    st.text(max_size=200),
    st.sampled_from(['"><user id="evil"/>', "' OR '1'='1", "a&b<c>d\"e'f", "\x00nul\x00",
                     "]]><!--", "x" * 10240, "1000; DROP TABLE v_extensions; --",
                     "\ud800 lone surrogate", "&amp;&#0;&#x1F;"]))


@settings(max_examples=150, deadline=None)
@given(name=HOSTILE, number=HOSTILE, domain=HOSTILE, setting=HOSTILE)
def test_hostile_values_cannot_inject_xml_and_round_trip(name, number, domain, setting):
    rec = UserRecord("d-1", domain, dict(EXT, effective_caller_id_name=name, extension=number),
                     VM, (("variable", "x_custom", setting),))
    root = tree(directory.render_user(rec))  # parses: nothing was injected
    users = root.findall(".//user")
    assert len(users) == 1 and len(root.findall("section/domain")) == 1
    v = params(users[0].find("variables"), "variable")
    assert users[0].get("id") == xmldoc.text(number)
    assert root.find("section/domain").get("name") == xmldoc.text(domain)
    assert v.get("effective_caller_id_name", "") == xmldoc.text(name)
    assert v["x_custom"] == xmldoc.text(setting)


@settings(max_examples=100, deadline=None)
@given(context=HOSTILE)
def test_hostile_context_name_round_trips(context):
    root = tree(dialplan.render_dialplan(context, []))
    assert root.find("section/context").get("name") == xmldoc.text(context)


def test_text_drops_only_what_xml_cannot_carry():
    assert xmldoc.text("a\x00b\x1fc\td\ne\ud800f\ufffeg\U0001F600") == "abc\td\nefg\U0001F600"
    assert xmldoc.text(None) == "" and xmldoc.text(5) == "5"


def test_renderers_read_only_the_columns_the_lookup_selects():
    class Recording(dict):
        def __init__(self, *args):
            super().__init__(*args)
            self.read = set()

        def get(self, key, default=None):
            self.read.add(key)
            return super().get(key, default)

    ext = Recording(EXT)
    rec = UserRecord("d-1", "demo.local", ext, VM, ())
    for render in (directory.render_user, directory.render_message_count,
                   directory.render_reverse_auth):
        render(rec)
    assert ext.read <= set(directory.USER_COLUMNS)
    assert {"password", "toll_allow", "dial_string"} <= ext.read


def test_vip_profiles_served_carry_the_shared_dsn():
    """The profile FreeSWITCH actually loads comes from xml_curl: it must have the same
    cluster settings as the static reference (one source: vip_profile_forced)."""
    from fscluster.config import load
    from fscluster.freeswitch_conf import vip_profile_forced
    config = load(environ={"FSCLUSTER_DB_URL": "mysql+pymysql://fs:pw@127.0.0.1:3306/fusionpbx"})
    forced = vip_profile_forced(config)
    root = tree(sofia.render_sofia([], [_profile("vip1", (("track-calls", "false"),))],
                                   {"vip1"}, forced))
    settings = params(root.find(".//profile[@name='vip1']/settings"))
    assert settings["odbc-dsn"] == "odbc://fscluster:fs:pw"
    assert settings["track-calls"] == "true" and settings["auto-clear-sql"] == "false"
    embedded = vip_profile_forced(load(environ={}))
    assert "odbc-dsn" not in embedded and embedded["track-calls"] == "true"
