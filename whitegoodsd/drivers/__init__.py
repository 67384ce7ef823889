"""Plug drivers, found by name.

Every module in this package other than ``base`` defines one Driver subclass
and names it in a module-level ``DRIVER``.  ``driver = NAME`` in the INI file
picks it.  Adding a plug family means adding one module here; nothing else
changes.  Driver modules import their heavy dependencies lazily, so that
listing them costs nothing.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from whitegoodsd.drivers.base import Driver, PlugError, ProtocolError, Reading

__all__ = ["Driver", "PlugError", "ProtocolError", "Reading", "get", "registry"]

DEFAULT = "kasa"


@functools.cache
def registry() -> dict[str, type[Driver]]:
    """Every driver, by its ``driver =`` name."""
    found: dict[str, type[Driver]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        cls = getattr(module, "DRIVER", None)
        if isinstance(cls, type) and issubclass(cls, Driver):
            found[cls.NAME] = cls
    return dict(sorted(found.items()))


def get(name: str) -> type[Driver]:
    """The driver class for ``name``; KeyError if there is none."""
    return registry()[name.lower()]
