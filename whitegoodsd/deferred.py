"""Library modules run when first used, not when imported.

Plug families import what their polls need at the top of their modules, as
they should, and the registry imports every family to learn its INI keys.
So a daemon watching only legacy Kasa plugs would load h11 for the HTTP
families and hashlib, which maps OpenSSL's libcrypto (about 3.5 MiB
resident), for digests and KLAP; and a few standard modules (difflib for
"did you mean" hints, tempfile and what it pulls in) only a rare path uses.

:func:`defer` puts a stand-in module in ``sys.modules`` for each of
:data:`DEFERRED`: ``import hashlib`` binds it at once (it has the module's
spec, so the import system takes it as loaded), and the first attribute
asked of it imports the real module and copies the real module's namespace
into the stand-in, so every later access is an ordinary attribute.
(``importlib.util.LazyLoader`` cannot do this: the import statement reads
``__spec__``, which makes it load at once.)

Rules
-----
* Only pure-Python modules whose import has no side effect anyone relies
  on (an extension module cannot be deferred).
* Only the command line calls :func:`defer`, before anything imports these
  modules; one already imported is left as it is.
* Once loaded, the stand-in holds the real module's names as they were
  then: use the module's functions and classes through it, not a variable
  the module rebinds later (``tempfile.tempdir``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("hashlib", "hmac", "uuid", "h11", "difflib", "base64", "datetime", "tempfile")


class _Deferred(types.ModuleType):
    """A module not imported yet: its first missing attribute imports it."""

    def __getattr__(self, attribute: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attribute)


def defer(names: tuple[str, ...] = DEFERRED) -> None:
    """Make each of ``names`` load on first use."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue  # not installed: the import fails later, where it is made
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec
        stand_in.__loader__ = spec.loader
        stand_in.__file__ = spec.origin
        if spec.submodule_search_locations is not None:
            stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = stand_in
