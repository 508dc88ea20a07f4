"""Channel events and snapshots → ``cluster_channels``; hangups → ``cluster_cdr_queue``."""
import json

from sqlalchemy import select

from esl_apps.channels import ChannelTracker, cdr_payload, row_from_event, rows_from_show
from esl_apps.mirror import Mirror
from esl_apps.protocol import Event
from fscluster.schema import cluster_cdr_queue, cluster_channels

CREATED_US = "1795556484000000"


def channel_event(name, uuid="u1", answered="0", **extra):
    headers = {"Event-Name": name, "Unique-ID": uuid, "Call-Direction": "inbound",
               "Caller-Caller-ID-Number": "1000", "Caller-Caller-ID-Name": "Alice",
               "Caller-Destination-Number": "1001", "Channel-State": "CS_EXECUTE",
               "Channel-Call-State": "RINGING", "Channel-Name": "sofia/vip1/1000@demo.local",
               "Caller-Channel-Created-Time": CREATED_US,
               "Caller-Channel-Answered-Time": answered,
               "FreeSWITCH-Hostname": "pbx1-host", "Core-UUID": "core"}
    headers.update(extra)
    return Event(headers)


def test_row_from_event_times_and_profile():
    row = row_from_event(channel_event("CHANNEL_CREATE"), "pbx1")
    assert row["profile_name"] == "vip1" and row["created_epoch"] == 1795556484
    assert "answered_epoch" not in row  # 0 µs means not answered
    answered = row_from_event(channel_event("CHANNEL_ANSWER", answered="1795556490000001"),
                              "pbx1")
    assert answered["answered_epoch"] == 1795556490


def test_rows_from_show_empty_has_no_rows_key():
    assert rows_from_show('{"row_count": 0}', "pbx1") == []
    body = json.dumps({"row_count": 1, "rows": [{
        "uuid": "u9", "direction": "outbound", "created_epoch": "1795556484",
        "name": "sofia/vip2/1002@198.18.0.5", "state": "CS_EXCHANGE_MEDIA", "cid_num": "1000",
        "cid_name": "Alice", "dest": "1002", "callstate": "ACTIVE", "call_uuid": "u8"}]})
    row, = rows_from_show(body, "pbx1")
    assert (row["uuid"], row["profile_name"], row["created_epoch"], row["callstate"]) == \
        ("u9", "vip2", 1795556484, "ACTIVE")


def test_cdr_payload_drops_boilerplate_and_oversized_variables():
    payload = json.loads(cdr_payload(channel_event("CHANNEL_HANGUP_COMPLETE",
                                                   variable_billsec="12")))
    assert payload["variable_billsec"] == "12" and "Core-UUID" not in payload
    huge = json.loads(cdr_payload(channel_event("CHANNEL_HANGUP_COMPLETE",
                                                variable_big="x" * 70000)))
    assert "variable_big" not in huge and huge["Unique-ID"] == "u1"
    assert "fscluster_truncated" in huge


def table(db, t):
    with db.read.connect() as conn:
        return {tuple(r)[0]: r for r in conn.execute(select(t))}


def test_tracker_lifecycle_and_cdr_once(any_db):
    mirror = Mirror(any_db, "pbx1")
    tracker = ChannelTracker(mirror, "pbx1", clock=lambda: 5.0)
    on = tracker.handlers()
    on["CHANNEL_CREATE"](channel_event("CHANNEL_CREATE"))
    on["CHANNEL_ANSWER"](channel_event("CHANNEL_ANSWER", answered="1795556490000000",
                                       **{"Channel-Call-State": "ACTIVE"}))
    mirror.flush()
    row = table(any_db, cluster_channels)["u1"]
    assert (row.callstate, row.answered_epoch, tracker.count) == ("ACTIVE", 1795556490, 1)
    on["snapshot:channels"]('{"row_count":1,"rows":[{"uuid":"u1","callstate":"HELD",'
                            '"name":"sofia/vip1/x"}]}')
    mirror.flush()
    assert table(any_db, cluster_channels)["u1"].answered_epoch == 1795556490  # kept
    hangup = channel_event("CHANNEL_HANGUP_COMPLETE", variable_billsec="7")
    on["CHANNEL_HANGUP_COMPLETE"](hangup)
    mirror.flush()
    on["CHANNEL_HANGUP_COMPLETE"](hangup)  # delivered twice: queued once
    mirror.flush()
    assert table(any_db, cluster_channels) == {}
    queued = table(any_db, cluster_cdr_queue)
    assert list(queued) == ["u1"] and json.loads(queued["u1"].payload)["variable_billsec"] == "7"
    assert tracker.count == 0 and tracker.hangups == 2
