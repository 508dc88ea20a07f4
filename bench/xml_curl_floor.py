"""The HTTP floor for the xml_curl benchmark: the service's own server stack
(:func:`xml_curl.server.serve`, same handler, pool and gevent patching) answering one
constant document without parsing, cache or DB. ``python -m bench.xml_curl_floor``."""
import sys

from xml_curl import server  # noqa: F401  (monkey-patches first, as the service does)
from fscluster import config as config_mod
from xml_curl.xmldoc import NOT_FOUND


def constant_app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8")])
    return [NOT_FOUND]


if __name__ == "__main__":
    sys.exit(server.serve(config_mod.load(), constant_app))
