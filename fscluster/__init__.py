"""fscluster: the code shared by the ESL agent, the xml_curl service and the CLI.

Config, DB access, cache and logging live here once; `esl_apps` and `xml_curl` import them.
"""
