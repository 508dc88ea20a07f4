"""LookupService against real databases (SQLite and MariaDB): every capture answered from
seeded data, FusionPBX's filters, caching and generations, and hostile identifiers that
can inject neither SQL nor XML."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree
from sqlalchemy import func, insert, select, update

from fscluster import schema, seed
from fscluster.config import Config
from fscluster.errors import DatabaseUnavailable
from tests.xml_curl_support import DictCache, fixture_body, make_service
from xml_curl import request as rq, xmldoc
from xml_curl.local_cache import LocalCache
from xml_curl.service import MAX_IDENTIFIER

VIPS = Config().vips


@pytest.fixture
def seeded(any_db):
    seed.seed(any_db, domains=2, extensions=12, vips=VIPS)
    return any_db


def ask(service, body: bytes, hostname: str = "pbx1"):
    """``body`` as FreeSWITCH on ``hostname`` would post it (its switchname leads)."""
    return service.answer(rq.parse(f"hostname={hostname}&".encode() + body))


def form(**fields) -> bytes:
    from esl_apps.protocol import url_encode
    return "&".join(f"{k.replace('_', '-') if k[0].isupper() else k}={url_encode(v)}"
                    for k, v in fields.items()).encode()


def user_params(body: bytes):
    root = etree.fromstring(body)
    return {p.get("name"): p.get("value") for p in root.iter("param", "variable")}


def is_not_found(body: bytes) -> bool:
    return body == xmldoc.NOT_FOUND


def test_every_capture_answers_from_seeded_data(seeded):
    service = make_service(seeded)
    register = ask(service, fixture_body("directory-sip_auth-register"))
    assert register.status == 200 and register.source == "db"
    assert user_params(register.body)["password"] == seed.extension_password("demo.local", "1001")
    invite = user_params(ask(service, fixture_body("directory-sip_auth-invite")).body)
    assert invite["password"] == seed.extension_password("demo.local", "1000")
    assert invite["caller_id_number"] == "2000"          # seeded number_alias of 1000
    call = ask(service, fixture_body("directory-user_call"))
    assert etree.fromstring(call.body).find(".//user").get("id") == "1001"
    gateways = etree.fromstring(ask(service, fixture_body("directory-gateways")).body)
    assert [d.get("name") for d in gateways.iter("domain")] == [
        "demo.local", "tenant0001.example.net"]
    plan = etree.fromstring(ask(service, fixture_body("dialplan")).body)
    assert [e.get("name") for e in plan.find("section/context")] == [
        "call_direction", "local_extension"]
    conf = etree.fromstring(ask(service, fixture_body("configuration-sofia.conf")).body)
    assert conf.find(".//global_settings/param[@name='auto-restart']").get("value") == "false"
    assert conf.findall(".//profiles/profile") == []     # no VIP held yet


def test_number_alias_finds_the_extension(seeded):
    answer = ask(make_service(seeded), form(section="directory", action="sip_auth",
                                            user="2010", domain="demo.local"))
    assert etree.fromstring(answer.body).find(".//user").get("id") == "1010"


def test_exact_extension_beats_an_alias_and_brings_only_its_own_settings(seeded):
    with seeded.write.begin() as conn:
        ext = {row.extension: row for row in conn.execute(
            select(schema.v_extensions).join(schema.v_domains, schema.v_domains.c.domain_uuid
                                             == schema.v_extensions.c.domain_uuid)
            .where(schema.v_domains.c.domain_name == "demo.local"))}
        conn.execute(update(schema.v_extensions).where(
            schema.v_extensions.c.extension_uuid == ext["1005"].extension_uuid)
            .values(number_alias="1003"))                   # 1005's alias collides with 1003
        conn.execute(schema.v_extension_settings.delete())
        for number, kind, name, value, enabled in (
                ("1003", "variable", "zz_last", "z", "true"),
                ("1003", "param", "sip-forbid-register", "true", "true"),
                ("1003", "variable", "aa_first", "a", "true"),
                ("1003", "variable", "disabled_one", "x", "false"),
                ("1005", "variable", "not_mine", "n", "true")):
            conn.execute(insert(schema.v_extension_settings).values(
                extension_setting_uuid=f"{number}-{name}", domain_uuid=ext[number].domain_uuid,
                extension_uuid=ext[number].extension_uuid, extension_setting_type=kind,
                extension_setting_name=name, extension_setting_value=value,
                extension_setting_enabled=enabled))
    body = ask(make_service(seeded), form(section="directory", action="sip_auth", user="1003",
                                          domain="demo.local")).body
    user = etree.fromstring(body).find(".//user")
    assert user.get("id") == "1003"
    variables = [v.get("name") for v in user.iter("variable")]
    assert [n for n in variables if n in ("aa_first", "zz_last", "disabled_one", "not_mine")] \
        == ["aa_first", "zz_last"]
    assert user_params(body)["sip-forbid-register"] == "true"


def test_disabled_extension_and_domain_are_not_found(seeded):
    with seeded.write.begin() as conn:
        conn.execute(update(schema.v_extensions).where(
            schema.v_extensions.c.extension == "1002").values(enabled="false"))
        conn.execute(update(schema.v_domains).where(
            schema.v_domains.c.domain_name == "tenant0001.example.net").values(
                domain_enabled="false"))
    service = make_service(seeded)
    assert is_not_found(ask(service, form(section="directory", user="1002",
                                          domain="demo.local")).body)
    assert not is_not_found(ask(service, form(section="directory", user="1003",
                                              domain="demo.local")).body)
    assert is_not_found(ask(service, form(section="directory", user="1003",
                                          domain="tenant0001.example.net")).body)
    assert is_not_found(ask(service, form(
        section="directory", domain="tenant0001.example.net",
        **{"Event-Calling-Function": "switch_xml_locate_domain"})).body)


def test_other_directory_actions(seeded):
    service = make_service(seeded)
    groups = etree.fromstring(ask(service, form(section="directory", action="group_call",
                                                domain="demo.local")).body)
    sales = groups.find(".//group[@name='sales']")
    assert [u.get("id") for u in sales.iter("user")] == [str(n) for n in range(1001, 1012, 2)]
    auth = user_params(ask(service, form(section="directory", action="reverse-auth-lookup",
                                         user="1001", domain="demo.local")).body)
    assert auth["reverse-auth-pass"] == seed.extension_password("demo.local", "1001")
    count = user_params(ask(service, form(section="directory", action="message-count",
                                          user="1001", domain="demo.local")).body)
    assert count == {"vm-enabled": "true"}
    located = etree.fromstring(ask(service, form(
        section="directory", domain="demo.local",
        **{"Event-Calling-Function": "switch_xml_locate_domain"})).body)
    assert [d.get("name") for d in located.iter("domain")] == ["demo.local"]


def test_unknown_things_are_not_found_with_http_200(seeded):
    service = make_service(seeded)
    for body in (form(section="directory", user="9999", domain="demo.local"),
                 form(section="directory", user="1000", domain="nowhere.example"),
                 form(section="dialplan", **{"Caller-Context": "nowhere"}),
                 form(section="configuration", key_value="ivr.conf"),
                 form(section="directory", action="group_call", domain="nowhere")):
        answer = ask(service, body)
        assert (answer.status, answer.body) == (200, xmldoc.NOT_FOUND)


def test_dialplan_filters_by_node_enabled_and_order(seeded):
    rows = [("n-pbx2", "pbx2", "true", 100), ("n-pbx1", "pbx1", "true", 50),
            ("n-empty", "", "true", 900), ("n-off", None, "false", 10)]
    with seeded.write.begin() as conn:
        for name, host, enabled, order in rows:
            conn.execute(insert(schema.v_dialplans).values(
                dialplan_uuid=f"uuid-{name}", dialplan_context="demo.local", hostname=host,
                dialplan_name=name, dialplan_enabled=enabled, dialplan_order=order,
                dialplan_xml=f'<extension name="{name}"/>'))
    service = make_service(seeded)
    names = lambda host: [e.get("name") for e in etree.fromstring(ask(  # noqa: E731
        service, fixture_body("dialplan"), host).body).find("section/context")]
    assert names("pbx1") == ["call_direction", "n-pbx1", "local_extension", "n-empty"]
    assert names("pbx2") == ["call_direction", "n-pbx2", "local_extension", "n-empty"]


def _vip_profiles(service, node):
    conf = etree.fromstring(ask(service, fixture_body("configuration-sofia.conf"), node).body)
    return {p.get("name"): {s.get("name"): s.get("value") for s in p.iter("param")}
            for p in conf.iter("profile")}


def test_sofia_vip_profile_follows_owner_after_a_generation_bump(seeded):
    cache = DictCache()
    service = make_service(seeded, cache)
    with seeded.write.begin() as conn:
        conn.execute(insert(schema.cluster_vips).values(vip_name="vip1", owner_node="pbx1",
                                                        epoch=1))
    seeded.bump_generation()
    pbx1 = _vip_profiles(service, "pbx1")
    assert list(pbx1) == ["vip1"] and pbx1["vip1"]["auto-clear-sql"] == "false"
    assert pbx1["vip1"]["sip-ip"] == VIPS[0].address
    assert _vip_profiles(service, "pbx3") == {}
    with seeded.write.begin() as conn:   # the failover moves vip1 to pbx3 …
        conn.execute(update(schema.cluster_vips).values(owner_node="pbx3"))
    assert list(_vip_profiles(service, "pbx1")) == ["vip1"]   # … cached until the bump
    seeded.bump_generation()
    assert _vip_profiles(service, "pbx1") == {}
    assert list(_vip_profiles(service, "pbx3")) == ["vip1"]


def test_answers_are_cached_and_misses_cached_negatively(seeded):
    cache = DictCache()
    service = make_service(seeded, cache)
    known = form(section="directory", user="1001", domain="demo.local")
    unknown = form(section="directory", user="scanner", domain="demo.local")
    assert [ask(service, known).source for _ in range(2)] == ["db", "memcached"]
    assert [ask(service, unknown).source for _ in range(2)] == ["db", "memcached"]
    ttls = sorted(ttl for _value, ttl in cache.data.values())
    assert ttls == [10, 3600]


def test_a_db_change_bumps_the_generation_and_is_served(seeded):
    service = make_service(seeded)
    body = form(section="directory", user="1001", domain="demo.local")
    assert user_params(ask(service, body).body)["toll_allow"] == "domestic"
    with seeded.write.begin() as conn:
        conn.execute(update(schema.v_extensions).where(
            schema.v_extensions.c.extension == "1001").values(toll_allow="international"))
    answer = ask(service, body)
    assert answer.source == "db" and user_params(answer.body)["toll_allow"] == "international"


def test_local_cache_in_front_of_memcached(seeded):
    cache = DictCache()
    local = LocalCache(100)
    service = make_service(seeded, cache, local=local)
    known = form(section="directory", user="1001", domain="demo.local")
    assert [ask(service, known).source for _ in range(2)] == ["db", "local"]
    fresh = make_service(seeded, cache, local=LocalCache(100))  # another process, same memcached
    assert [ask(fresh, known).source for _ in range(2)] == ["memcached", "local"]
    cache.up = False
    assert ask(service, known).source == "local"


def test_memcached_down_answers_from_the_db(seeded):
    cache = DictCache()
    cache.up = False
    service = make_service(seeded, cache)
    body = form(section="directory", user="1001", domain="demo.local")
    assert [ask(service, body).source for _ in range(2)] == ["db", "db"]


class DownDatabase:
    """A Database whose server is gone: what db.retrying/db.generation raise then."""

    def __init__(self, db):
        self.db, self.down = db, False

    def retrying(self, work, **kwargs):
        if self.down:
            raise DatabaseUnavailable("db: connection refused (after 3 attempts)")
        return self.db.retrying(work, **kwargs)

    def generation(self):
        if self.down:
            raise DatabaseUnavailable("db: connection refused")
        return self.db.generation()


def test_db_down_warm_cache_answers_cold_answers_503_and_caches_nothing(seeded):
    db = DownDatabase(seeded)
    cache = DictCache()
    service = make_service(db, cache)
    warm = form(section="directory", user="1001", domain="demo.local")
    expected = ask(service, warm).body
    db.down = True
    answer = ask(service, warm)
    assert (answer.status, answer.source, answer.body) == (200, "memcached", expected)
    before = dict(cache.data)
    cold = ask(service, form(section="directory", user="1002", domain="demo.local"))
    assert cold.status == 503 and cold.body != xmldoc.NOT_FOUND
    assert cache.data == before


HOSTILE = st.one_of(
    st.text(min_size=1, max_size=80),
    st.sampled_from(["' OR '1'='1", "1000' --", "1000\" OR 1=1 #", "%", "_", "1000%",
                     "x'); DELETE FROM v_extensions; --", '"><user id="x"/>', "\x00",
                     "1000\x00", "a&b<c>", "x" * 10240, "demo.local' OR 'a'='a"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=HOSTILE, domain=st.one_of(st.just("demo.local"), HOSTILE))
def test_hostile_identifiers_inject_no_sql(seeded, user, domain):
    service = make_service(seeded)
    answer = ask(service, form(section="directory", action="sip_auth", user=user,
                               domain=domain))
    assert answer.status == 200
    root = etree.fromstring(answer.body)
    users = root.findall(".//user")
    if users:  # only an exact, real extension or alias may match
        assert domain == "demo.local" and user.strip() in {
            u.get("id") for u in users} | {u.get("number-alias") for u in users}
    else:
        assert answer.body == xmldoc.NOT_FOUND
    with seeded.read.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.v_extensions)).scalar() == 24


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=200), st.sampled_from(
    ["'; DROP TABLE v_domains; --", '"/><param name="password" value="x"/>', "a\x00b",
     "&lt;&amp;", "x" * 255])))
def test_hostile_stored_values_round_trip_through_db_and_xml(seeded, name):
    with seeded.write.begin() as conn:
        conn.execute(update(schema.v_extensions).where(
            schema.v_extensions.c.extension == "1003").values(effective_caller_id_name=name))
    answer = ask(make_service(seeded), form(section="directory", user="1003",
                                            domain="demo.local"))
    values = [p.get("value") for p in etree.fromstring(answer.body).iter("variable")
              if p.get("name") == "effective_caller_id_name"]
    assert values == ([xmldoc.text(name)] if name else [])
    assert len(etree.fromstring(answer.body).findall(".//param[@name='password']")) == 1


def test_identifiers_no_row_can_hold_skip_the_db(seeded):
    class NoDb:
        def generation(self):
            return 1

        def retrying(self, work, **kwargs):
            raise AssertionError("queried the DB")

    service = make_service(NoDb())
    for user in ("a\x00b", "x" * (MAX_IDENTIFIER + 1), "tab\there"):
        answer = ask(service, form(section="directory", user=user, domain="demo.local"))
        assert (answer.status, answer.source, answer.body) == (200, "none", xmldoc.NOT_FOUND)


def test_every_connection_busy_is_503_too(seeded):
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    class BusyDb(DownDatabase):
        def retrying(self, work, **kwargs):
            raise PoolTimeout("QueuePool limit reached")

    answer = ask(make_service(BusyDb(seeded)), form(section="directory", user="1001",
                                                    domain="demo.local"))
    assert answer.status == 503


def test_503_warnings_are_rate_limited_and_counted(seeded, caplog):
    import logging
    db = DownDatabase(seeded)
    db.down = True
    service = make_service(db)
    now = [1000.0]
    service._monotonic = lambda: now[0]
    with caplog.at_level(logging.WARNING, logger="fscluster.xml_curl"):
        for user in range(1000, 1010):
            assert ask(service, form(section="directory", user=str(user),
                                     domain="demo.local")).status == 503
        now[0] += 6
        ask(service, form(section="directory", user="1011", domain="demo.local"))
    counts = [r.answered_503 for r in caplog.records if r.msg.startswith("db unavailable")]
    assert counts == [1, 10]


def test_unknown_generation_bypasses_every_cache(seeded):
    db = DownDatabase(seeded)
    db.down = True
    cache = DictCache()
    local = LocalCache(10)
    service = make_service(db, cache, local=local)    # the clock never read a generation
    from fscluster.cache import cache_key
    cache.data[cache_key(0, "user", "demo.local", "1001")] = (b"stale", 10)  # an old start-up
    answer = ask(service, form(section="directory", user="1001", domain="demo.local"))
    assert (answer.status, answer.source) == (503, "unavailable")
    db.down = False
    service.clock._checked = float("-inf")             # the poll interval has passed
    assert ask(service, form(section="directory", user="1001", domain="demo.local")).source == "db"


def test_first_lookups_before_the_generation_is_known_are_not_cached(seeded):
    cache = DictCache()
    service = make_service(seeded, cache, interval=3600)
    service.clock._lock.acquire()   # another greenlet is reading the generation right now
    try:
        answer = ask(service, form(section="directory", user="1001", domain="demo.local"))
    finally:
        service.clock._lock.release()
    assert answer.source == "db" and cache.data == {}


def test_lookups_queue_for_a_db_slot_and_503_when_none_frees_in_time(seeded):
    service = make_service(seeded, db_concurrency=1)
    body = form(section="directory", user="1001", domain="demo.local")
    service._db_slots.acquire()          # the only slot is busy for the whole deadline
    try:
        assert ask(service, body).status == 503
    finally:
        service._db_slots.release()
    assert ask(service, body).status == 200   # and the slot was given back after each use
    assert ask(service, form(section="directory", user="1002", domain="demo.local")).status == 200
