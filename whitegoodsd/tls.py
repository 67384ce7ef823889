"""asyncio without ``ssl`` until something uses TLS.

asyncio imports ``ssl`` when it is imported itself, and ``ssl`` maps
OpenSSL's libraries: about 5 MiB of resident memory in a daemon that, with
Kasa or INPLUG plugs, never speaks TLS.  asyncio is written to run without
``ssl`` (on a Python built without it, its modules hold ``ssl = None``), so
:func:`import_asyncio` imports it that way, then gives the modules that
hold ``ssl`` a stand-in: the first time asyncio reaches for anything of
``ssl`` (a TLS connection, server or upgrade), the stand-in imports the real
module and puts it in its own place, so TLS works as it always does, one
import later.

Rules
-----
* Only the command line calls :func:`import_asyncio`, before anything else
  imports asyncio; if asyncio is already imported it does nothing.
* Nothing else changes: a family that needs TLS makes its
  ``ssl.SSLContext`` as usual and hands it to asyncio.
* Asking whether a plain socket is an ``ssl.SSLSocket`` (asyncio does, on
  every ``loop.sock_*`` call) does not load ``ssl``: a socket cannot be one
  while ``ssl`` is not loaded.
"""

from __future__ import annotations

import sys
import types
from typing import Any

# The asyncio modules that bind ``ssl`` at import (3.11 to 3.13).
_HOLDERS = ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto")


class _NotLoaded:
    """What ``ssl.SSLSocket`` is while ``ssl`` is not loaded: nothing is one."""


class _OnDemand(types.ModuleType):
    """Stands in for ``ssl`` in asyncio's modules until it is first used."""

    def __getattr__(self, name: str) -> Any:
        if name == "SSLSocket" and "ssl" not in sys.modules:
            return _NotLoaded
        return getattr(load(), name)


_STAND_IN = _OnDemand("ssl", "ssl, imported when asyncio first uses it")


def load() -> types.ModuleType:
    """Import ``ssl`` and give it to the asyncio modules that were held back."""
    import ssl

    for name in _HOLDERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", None) is _STAND_IN:
            module.ssl = ssl  # type: ignore[attr-defined]
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        # Set at its import when ssl is there: the errors that mean "try again".
        sslproto.SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)  # type: ignore[attr-defined]
    return ssl


def import_asyncio() -> None:
    """Import asyncio with ``ssl`` held back until it is first used."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # makes ``import ssl`` fail
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    for name in _HOLDERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", False) is None:
            module.ssl = _STAND_IN  # type: ignore[attr-defined]
