"""The config keys the xml_curl service adds."""
import pytest

from fscluster import config
from fscluster.errors import ConfigError


def test_xml_curl_keys_from_the_environment():
    cfg = config.load(environ={"FSCLUSTER_XML_CURL_DB_DEADLINE": "0.5",
                               "FSCLUSTER_CACHE_LOCAL_ENTRIES": "0"})
    assert (cfg.xml_curl_db_deadline, cfg.cache_local_entries) == (0.5, 0)
    assert config.load(environ={}).cache_local_entries == 20000


@pytest.mark.parametrize("env, key", [({"FSCLUSTER_CACHE_LOCAL_ENTRIES": "-1"},
                                       "cache.local_entries"),
                                      ({"FSCLUSTER_XML_CURL_DB_DEADLINE": "soon"},
                                       "xml_curl.db_deadline")])
def test_bad_values_name_the_key(env, key):
    with pytest.raises(ConfigError, match=key):
        config.load(environ=env)
