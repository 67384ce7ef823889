"""What a plug family is: its name, its INI keys, and how one poll goes.

A family is one module under ``drivers/`` whose ``DRIVER`` is a subclass of
:class:`Driver`.  The class says everything the rest of the program needs to
know about the family, so that adding one changes no other file:

* ``NAME`` (``driver = NAME``), ``DESCRIPTION`` (one line for ``--help`` and
  the man page), ``DEFAULT_PORT`` (None for families not reached by address);
* ``OPTIONS``: the INI keys it adds to an appliance's section, with their
  parser, default and man-page text; an option marked ``shared`` may also be
  set in ``[whitegoodsd]`` as the default for every appliance;
* ``check(plug)``: problems with a plug's address or options that the parsers
  alone cannot see (a family that cannot use IPv6, say);
* ``PUSHED``: False for a polled family, whose ``poll()`` is a conversation
  (``conversation.py``) the engine runs once a pass; True for a family whose
  plugs send readings on their own through a shared ``HUB``;
* ``EMULATOR`` and ``DISCOVERY``: modules (imported only when used) that
  serve emulated plugs of the family and find real ones.

Errors and Reading live in ``errors.py``; they are re-exported here for the
families' convenience.
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from whitegoodsd.conversation import Conversation
from whitegoodsd.errors import AuthError, PlugError, ProtocolError, Reading, describe, finite

__all__ = [
    "AuthError",
    "Driver",
    "Option",
    "PlugError",
    "ProtocolError",
    "Reading",
    "describe",
    "finite",
    "format_address",
]


@dataclass(frozen=True)
class Option:
    """An INI key that a family adds to its appliances' sections."""

    name: str
    parse: Callable[[str], Any]  # text -> value, or ValueError with a message
    help: str  # for the man page: what it is, its unit, its default
    default: Any = None
    required: bool = False
    shared: bool = False  # may be set in [whitegoodsd] as the default for all
    metavar: str = "VALUE"
    secret: bool = False  # never printed (by --check-config, discover, ...)


def _text(value: str) -> str:
    return value


# The credentials a plug may ask for, named alike by every family that needs
# them, so that [whitegoodsd] can give them once for all.
USERNAME = Option(
    "username",
    _text,
    "The user name the plug asks for: for TP-Link KLAP and Tapo plugs the TP-Link "
    "account (e-mail address) the plug was set up with, as typed in the vendor's app "
    "(case matters; the well-known default credentials of unprovisioned plugs are "
    "tried too); for a Shelly Gen1 its web login (default admin; Gen2 and later always "
    "use admin); for Tasmota the web user (default admin).",
    shared=True,
    metavar="NAME",
)
PASSWORD = Option(
    "password",
    _text,
    "The password that goes with it (none by default).  Keep a file holding it "
    "unreadable by others (mode 0600 or 0640); see SECURITY in whitegoodsd(8).",
    shared=True,
    secret=True,
    metavar="PASSWORD",
)


def split_host_port(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT``."""
    text = text.strip()
    if not text:
        raise ValueError("expected HOST or HOST:PORT")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"unclosed '[' in {text!r}")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"expected ':PORT' after ']' in {text!r}")
        return host, parse_port(rest[1:])
    if text.count(":") > 1:
        return _bare_ipv6(text), None
    host, sep, port = text.partition(":")
    if not host:
        raise ValueError(f"missing host in {text!r}")
    return host, parse_port(port) if sep else None


def _bare_ipv6(text: str) -> str:
    """An IPv6 address written without brackets (and so without a port)."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        address, _, port = text.rpartition(":")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address") from None
        raise ValueError(
            f"{text!r} is not an IPv6 address; for a port, write [{address}]:{port}"
        ) from None
    return text


def parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def format_address(host: str, port: int | None) -> str:
    """``HOST:PORT``, with an IPv6 address in brackets; ``HOST`` without a port."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class Driver(abc.ABC):
    """One plug of a family.  Subclasses set the class variables below."""

    NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str] = ""
    DEFAULT_PORT: ClassVar[int | None]
    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    PUSHED: ClassVar[bool] = False
    HUB: ClassVar[str | None] = None  # module of the shared connection (pushed families)
    EMULATOR: ClassVar[str | None] = None  # module: emulated plugs of this family
    DISCOVERY: ClassVar[str | None] = None  # module: finding plugs of this family

    def __init__(
        self,
        host: str,
        port: int | None,
        timeout: float,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = self.default_port(options or {}) if port is None else port
        self.timeout = timeout
        values = {o.name: o.default for o in self.OPTIONS}
        values.update(options or {})
        self.options: Mapping[str, Any] = values
        self.setup()

    def setup(self) -> None:
        """Make what a plug of this family keeps between polls (a session, a
        codec's client) from ``options``: called at the end of ``__init__``."""

    @classmethod
    def default_port(cls, options: Mapping[str, Any]) -> int | None:
        """The port of a plug whose ``smartplug`` names none (``DEFAULT_PORT``,
        unless an option says otherwise)."""
        return cls.DEFAULT_PORT

    @classmethod
    def parse_smartplug(cls, text: str) -> tuple[str, int | None]:
        """``smartplug =`` as (host, port); ValueError with a message if bad."""
        return split_host_port(text)

    @classmethod
    def check(cls, host: str, port: int | None, options: Mapping[str, Any]) -> list[str]:
        """Problems with this plug's address or options, one line each."""
        return []

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def poll(self) -> Conversation[Reading]:
        """One poll of the plug, as a conversation the engine runs.

        Raises PlugError (through the conversation) for a reply it cannot use.
        """
        raise NotImplementedError(f"{self.NAME} plugs push their readings")

    def notes(self) -> list[str]:
        """What the driver learned since the last call that is worth a debug line
        (which credentials a plug took, which protocol answered); drivers cannot log."""
        return []

    async def read(self) -> Reading:
        """Poll the plug once on its own, bounded by ``timeout``; PlugError on failure."""
        from whitegoodsd import engine

        outcome = (await engine.run([self.poll()], self.timeout))[0]
        if isinstance(outcome, PlugError):
            raise outcome
        return outcome

    async def close(self) -> None:
        """Release anything held between polls (a session), when the plug is retired."""
