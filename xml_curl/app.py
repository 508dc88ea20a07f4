"""The WSGI face of the service: HTTP in, one :class:`~xml_curl.service.Answer` out.

What mod_xml_curl sends is a POST (or, with ``method=GET``, a query string) of a form;
this layer only guards the door — method (405), optional basic auth (401, the binding's
``gateway-credentials``), body size (413), a body that is not a request at all (400) — and
turns any unexpected error into a bare 500 with one structured log line: FreeSWITCH never
sees a traceback, and no request value (which may hold digest material) is logged.
"""
import base64
import binascii
import hmac
import logging
import time

from xml_curl import request as rq
from xml_curl.service import LookupService

log = logging.getLogger("fscluster.xml_curl")

_XML = [("Content-Type", "text/xml; charset=utf-8")]
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]
_REASONS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized",
            405: "405 Method Not Allowed", 413: "413 Payload Too Large",
            500: "500 Internal Server Error", 503: "503 Service Unavailable"}


class _Reject(Exception):
    def __init__(self, status: int, message: str, headers=()):
        super().__init__(message)
        self.status, self.headers = status, list(headers)


def _check_auth(environ, username: str, password: str) -> None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, token = header.partition(" ")
    try:
        given = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    expected = f"{username}:{password}"
    if scheme.lower() != "basic" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise _Reject(401, "authentication required",
                      [("WWW-Authenticate", 'Basic realm="fscluster xml_curl"')])


def _read_body(environ, max_body: int) -> bytes:
    method = environ.get("REQUEST_METHOD", "")
    if method == "GET":
        query = environ.get("QUERY_STRING", "")
        if len(query) > max_body:
            raise _Reject(413, f"query string over {max_body} bytes")
        return query.encode("latin-1", "replace")
    if method != "POST":
        raise _Reject(405, "use POST (or GET)", [("Allow", "POST, GET")])
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _Reject(400, "bad Content-Length") from None
    if length > max_body:
        raise _Reject(413, f"body over {max_body} bytes")
    return environ["wsgi.input"].read(length) if length > 0 else b""


def make_app(service: LookupService, *, node_name: str, max_body: int,
             username: str = "", password: str = ""):
    """A WSGI callable answering mod_xml_curl for ``node_name`` (used when a request
    carries no ``hostname``)."""

    def app(environ, start_response):
        started = time.monotonic()
        try:
            if username:
                _check_auth(environ, username, password)
            request = rq.parse(_read_body(environ, max_body), default_hostname=node_name)
            answer = service.answer(request)
        except _Reject as exc:
            start_response(_REASONS[exc.status], _TEXT + exc.headers)
            return [f"{exc}\n".encode()]
        except rq.RequestError as exc:
            start_response(_REASONS[400], _TEXT)
            return [f"{exc}\n".encode()]
        except Exception as exc:  # the last line of defence: log, answer a bare 500
            log.error("lookup failed", extra={"error": type(exc).__name__,
                                              "detail": (str(exc).splitlines() or [""])[0][:200]})
            start_response(_REASONS[500], _TEXT)
            return [b"internal error\n"]
        headers = _XML if answer.status == 200 else _TEXT
        start_response(_REASONS[answer.status],
                       headers + [("X-Fscluster-Source", answer.source)])
        if log.isEnabledFor(logging.DEBUG):
            log.debug("answered", extra={"kind": request.kind, "status": answer.status,
                                         "source": answer.source,
                                         "ms": round((time.monotonic() - started) * 1000, 2)})
        return [answer.body]

    return app
