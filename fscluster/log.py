"""Structured logs: one JSON object (or ``key=value`` line) per record, secrets masked.

Callers pass context as ``extra={...}``; those keys become fields. A last-line filter masks
anything shaped like a password or credentialed URL, should a caller ever pass one.
"""
import json
import logging
import re
import sys

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET = re.compile(r"(?i)((?:password|passwd|secret|auth)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask(text: str) -> str:
    return _URL_PASSWORD.sub(r"\1***@", _SECRET.sub(r"\1***", text))


def _fields(record: logging.LogRecord) -> dict:
    fields = {"ts": round(record.created, 3), "level": record.levelname.lower(),
              "logger": record.name, "msg": record.getMessage()}
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record):
        return mask(json.dumps(_fields(record), default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record):
        fields = _fields(record)
        head = f"{fields.pop('level'):<7} {fields.pop('logger')}: {fields.pop('msg')}"
        fields.pop("ts")
        tail = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())
        return mask(f"{head} {tail}".rstrip())


def setup(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
