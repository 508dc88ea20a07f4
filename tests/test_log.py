"""Structured logs: fields come out as JSON, secrets never do."""
import json
import logging

from fscluster.log import JsonFormatter, TextFormatter, mask


def record(msg, **extra):
    rec = logging.LogRecord("fscluster.test", logging.WARNING, __file__, 1, msg, (), None)
    rec.__dict__.update(extra)
    return rec


def test_json_has_fields():
    out = json.loads(JsonFormatter().format(record("db retry", attempt=2, vip="vip1")))
    assert out["msg"] == "db retry" and out["attempt"] == 2 and out["vip"] == "vip1"
    assert out["level"] == "warning"


def test_passwords_are_masked_everywhere():
    line = JsonFormatter().format(record("connect mysql+pymysql://fs:hunter2@db/x",
                                         form="user=1000&password=hunter2"))
    assert "hunter2" not in line
    assert "hunter2" not in TextFormatter().format(record("x", detail="password: hunter2"))


def test_mask_leaves_ordinary_text():
    assert mask("user 1000 registered from 198.18.0.5") == "user 1000 registered from 198.18.0.5"
