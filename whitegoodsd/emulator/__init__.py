"""Emulated plugs: real protocol servers that replay power profiles.

Each emulated plug speaks its family's protocol through the same codec the
driver uses, and asks a :class:`PowerSource` what to report.  Users test their
rsyslog rules with them; the demo, the tests and the benchmarks run on them.

``kasa`` and ``inplug`` are the plugs (``start_kasa``, ``start_inplug``),
``profiles`` the power profiles and their :class:`~.profiles.Replay`,
``serve`` starts plugs by family name, ``command`` is ``whitegoodsd emulate``.
In-process use, as the tests and benchmarks do::

    raise_open_file_limit()
    server = await start_kasa("127.0.0.1", 0, Replay(builtin("washer"), speed=600))
    ...  # poll 127.0.0.1:server.port
    await server.close()
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Protocol


class PowerSource(Protocol):
    """What an emulated plug reports: power now, and its energy counter."""

    def power_mw(self) -> int: ...

    def total_wh(self) -> float: ...


class SettablePower:
    """A power source set by hand (tests), integrating energy over time."""

    def __init__(self, power_mw: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._power_mw = power_mw
        self._since = clock()
        self._total_wh = 0.0

    def set(self, power_mw: int) -> None:
        self._accumulate()
        self._power_mw = power_mw

    def power_mw(self) -> int:
        return self._power_mw

    def total_wh(self) -> float:
        self._accumulate()
        return self._total_wh

    def _accumulate(self) -> None:
        now = self._clock()
        self._total_wh += self._power_mw / 1000 * (now - self._since) / 3600
        self._since = now


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; return it.

    Each emulated plug holds two sockets (TCP and UDP) plus one per open
    connection: a thousand plugs need more than the usual soft limit of 1,024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft
