"""Starting emulated plugs by family name, and the INI text that watches them.

Shared by ``whitegoodsd emulate`` and ``whitegoodsd demo``.  Every plug
family (``drivers/``) names the module that emulates it (``EMULATOR``); that
module offers its variants as ``EMULATED``, a tuple of :class:`Family`, and
may add options of its own to ``whitegoodsd emulate`` with
``add_arguments(group)``.  A variant's ``start`` serves one plug on the
running event loop and returns something with a ``port`` and an async
``close()``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from whitegoodsd.detector import Settings
from whitegoodsd.drivers.base import format_address
from whitegoodsd.emulator import PowerSource


class PlugServer(Protocol):
    """A running emulated plug."""

    @property
    def port(self) -> int: ...

    async def close(self) -> None: ...


# (host, port, power, alias, index, verbose, the emulate command's options or None)
Starter = Callable[
    [str, int, PowerSource, str, int, bool, argparse.Namespace | None], Awaitable[PlugServer]
]


def _no_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class Family:
    """One kind of emulated plug."""

    name: str  # as given to --driver
    driver: str  # the daemon's ``driver =`` for it
    default_port: int
    description: str
    start: Starter
    # INI keys the daemon needs for it (credentials, a format), from the options
    ini_options: Callable[[argparse.Namespace | None], list[tuple[str, str]]] = field(
        default=_no_options
    )
    # keys of [whitegoodsd] the daemon needs for it (a broker), from the options
    ini_globals: Callable[[argparse.Namespace | None], list[tuple[str, str]]] = field(
        default=_no_options
    )


@functools.cache
def modules() -> tuple[ModuleType, ...]:
    """Every family's emulator module, in the order of the driver registry."""
    from whitegoodsd import drivers

    found: list[ModuleType] = []
    for family in drivers.registry().values():
        if family.EMULATOR and all(m.__name__ != family.EMULATOR for m in found):
            found.append(importlib.import_module(family.EMULATOR))
    return tuple(found)


def families() -> dict[str, Family]:
    """Every plug that can be emulated here, by ``--driver`` name."""
    found: dict[str, Family] = {}
    for module in modules():
        for family in getattr(module, "EMULATED", ()):
            found.setdefault(family.name, family)
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options each family's emulator adds to ``whitegoodsd emulate``."""
    for module in modules():
        adder = getattr(module, "add_arguments", None)
        if adder is not None:
            adder(parser.add_argument_group(f"{module.__name__.rsplit('.', 1)[-1]} plugs"))


@dataclass(frozen=True)
class Watched:
    """An emulated plug as the daemon should see it: one INI section."""

    name: str
    host: str
    port: int
    driver: str
    settings: Settings
    options: tuple[tuple[str, str], ...] = ()  # the family's own INI keys
    smartplug: str | None = None  # what smartplug = says, if not HOST:PORT (a topic)

    @property
    def plug(self) -> str:
        return self.smartplug or format_address(self.host, self.port)


def seconds(value: float) -> str:
    """A duration for the INI file: short, and exact enough."""
    return f"{value:.6g}"


def ini_text(
    plugs: Sequence[Watched],
    *,
    speed: float = 1.0,
    extra: Sequence[tuple[str, str]] = (),
    monitor_interval: float = 60.0,
    monitor_interval_nothing_running: float = 900.0,
) -> str:
    """An INI file watching ``plugs``, its intervals divided by ``speed``.

    The detector counts samples, so a replay ``speed`` times faster than real
    time needs polls ``speed`` times more often for the counts to mean what
    they mean in real time.
    """
    lines = [
        "[whitegoodsd]",
        f"appliances = {', '.join(p.name for p in plugs)}",
        f"monitor_interval = {seconds(monitor_interval / speed)}",
        f"monitor_interval_nothing_running = {seconds(monitor_interval_nothing_running / speed)}",
        *(f"{key} = {value}" for key, value in extra),
    ]
    for p in plugs:
        s = p.settings
        lines += [
            "",
            f"[{p.name}]",
            f"smartplug = {p.plug}",
            f"driver = {p.driver}",
            f"threshold_running_mw = {s.threshold_running_mw}",
            f"minsamples = {s.minsamples}",
            f"threshold_finished_mw = {s.threshold_finished_mw}",
            f"minsamples_finished = {s.minsamples_finished}",
            *(f"{key} = {value}" for key, value in p.options),
        ]
    return "\n".join(lines) + "\n"
