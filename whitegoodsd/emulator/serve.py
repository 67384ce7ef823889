"""Starting emulated plugs by family name, and the INI text that watches them.

Shared by ``whitegoodsd emulate`` and ``whitegoodsd demo``: ``kasa-v1`` and
``kasa-v2`` (``kasa`` is v2) are always there; ``inplug`` when its emulator
module is installed.  Each starts a server with a ``port`` and an async
``close()`` on the running event loop.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from whitegoodsd.detector import Settings
from whitegoodsd.emulator import PowerSource


class PlugServer(Protocol):
    """A running emulated plug."""

    @property
    def port(self) -> int: ...

    async def close(self) -> None: ...


Starter = Callable[[str, int, PowerSource, str, int, bool], Awaitable[PlugServer]]


@dataclass(frozen=True)
class Family:
    """One kind of emulated plug."""

    name: str  # as given to --driver
    driver: str  # the daemon's ``driver =`` for it
    default_port: int
    description: str
    start: Starter


def _kasa(shape: str) -> Starter:
    async def start(
        host: str, port: int, source: PowerSource, alias: str, index: int, verbose: bool
    ) -> PlugServer:
        from whitegoodsd.emulator.kasa import start_kasa

        return await start_kasa(
            host, port, source, shape=shape, alias=alias, index=index, verbose=verbose
        )

    return start


async def _inplug(
    host: str, port: int, source: PowerSource, alias: str, index: int, verbose: bool
) -> PlugServer:
    module: Any = importlib.import_module("whitegoodsd.emulator.inplug")
    mac = bytes.fromhex("34ea34") + (0x100000 + index).to_bytes(4, "big")[1:]
    # Real INPLUGs send every reply twice; the driver must cope, so the emulator does too.
    server: PlugServer = await module.start_inplug(
        host, port, source, duplicate=True, mac=mac, name=alias[:60]
    )
    return server


def families() -> dict[str, Family]:
    """Every plug family that can be emulated here, by ``--driver`` name."""
    found = {
        "kasa-v2": Family("kasa-v2", "kasa", 9999, "TP-Link HS110 hardware 2.0 (mW, mV, mA, Wh)",
                          _kasa("v2")),
        "kasa-v1": Family("kasa-v1", "kasa", 9999, "TP-Link HS110 hardware 1.0 (W, V, A, kWh)",
                          _kasa("v1")),
    }  # fmt: skip
    found["kasa"] = found["kasa-v2"]
    if importlib.util.find_spec("whitegoodsd.emulator.inplug") is not None:
        found["inplug"] = Family("inplug", "inplug", 80, "Watts Clever INPLUG (Broadlink SP2)",
                                 _inplug)  # fmt: skip
    return found


@dataclass(frozen=True)
class Watched:
    """An emulated plug as the daemon should see it: one INI section."""

    name: str
    host: str
    port: int
    driver: str
    settings: Settings

    @property
    def plug(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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
        ]
    return "\n".join(lines) + "\n"
