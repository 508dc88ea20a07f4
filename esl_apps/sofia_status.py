"""Parse ``sofia status`` (mod_sofia.c ``cmd_status``): which profiles are loaded, in what state.

The reply is a table of ``Name\\tType\\tData\\tState`` rows padded with spaces, e.g.
``vip1\\tprofile\\tsip:mod_sofia@127.0.0.1:5090\\tRUNNING (2)``, then ``N profile(s) M
aliases`` (fixtures/freeswitch-1.10.12/README.md). A profile still starting or stopping is
listed with another state; one not loaded is absent.
"""
from typing import Dict


def profile_states(status_text: str) -> Dict[str, str]:
    """``sofia status`` → {profile name: state}, e.g. ``{"vip1": "RUNNING (2)"}``."""
    states = {}
    for line in status_text.splitlines():
        parts = [part.strip() for part in line.split("\t")]
        if len(parts) >= 4 and parts[1] == "profile":
            states[parts[0]] = parts[3]
    return states
