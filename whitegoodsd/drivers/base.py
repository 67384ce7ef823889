"""What every plug driver is: a Reading, a PlugError, and the Driver base class.

A driver turns one poll of one plug into a :class:`Reading` or a
:class:`PlugError` whose message is a single line fit for syslog.  The wire
format lives in a sans-I/O codec under ``whitegoodsd.protocols``; a driver is
the thin transport around it.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import math
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Reading:
    """What a plug said about the power flowing through it."""

    power_mw: int
    voltage_mv: int | None = None
    current_ma: int | None = None
    total_wh: float | None = None  # the plug's own energy counter


class PlugError(Exception):
    """A failed poll; ``str()`` is a one-line reason."""


class ProtocolError(PlugError):
    """The plug answered, but not with something we can use."""


def finite(value: object, what: str) -> float:
    """``value`` as a float, or a ProtocolError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{what} is not a number: {value!r:.40}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise ProtocolError(f"{what} is out of range") from None
    if not math.isfinite(number):
        raise ProtocolError(f"{what} is not finite: {value!r:.40}")
    return number


def describe(exc: BaseException, timeout: float) -> str:
    """A one-line reason for an exception raised while polling."""
    if isinstance(exc, PlugError):
        return str(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the plug"
    if isinstance(exc, OSError):
        text = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc)
        return text.splitlines()[0] if text else type(exc).__name__
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class Driver(abc.ABC):
    """One plug.  Subclasses set NAME and DEFAULT_PORT and implement _read()."""

    NAME: ClassVar[str]
    DEFAULT_PORT: ClassVar[int]
    DESCRIPTION: ClassVar[str] = ""

    def __init__(self, host: str, port: int | None, timeout: float) -> None:
        self.host = host
        self.port = self.DEFAULT_PORT if port is None else port
        self.timeout = timeout

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def read(self) -> Reading:
        """Poll the plug once, bounded by ``timeout`` as a whole.

        Raises PlugError with a one-line reason for every kind of failure.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read()
        except PlugError:
            raise
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            raise PlugError(describe(exc, self.timeout)) from exc

    @abc.abstractmethod
    async def _read(self) -> Reading:
        """One exchange with the plug; the caller bounds it in time."""

    async def close(self) -> None:
        """Release anything held between polls (nothing, by default)."""
