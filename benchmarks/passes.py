"""Poll passes over a farm of plugs: whitegoodsd next to python-kasa and a sequential client.

Three clients read the same ``emeter.get_realtime`` from the same plugs,
served by a farm in another process (:mod:`benchmarks.plugs`):

* whitegoodsd: one ``Monitor.poll_pass()``, a fresh connection per poll,
  every plug at once up to ``max_in_flight()``;
* python-kasa: ``IotPlug`` per plug, connected and ``update()``-d once
  beforehand, then the Energy module's ``get_status()`` for every plug at
  once over its kept-open connection (its normal use, default retries);
* whitegoodsd --once: the command line's ``--once`` in this process (its
  drivers made from the configuration, one ``poll_all``, a line printed
  per plug), the start of the interpreter left out;
* sequential: one plug after another, a fresh blocking connection each, as
  the original daemon did.

Figures are over ``repeat`` passes after one warm-up pass: the median wall
time, and the mean CPU time per poll of this process (user + system, the
system part apart) and of the farm.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import resource
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.plugs import Farm
from whitegoodsd import cli
from whitegoodsd import config as configuration
from whitegoodsd.errors import ProtocolError
from whitegoodsd.monitor import Monitor
from whitegoodsd.protocols import kasa

HOST = "127.0.0.1"


@dataclass(frozen=True)
class PassFigures:
    """What a client's passes cost."""

    client: str
    plugs: int
    wall: float  # seconds per pass, median
    cpu_per_poll: float  # seconds of CPU per plug polled, mean over the passes
    kernel_per_poll: float  # the system (kernel) part of it
    failed: int  # polls that failed in the last pass
    farm_cpu_per_poll: float | None = None  # the plugs' side, mean over the passes


def ini_text(
    ports: list[int],
    poll_timeout: float,
    interval: float = 60.0,
    idle_interval: float | None = None,
    syslog_address: str = "/dev/log",
    inplug_ports: Sequence[int] = (),
    textfile: str | None = None,
) -> str:
    """A config watching one appliance per port (Kasa on TCP, then INPLUGs on UDP);
    the farm's 61.753 W keeps them idle."""
    plugs = [("kasa", port) for port in ports] + [("inplug", port) for port in inplug_ports]
    names = [f"P{i}" for i in range(len(plugs))]
    sections = "".join(
        f"[{name}]\ndriver = {driver}\nsmartplug = {HOST}:{port}\n"
        "threshold_running_mw = 100000\nminsamples = 3\n"
        for name, (driver, port) in zip(names, plugs, strict=True)
    )
    idle = interval if idle_interval is None else idle_interval
    output = f"textfile = {textfile}\n" if textfile else ""
    return (
        f"[whitegoodsd]\nappliances = {', '.join(names)}\ntimeout = {poll_timeout:g}\n"
        f"monitor_interval = {interval:g}\nmonitor_interval_nothing_running = {idle:g}\n"
        f"syslog_address = {syslog_address}\n{output}{sections}"
    )


async def measure(
    name: str,
    plugs: int,
    repeat: int,
    one_pass: Callable[[], Awaitable[int]],
    warm_up: bool = True,
    farm: Farm | None = None,
) -> PassFigures:
    """Run ``one_pass`` (answering how many polls failed) ``repeat`` times, after a warm-up."""
    if warm_up:
        await one_pass()  # imports, caches, first connections
    walls, cpus, kernels = [], [], []
    failed = 0
    farm_cpu = farm.cpu() if farm else 0.0
    for _ in range(repeat):
        gc.collect()
        usage, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        failed = await one_pass()
        walls.append(time.perf_counter() - wall)
        after = resource.getrusage(resource.RUSAGE_SELF)
        kernels.append(after.ru_stime - usage.ru_stime)
        cpus.append(after.ru_utime - usage.ru_utime + kernels[-1])
    farm_per_poll = (farm.cpu() - farm_cpu) / (repeat * plugs) if farm else None
    return PassFigures(
        name,
        plugs,
        statistics.median(walls),
        # Summed: the kernel accounts CPU time in ticks, too coarse for one short pass.
        sum(cpus) / (repeat * plugs),
        sum(kernels) / (repeat * plugs),
        failed,
        farm_per_poll,
    )


async def whitegoodsd_passes(
    farm: Farm, poll_timeout: float, repeat: int, warm_up: bool = True
) -> PassFigures:
    ports = farm.ports
    logger = logging.getLogger("whitegoodsd.benchmark")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.INFO)  # what the daemon does without log_debug
    config = configuration.parse(ini_text(ports, poll_timeout), "benchmark.ini")
    monitor = Monitor(config, logger=logger)

    async def one_pass() -> int:
        return len((await monitor.poll_pass()).failed)

    try:
        return await measure("whitegoodsd", len(ports), repeat, one_pass, warm_up, farm)
    finally:
        await monitor.close()


async def once_passes(
    farm: Farm, poll_timeout: float, repeat: int, warm_up: bool = True
) -> PassFigures:
    config = configuration.parse(ini_text(farm.ports, poll_timeout), "benchmark.ini")

    def once() -> int:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            cli.once(config)
        return sum("  error: " in line for line in printed.getvalue().splitlines())

    async def one_pass() -> int:
        return await asyncio.to_thread(once)  # --once runs a loop of its own

    return await measure("whitegoodsd --once", len(farm.ports), repeat, one_pass, warm_up, farm)


async def python_kasa_passes(
    farm: Farm,
    poll_timeout: float,
    repeat: int,
    warm_up: bool = True,
    retries: int | None = None,
) -> PassFigures:
    from kasa import KasaException, Module
    from kasa.deviceconfig import DeviceConfig
    from kasa.iot import IotPlug

    logging.getLogger("kasa").setLevel(logging.CRITICAL)
    ports, silent = farm.ports, farm.silent
    plugs = [
        IotPlug(HOST, config=DeviceConfig(HOST, port_override=port, timeout=int(poll_timeout)))
        for port in ports
    ]
    alive = [p for i, p in enumerate(plugs) if i not in silent]
    dead = [p for i, p in enumerate(plugs) if i in silent]
    await asyncio.gather(*(p.update() for p in alive))
    realtime: dict[str, Any] = {"emeter": {"get_realtime": {}}}

    async def one_pass() -> int:
        polls: list[Awaitable[object]] = [p.modules[Module.Energy].get_status() for p in alive]
        # A plug that never answered has no modules: the same query, the same retries.
        if retries is None:
            polls += [p.protocol.query(realtime) for p in dead]
        else:
            polls += [p.protocol.query(realtime, retry_count=retries) for p in dead]
        results = await asyncio.gather(*polls, return_exceptions=True)
        return sum(isinstance(r, KasaException | TimeoutError) for r in results)

    try:
        name = "python-kasa" if retries is None else f"python-kasa, {retries} retries"
        return await measure(name, len(ports), repeat, one_pass, warm_up, farm)
    finally:
        await asyncio.gather(*(p.disconnect() for p in plugs), return_exceptions=True)


def read_sequentially(port: int, poll_timeout: float) -> bool:
    """One poll on a fresh blocking connection; whether it gave a reading."""
    try:
        with socket.create_connection((HOST, port), timeout=poll_timeout) as sock:
            sock.sendall(kasa.frame(kasa.GET_REALTIME))
            decoder = kasa.FrameDecoder()
            while True:
                data = sock.recv(4096)
                body = decoder.feed(data) if data else decoder.feed_eof()
                if body is not None:
                    kasa.parse_realtime(kasa.loads(body))
                    return True
    except (OSError, ProtocolError):
        return False


async def sequential_passes(
    farm: Farm, poll_timeout: float, repeat: int, warm_up: bool = True
) -> PassFigures:
    async def one_pass() -> int:
        return sum(not read_sequentially(port, poll_timeout) for port in farm.ports)

    return await measure("sequential", len(farm.ports), repeat, one_pass, warm_up, farm)
