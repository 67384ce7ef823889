"""Per-poll CPU of each plug family, beside the Kasa XOR poll.

The same Monitor passes as ``passes.whitegoodsd_passes``, over a farm of one
emulated family at a time (served by another process on 127.0.0.1), with
and without a password: what an HTTP poll (h11 framing, JSON, digest) costs
next to the legacy Kasa one (one XOR frame each way).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from benchmarks.passes import HOST, measure
from benchmarks.plugs import Farm
from whitegoodsd import config as configuration
from whitegoodsd.emulator.serve import families
from whitegoodsd.monitor import Monitor

# (emulate --driver name, password)
CASES: tuple[tuple[str, str | None], ...] = (
    ("kasa", None),
    ("shelly-gen1", None),
    ("shelly-gen1", "s3cret"),
    ("shelly-gen2", None),
    ("shelly-gen2", "s3cret"),
    ("tasmota", None),
    ("tasmota", "s3cret"),
)


@dataclass(frozen=True)
class FamilyFigures:
    family: str
    password: bool
    plugs: int
    wall: float
    cpu_per_poll: float
    failed: int
    farm_cpu_per_poll: float | None


def ini_text(driver: str, ports: list[int], poll_timeout: float, password: str | None) -> str:
    names = [f"P{i}" for i in range(len(ports))]
    secret = f"password = {password}\n" if password else ""
    sections = "".join(
        f"[{name}]\nsmartplug = {HOST}:{port}\ndriver = {driver}\n"
        f"threshold_running_mw = 100000\nminsamples = 3\n{secret}"
        for name, port in zip(names, ports, strict=True)
    )
    return (
        f"[whitegoodsd]\nappliances = {', '.join(names)}\ntimeout = {poll_timeout:g}\n"
        f"monitor_interval = 60\nmonitor_interval_nothing_running = 60\n{sections}"
    )


async def family_passes(
    family: str, password: str | None, plugs: int, poll_timeout: float, repeat: int
) -> FamilyFigures:
    driver = families()[family].driver
    logger = logging.getLogger("whitegoodsd.benchmark")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    with Farm(plugs, family=family, password=password) as farm:
        text = ini_text(driver, farm.ports, poll_timeout, password)
        monitor = Monitor(configuration.parse(text, "benchmark.ini"), logger=logger)

        async def one_pass() -> int:
            return len((await monitor.poll_pass()).failed)

        try:
            # The warm-up pass identifies the Shellys and takes the first digest nonce.
            figures = await measure(family, plugs, repeat, one_pass, True, farm)
        finally:
            await monitor.close()
    return FamilyFigures(
        family, password is not None, plugs, figures.wall, figures.cpu_per_poll,
        figures.failed, figures.farm_cpu_per_poll,
    )  # fmt: skip


async def all_families(plugs: int, poll_timeout: float, repeat: int) -> list[FamilyFigures]:
    return [await family_passes(f, p, plugs, poll_timeout, repeat) for f, p in CASES]
