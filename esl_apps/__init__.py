"""The ESL agent: one gevent service per FreeSWITCH, attached to its event socket."""
