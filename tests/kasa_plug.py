"""A minimal Kasa plug on 127.0.0.1 for the detection tests, and power profiles to replay.

The plug is an emulated Kasa plug (``emulator/kasa.py``) on a loop thread of
its own, so both an in-process Monitor and a daemon subprocess can poll it;
its hook answers ``emeter.get_realtime`` with what a
:class:`~whitegoodsd.emulator.PowerSource` says, in the hardware v1 shape
(W, kWh floats), the v2 shape (integer mW, Wh) or a shape without an energy
counter, at a fixed 230.5 V.  ``silent`` makes it hang up without a reply, as
a plug that dropped off the network would (after the connect).

:class:`ProfilePower` replays a list of (seconds, watts) phases against a
clock the test controls; its energy counter is the exact integral, which is
the truth the FINISHED line's figures are checked against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.kasa import start_kasa
from whitegoodsd.errors import Reading
from whitegoodsd.protocols import kasa

from kit import LoopThread


@dataclass(frozen=True)
class Phase:
    seconds: float
    watts: float


class ProfilePower:
    """Power phases from ``start`` on the clock; ``idle_w`` before and after."""

    def __init__(
        self,
        phases: Sequence[Phase],
        clock: Callable[[], float],
        start: float,
        idle_w: float = 1.0,
        total_wh: float = 1000.0,
    ) -> None:
        self.phases = list(phases)
        self.clock = clock
        self.start = start
        self.idle_w = idle_w
        self.base_wh = total_wh
        self.origin = clock()  # where the counter stood at base_wh
        self.spike_mw: int | None = None  # reported once, instead of the profile

    @property
    def end(self) -> float:
        return self.start + sum(p.seconds for p in self.phases)

    def watts_at(self, t: float) -> float:
        at = self.start
        if t < at:
            return self.idle_w
        for phase in self.phases:
            if t < at + phase.seconds:
                return phase.watts
            at += phase.seconds
        return self.idle_w

    def energy_wh(self, since: float, until: float) -> float:
        """The exact integral of the power from ``since`` to ``until``."""
        joules = self.idle_w * max(0.0, until - since)
        at = self.start
        for phase in self.phases:
            overlap = max(0.0, min(at + phase.seconds, until) - max(at, since))
            joules += (phase.watts - self.idle_w) * overlap
            at += phase.seconds
        return joules / 3600

    def power_mw(self) -> int:
        if self.spike_mw is not None:
            spike, self.spike_mw = self.spike_mw, None
            return spike
        return round(self.watts_at(self.clock()) * 1000)

    def total_wh(self) -> float:
        return self.base_wh + self.energy_wh(self.origin, self.clock())


class KasaTestPlug:
    """A Kasa plug in a thread, reporting ``source``; ``close()`` when done."""

    def __init__(self, source: PowerSource, shape: str = "v2") -> None:
        assert shape in ("v1", "v2", "no-total")
        self.source = source
        self.shape = shape
        self.silent = False
        self.served = 0
        self.thread = LoopThread()
        self.server = self.thread.run(start_kasa("127.0.0.1", 0, source, misbehave=self._serve))
        self.port: int = self.server.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = kasa.FrameDecoder()
        body = None
        while body is None:
            data = await reader.read(4096)
            if not data:
                return
            body = decoder.feed(data)
        if self.silent:
            return
        kasa.loads(body)
        writer.write(kasa.frame(self.reply()))
        await writer.drain()
        self.served += 1

    def reply(self) -> dict[str, Any]:
        power_mw = self.source.power_mw()
        reading = Reading(
            power_mw=power_mw,
            voltage_mv=230_500,
            current_ma=round(power_mw / 230.5),
            total_wh=None if self.shape == "no-total" else self.source.total_wh(),
        )
        shape = "v1" if self.shape == "v1" else "v2"
        return {"emeter": {"get_realtime": kasa.realtime(reading, shape)}}

    def close(self) -> None:
        self.thread.run(self.server.close())
        self.thread.close()


# Phases of realistic cycles (what a plug in front of the appliance sees).
WASHER = (
    Phase(120, 25),  # fill
    Phase(900, 2150),  # heat
    Phase(1500, 180),  # wash
    Phase(300, 2),  # soak: below a 4 W threshold for 5 minutes
    Phase(600, 180),  # wash
    Phase(60, 40),  # drain
    Phase(900, 120),  # rinse
    Phase(600, 450),  # spin
    Phase(240, 2),  # rinse-to-spin pause
    Phase(305, 500),  # final spin
)  # 1:32:05 in all
DRYER = (
    Phase(3600, 2400),  # heat and tumble
    Phase(1200, 600),  # cool-down tumble
    Phase(90, 2400),  # a last heat burst
)
