"""fsemu — an emulated FreeSWITCH 1.10 for tests: event socket, sofia profiles, registrations,
channels and call recovery in the real SQL tables, and a driver to make things happen.

Public API (see docs/fsemu.md): :class:`Emulator`, :class:`Settings`, :class:`ProfileSettings`,
:class:`Binding`, :class:`XmlCurlClient`.
"""
from fsemu.runtime import Emulator
from fsemu.settings import ProfileSettings, Settings
from fsemu.sofia_reg import Binding
from fsemu.xml_curl_client import XmlCurlClient

__all__ = ["Emulator", "Settings", "ProfileSettings", "Binding", "XmlCurlClient"]
