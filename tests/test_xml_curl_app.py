"""The WSGI layer alone (in-process, fake service): methods, auth, size limit, bad bodies,
and the last line of defence — a bare 500, one log line, no traceback, no secret."""
import base64
import io
import logging

import pytest

from tests.xml_curl_support import fixture_body
from xml_curl.app import make_app
from xml_curl.service import Answer


class FakeService:
    def __init__(self, error=None):
        self.requests, self.error = [], error

    def answer(self, request):
        if self.error:
            raise self.error
        self.requests.append(request)
        return Answer(200, b"<document/>", "cache")


def call(app, method="POST", body=b"", headers=None, query=""):
    environ = {"REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "QUERY_STRING": query}
    environ.update(headers or {})
    seen = {}

    def start_response(status, response_headers):
        seen["status"], seen["headers"] = status, dict(response_headers)

    out = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), seen["headers"], out


def build(service=None, **kwargs):
    service = service or FakeService()
    return service, make_app(service, node_name="pbx1", max_body=1024, **kwargs)


def test_post_and_get_reach_the_service():
    service, app = build()
    status, headers, body = call(app, body=fixture_body("directory-user_call"))
    assert (status, body) == (200, b"<document/>")
    assert headers["Content-Type"].startswith("text/xml")
    status, _h, _b = call(app, method="GET", query="section=dialplan&Caller-Context=x")
    assert status == 200
    assert [r.kind for r in service.requests] == ["user", "dialplan"]


def test_wrong_method_is_405():
    status, headers, _body = call(build()[1], method="PUT", body=b"section=x")
    assert status == 405 and headers["Allow"] == "POST, GET"


def test_body_over_the_limit_is_413_and_not_read():
    service, app = build()
    status, _h, _b = call(app, body=b"section=directory&" + b"x" * 2000)
    assert status == 413 and service.requests == []


def test_not_a_request_is_400():
    status, _h, body = call(build()[1], body=b"hello")
    assert status == 400 and b"section" in body


def test_basic_auth():
    _service, app = build(username="fs", password="pw:with:colons")
    assert call(app, body=b"section=dialplan")[0] == 401
    bad = base64.b64encode(b"fs:nope").decode()
    assert call(app, body=b"section=dialplan",
                headers={"HTTP_AUTHORIZATION": f"Basic {bad}"})[0] == 401
    assert call(app, body=b"section=dialplan",
                headers={"HTTP_AUTHORIZATION": "Basic %%%"})[0] == 401
    good = base64.b64encode(b"fs:pw:with:colons").decode()
    assert call(app, body=b"section=dialplan",
                headers={"HTTP_AUTHORIZATION": f"Basic {good}"})[0] == 200


def test_unexpected_error_is_a_bare_500_with_one_log_line(caplog):
    error = RuntimeError("boom password=hunter2\nsecond line")
    _service, app = build(FakeService(error))
    with caplog.at_level(logging.ERROR, logger="fscluster.xml_curl"):
        status, _h, body = call(app, body=b"section=directory&user=1&domain=d")
    assert (status, body) == (500, b"internal error\n")
    assert b"Traceback" not in body and b"boom" not in body
    [record] = caplog.records
    assert record.error == "RuntimeError" and "second line" not in record.detail
    from fscluster.log import JsonFormatter
    line = JsonFormatter().format(record)
    assert "hunter2" not in line


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_bad_content_length_is_400(length):
    status, _h, _b = call(build()[1], body=b"section=dialplan",
                          headers={"CONTENT_LENGTH": length})
    assert status == 400
