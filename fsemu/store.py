"""The emulated FreeSWITCH's SQL: its own tables in the configured DB, with FreeSWITCH's statements.

FreeSWITCH keeps registrations and channels in SQL, not in memory, so this is the emulator's
state too: a restart that "keeps state" simply reconnects to the same rows. Every statement
mirrors one in FreeSWITCH and names it:

- ``sip_registrations``: sofia_reg.c ``sofia_reg_handle_register_token`` (insert/update,
  ``hostname`` = ``orig_hostname`` = switchname), ``sofia_reg_expire_call_id`` /
  ``sofia_reg_check_expire`` (only ``hostname`` = own), ``sofia_reg_find_reg_url`` (no
  hostname filter).
- ``registrations``: switch_core_sqldb.c ``switch_core_add_registration`` /
  ``switch_core_del_registration`` / ``switch_core_expire_registration`` (all scoped to own
  hostname).
- ``channels``/``calls``: switch_core_sqldb.c ``core_event_handler``.
- ``recovery``: switch_core_sqldb.c ``switch_core_recovery_track`` /
  ``switch_core_recovery_recover`` / ``switch_core_recovery_untrack``.
"""
import logging
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import and_, bindparam, delete, func, insert, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from fscluster.db import make_engine
from fscluster.fs_tables import calls, channels, fs_metadata, recovery, registrations, \
    sip_registrations

Row = Dict[str, object]
log = logging.getLogger("fsemu.store")

#: sofia_glue.c ``sofia_glue_init_sql`` and switch_core_sqldb.c ``switch_core_sqldb_start``
#: (constant DDL: names, tables and columns are literals)
INDEXES = [(f"sr_{col}", "sip_registrations", col) for col in (
    "call_id", "sip_user", "sip_host", "sub_host", "mwi_user", "mwi_host", "profile_name",
    "presence_hosts", "contact", "expires", "hostname", "status", "network_ip", "network_port",
    "sip_username", "sip_realm", "orig_server_host", "orig_hostname", "ping_status",
    "ping_expires")] + [
    ("regindex1", "registrations", "reg_user,realm,hostname"),
    ("channels1", "channels", "hostname"),
    ("calls1", "calls", "hostname"),
    ("chidx1", "channels", "hostname"),
    ("uuindex", "channels", "uuid,hostname"),
    ("uuindex2", "channels", "call_uuid"),
    ("callsidx1", "calls", "hostname"),
    ("eruuindex", "calls", "caller_uuid,hostname"),
    ("eeuuindex", "calls", "callee_uuid"),
    ("eeuuindex2", "calls", "call_uuid"),
    ("recovery1", "recovery", "technology"),
    ("recovery2", "recovery", "profile_name"),
    ("recovery3", "recovery", "uuid"),   # FreeSWITCH names the runtime_uuid index
]                                         # "recovery3" too, so it is never created


_BINDING_COLUMNS = {"contact": ("sip_user", "sip_host", "contact"), "true": ("call_id",),
                    "false": ("sip_user", "sip_host")}
_REFRESHED = ("call_id", "sub_host", "network_ip", "network_port", "presence_hosts",
              "server_host", "orig_server_host", "hostname", "orig_hostname", "expires",
              "sip_user", "sip_username", "sip_host", "contact")
_SR = sip_registrations.c
_REPLACE = {mode: delete(sip_registrations).where(*[
    getattr(_SR, col) == bindparam(f"b_{col}") for col in cols])
    for mode, cols in _BINDING_COLUMNS.items()}
_REFRESH = update(sip_registrations).where(
    _SR.sip_user == bindparam("v_sip_user"), _SR.sip_username == bindparam("v_sip_username"),
    _SR.sip_host == bindparam("v_sip_host"), _SR.contact == bindparam("v_contact")).values(
    **{key: bindparam(f"v_{key}") for key in _REFRESHED[:10]})
_STALE_COLUMN = {"contact": "contact", "true": "call_id"}
_STALE = {mode: delete(sip_registrations).where(
    getattr(_SR, col) == bindparam("s_key"), _SR.expires != bindparam("s_expires"))
    for mode, col in _STALE_COLUMN.items()}
_CORE_REPLACE_MULTI = delete(registrations).where(
    registrations.c.hostname == bindparam("c_hostname"),
    (registrations.c.url == bindparam("c_url")) | (registrations.c.token == bindparam("c_token")))
_CORE_REPLACE_USER = delete(registrations).where(
    registrations.c.hostname == bindparam("c_hostname"),
    registrations.c.reg_user == bindparam("c_user"), registrations.c.realm == bindparam("c_realm"))


def _binding(sip_row: Row, multi_reg: str):
    """Which existing ``sip_registrations`` rows a binding replaces (by profile setting)."""
    return and_(*[getattr(_SR, col) == sip_row[col] for col in _BINDING_COLUMNS[multi_reg]])


def _core_binding(user: str, realm: str, hostname: str, token: str, core_multi: bool):
    """``switch_core_del_registration``'s rows: own hostname, user@realm (and the token when
    switch.conf ``multiple-registrations`` is on)."""
    reg = registrations.c
    where = and_(reg.reg_user == user, reg.realm == realm, reg.hostname == hostname)
    return and_(where, reg.token == token) if core_multi else where


def _binding_key(sip_row: Row, multi_reg: str) -> tuple:
    return tuple(sip_row[col] for col in _BINDING_COLUMNS[multi_reg]) + (sip_row["call_id"],)


def _rows(result) -> List[Row]:
    return [dict(row._mapping) for row in result]


class Store:
    """FreeSWITCH's tables through one engine (created as FreeSWITCH does when missing)."""

    def __init__(self, db_url: str, connect_timeout: float = 3.0):
        self.engine: Engine = make_engine(db_url, connect_timeout)

    def create_tables(self) -> None:
        """Tables, then FreeSWITCH's indexes; an index the DB refuses (``contact`` is too long
        for a utf8mb4 MariaDB key) is skipped, as FreeSWITCH logs and goes on."""
        fs_metadata.create_all(self.engine, checkfirst=True)
        inspector = inspect(self.engine)
        existing = {index["name"] for table in fs_metadata.tables
                    for index in inspector.get_indexes(table)}
        for name, table, columns in INDEXES:
            if name in existing:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"CREATE INDEX {name} ON {table} ({columns})"))
            except DBAPIError as exc:
                log.info("index %s not created: %s", name, str(exc.orig)[:120])

    def close(self) -> None:
        self.engine.dispose()

    # -- registrations ---------------------------------------------------------------------

    def register(self, entries: Sequence[Tuple[Row, Row, bool]], multi_reg: str,
                 core_multi: bool) -> None:
        """Store ``(sip_row, core_row, refresh)`` registrations in one transaction.

        sofia_reg.c ``sofia_reg_handle_register_token``: a new binding first deletes the old
        one (``multiple-registrations=contact``: same user@host+contact; ``true``: same
        call-id; ``false``: same user@host — no hostname filter in any case) and inserts; a
        refresh (``auth-result: RENEWED`` on a known contact) updates the row *and re-homes it*
        (``hostname``/``orig_hostname`` := own). With multiple registrations it then deletes
        other rows of the same contact/call-id with a different expiry. The core row goes
        through ``switch_core_add_registration``: delete own-hostname rows with the same url
        or token (switch.conf ``multiple-registrations`` on) or the same user@realm (off,
        FreeSWITCH's default), insert (``metadata`` NULL when empty).

        Statements run batched (executemany) when the bindings are distinct, which is the
        same as FreeSWITCH running them one REGISTER after the other."""
        keys = [_binding_key(sip_row, multi_reg) for sip_row, _, _ in entries]
        runs = [list(entries)] if len(set(keys)) == len(keys) else [[e] for e in entries]
        with self.engine.begin() as conn:
            for run in runs:
                self._register_run(conn, run, multi_reg, core_multi)

    @staticmethod
    def _register_run(conn, run, multi_reg: str, core_multi: bool) -> None:
        fresh = [sip for sip, _, refresh in run if not refresh]
        renewed = [sip for sip, _, refresh in run if refresh]
        if renewed:
            conn.execute(_REFRESH, [{f"v_{k}": sip[k] for k in _REFRESHED} for sip in renewed])
        if fresh:
            conn.execute(_REPLACE[multi_reg], [
                {f"b_{k}": sip[k] for k in _BINDING_COLUMNS[multi_reg]} for sip in fresh])
            conn.execute(insert(sip_registrations), fresh)
        if multi_reg in _STALE:
            column = _STALE_COLUMN[multi_reg]
            conn.execute(_STALE[multi_reg], [
                {"s_key": sip[column], "s_expires": sip["expires"]} for sip, _, _ in run])
        cores = [core for _, core, _ in run]
        if core_multi:
            conn.execute(_CORE_REPLACE_MULTI, [{"c_hostname": c["hostname"], "c_url": c["url"],
                                                "c_token": c["token"]} for c in cores])
        else:
            conn.execute(_CORE_REPLACE_USER, [{"c_hostname": c["hostname"], "c_user": c["reg_user"],
                                               "c_realm": c["realm"]} for c in cores])
        conn.execute(insert(registrations), cores)

    def binding_exists(self, sip_row: Row) -> bool:
        """The refresh test: ``select count(*) … where sip_user, sip_username, sip_host, contact``."""
        sr = sip_registrations.c
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(sip_registrations).where(
                sr.sip_user == sip_row["sip_user"], sr.sip_username == sip_row["sip_username"],
                sr.sip_host == sip_row["sip_host"], sr.contact == sip_row["contact"])).scalar() > 0

    def unregister(self, sip_row: Row, multi_reg: str, hostname: str, core_multi: bool) -> None:
        """REGISTER with ``Expires: 0``: sofia deletes the binding (no hostname filter); the
        core ``switch_core_del_registration`` deletes own-hostname rows by user@realm (and
        token when ``multiple-registrations`` is on)."""
        core_where = _core_binding(sip_row["sip_user"], sip_row["sip_host"], hostname,
                                   sip_row["call_id"], core_multi)
        with self.engine.begin() as conn:
            conn.execute(delete(sip_registrations).where(_binding(sip_row, multi_reg)))
            conn.execute(delete(registrations).where(core_where))

    def socket_closed(self, call_id: str, network_ip: str, network_port: str, user: str,
                      realm: str, hostname: str, core_multi: bool) -> None:
        core_where = _core_binding(user, realm, hostname, call_id, core_multi)
        with self.engine.begin() as conn:
            conn.execute(delete(sip_registrations).where(
                _SR.call_id == call_id, _SR.network_ip == network_ip,
                _SR.network_port == network_port))
            conn.execute(delete(registrations).where(core_where))

    def expiring(self, now: Optional[int]) -> List[Row]:
        """``sofia_reg_check_expire``'s select: rows with ``expires <= now`` (every row with
        ``expires > 0`` on a flush, ``now`` None) — of **every** hostname."""
        sr = sip_registrations.c
        where = sr.expires > 0
        if now is not None:
            where = and_(where, sr.expires <= now)
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(sip_registrations).where(where)))

    def delete_expired(self, hostname: str, now: Optional[int],
                       call_id: Optional[str] = None) -> None:
        """``sofia_reg_check_expire``'s delete: own hostname only. The core table is swept by
        ``switch_core_expire_registration`` (own hostname, ``expires <= now``)."""
        sr, reg = sip_registrations.c, registrations.c
        sip_where = and_(sr.expires > 0, sr.hostname == hostname)
        core_where = and_(reg.expires > 0, reg.hostname == hostname)
        if now is not None:
            sip_where = and_(sip_where, sr.expires <= now)
            core_where = and_(core_where, reg.expires <= now)
        if call_id is not None:
            sip_where = and_(sip_where, sr.call_id == call_id)
            core_where = and_(core_where, reg.token == call_id)
        with self.engine.begin() as conn:
            conn.execute(delete(sip_registrations).where(sip_where))
            conn.execute(delete(registrations).where(core_where))

    def sip_registrations(self, profile: Optional[str] = None) -> List[Row]:
        query = select(sip_registrations)
        if profile is not None:
            query = query.where(sip_registrations.c.profile_name == profile)
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    def find_contacts(self, user: str, host: Optional[str]) -> List[Row]:
        """sofia_reg.c ``sofia_reg_find_reg_url_multi``: ``sip_user`` and (``sip_host`` or
        ``presence_hosts`` like host) — **no hostname and no profile filter**."""
        sr = sip_registrations.c
        query = select(sip_registrations).where(sr.sip_user == user)
        if host:
            query = query.where((sr.sip_host == host) | sr.presence_hosts.contains(host,
                                                                                  autoescape=True))
        with self.engine.connect() as conn:
            return _rows(conn.execute(query))

    def core_registrations(self, hostname: str) -> List[Row]:
        """``show registrations``: the core table, own hostname only (mod_commands.c)."""
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(registrations).where(
                registrations.c.hostname == hostname)))

    # -- channels and calls ----------------------------------------------------------------

    def add_channel(self, row: Row) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(channels).values(**row))

    def update_channel(self, uuid: str, hostname: str, values: Row) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(channels).where(
                channels.c.uuid == uuid, channels.c.hostname == hostname).values(**values))

    def delete_channel(self, uuid: str, hostname: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(channels).where(
                channels.c.uuid == uuid, channels.c.hostname == hostname))
            conn.execute(delete(calls).where(
                (calls.c.caller_uuid == uuid) | (calls.c.callee_uuid == uuid),
                calls.c.hostname == hostname))

    def add_call(self, row: Row) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(calls).values(**row))

    def channels(self, hostname: str) -> List[Row]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(channels).where(
                channels.c.hostname == hostname).order_by(channels.c.created_epoch)))

    def clear_own(self, hostname: str) -> None:
        """``switch_core_sqldb_start``: delete own hostname's ``channels``/``calls`` (never
        another node's) and — every node's — registrations with an empty user or over
        TCP/TLS (those die with their socket)."""
        reg = registrations.c
        with self.engine.begin() as conn:
            conn.execute(delete(registrations).where(
                (reg.reg_user == "") | reg.network_proto.in_(("tcp", "tls"))))
            conn.execute(delete(channels).where(channels.c.hostname == hostname))
            conn.execute(delete(calls).where(calls.c.hostname == hostname))

    # -- recovery --------------------------------------------------------------------------

    def track(self, row: Row) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(recovery).where(recovery.c.uuid == row["uuid"]))
            conn.execute(insert(recovery).values(**row))

    def untrack(self, uuid: str, runtime_uuid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(recovery).where(
                recovery.c.uuid == uuid, recovery.c.runtime_uuid == runtime_uuid))

    def recoverable(self, technology: str, profile: str, runtime_uuid: str) -> List[Row]:
        """``switch_core_recovery_recover``'s select: technology, profile and ``runtime_uuid !=
        own`` — **no hostname filter**."""
        rc = recovery.c
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(recovery).where(
                rc.technology == technology, rc.profile_name == profile,
                rc.runtime_uuid != runtime_uuid)))

    def finish_recovery(self, technology: str, profile: str, runtime_uuid: str, hostname: str,
                        recovered: Iterable[str]) -> None:
        """The recovered legs are tracked again as ours (``switch_core_recovery_track``); then
        every other foreign row of that technology+profile is deleted."""
        rc = recovery.c
        with self.engine.begin() as conn:
            for uuid in recovered:
                conn.execute(update(recovery).where(rc.uuid == uuid).values(
                    runtime_uuid=runtime_uuid, hostname=hostname))
            conn.execute(delete(recovery).where(
                rc.technology == technology, rc.profile_name == profile,
                rc.runtime_uuid != runtime_uuid))

    def flush_recovery(self, technology: str, profile: str) -> None:
        """``switch_core_recovery_flush``: drop tracked calls of a technology and profile."""
        with self.engine.begin() as conn:
            conn.execute(delete(recovery).where(recovery.c.technology == technology,
                                                recovery.c.profile_name == profile))

    def forget_hostname(self, hostname: str) -> None:
        """A node whose own database was lost: none of its rows exist any more."""
        with self.engine.begin() as conn:
            for table in (sip_registrations, registrations, channels, calls, recovery):
                conn.execute(delete(table).where(table.c.hostname == hostname))
