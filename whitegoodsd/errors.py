"""The bottom layer: what a plug says, and how a poll of it fails.

Every other module may import this one; it imports nothing of whitegoodsd.
Codecs under ``protocols/`` raise these errors, drivers pass them on, and the
monitor turns them into one syslog line each.
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
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


class AuthError(PlugError):
    """The plug refused the credentials (or asked for some that were not given)."""


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


def as_failure(exc: BaseException, timeout: float) -> PlugError:
    """``exc`` as a failed poll: a PlugError as it is, anything else described
    in one line, with the original as its cause."""
    if isinstance(exc, PlugError):
        return exc
    failure = PlugError(describe(exc, timeout))
    failure.__cause__ = exc
    return failure


def describe(exc: BaseException, timeout: float) -> str:
    """A one-line reason for an exception raised while polling."""
    if isinstance(exc, PlugError):
        return str(exc)
    if isinstance(exc, TimeoutError):
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
