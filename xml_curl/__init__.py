"""The xml_curl service: answers FreeSWITCH's mod_xml_curl lookups (directory, dialplan,
sofia.conf) from the FusionPBX-compatible tables, through memcached.

Pure parts (request parsing, XML rendering) are apart from effects (SQL in ``queries``,
cache and DB orchestration in ``service``, HTTP in ``app``/``server``)."""
