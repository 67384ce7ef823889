"""What a KLAP poll costs beside a legacy XOR poll, with python-kasa side by side.

The same farm of plugs (:mod:`benchmarks.plugs`) serves, in turn, the legacy
Kasa protocol, Kasa IOT JSON behind KLAP v1, and Tapo SMART JSON behind KLAP
v2.  Each is polled by whitegoodsd's ``Monitor.poll_pass()``:

* ``session kept``: the normal case, a KLAP session per plug made once and
  reused: one HTTP request per poll on a fresh connection;
* ``new session each poll``: every session dropped before the pass, so each
  poll also does handshake1 and handshake2 (a plug that restarted, or a
  session that ran out);

and by python-kasa 0.12 with its own kept session and connection (the Energy
module's status for Kasa, ``get_energy_usage`` for Tapo).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from benchmarks.passes import HOST, PassFigures, measure
from benchmarks.plugs import Farm
from whitegoodsd import config as configuration
from whitegoodsd.emulator.klap import DEFAULT_USERNAME as USERNAME
from whitegoodsd.monitor import Monitor

PASSWORD = "bench"

KIND_OPTIONS = {
    "xor": "",
    "kasa-klap": f"protocol = klap\nusername = {USERNAME}\npassword = {PASSWORD}\n",
    "tapo": f"driver = tapo\nusername = {USERNAME}\npassword = {PASSWORD}\n",
}


def ini_text(ports: list[int], kind: str, poll_timeout: float) -> str:
    names = [f"P{i}" for i in range(len(ports))]
    sections = "".join(
        f"[{name}]\nsmartplug = {HOST}:{port}\n{KIND_OPTIONS[kind]}"
        "threshold_running_mw = 100000\nminsamples = 3\n"
        for name, port in zip(names, ports, strict=True)
    )
    return (
        f"[whitegoodsd]\nappliances = {', '.join(names)}\ntimeout = {poll_timeout:g}\n"
        f"syslog_address = /dev/log\n{sections}"
    )


async def whitegoodsd_passes(
    farm: Farm, kind: str, poll_timeout: float, repeat: int, fresh_sessions: bool
) -> PassFigures:
    logger = logging.getLogger("whitegoodsd.benchmark")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    config = configuration.parse(ini_text(farm.ports, kind, poll_timeout), "klap.ini")
    monitor = Monitor(config, logger=logger)
    drivers = [a.driver for a in monitor.appliances]

    async def one_pass() -> int:
        if fresh_sessions:
            for driver in drivers:
                driver.klap.live = None  # type: ignore[attr-defined]
        return len((await monitor.poll_pass()).failed)

    how = "new session each poll" if fresh_sessions else "session kept"
    name = f"whitegoodsd {kind}" + ("" if kind == "xor" else f", {how}")
    try:
        return await measure(name, len(farm.ports), repeat, one_pass, True, farm)
    finally:
        await monitor.close()


async def python_kasa_passes(
    farm: Farm, kind: str, poll_timeout: float, repeat: int
) -> PassFigures:
    from kasa import Credentials, Device, DeviceConfig, DeviceConnectionParameters, Module

    logging.getLogger("kasa").setLevel(logging.CRITICAL)
    smart = kind == "tapo"
    family = "SMART.TAPOPLUG" if smart else "IOT.SMARTPLUGSWITCH"
    devices = await asyncio.gather(
        *(
            Device.connect(
                config=DeviceConfig(
                    HOST,
                    port_override=port,
                    timeout=int(poll_timeout),
                    credentials=Credentials(USERNAME, PASSWORD),
                    connection_type=DeviceConnectionParameters.from_values(
                        family, "KLAP", login_version=2 if smart else 1
                    ),
                )
            )
            for port in farm.ports
        )
    )
    usage: dict[str, Any] = {"get_energy_usage": None}

    async def one_pass() -> int:
        polls = [
            d.protocol.query(usage) if smart else d.modules[Module.Energy].get_status()
            for d in devices
        ]
        results = await asyncio.gather(*polls, return_exceptions=True)
        return sum(isinstance(r, Exception) for r in results)

    try:
        return await measure(f"python-kasa {kind}", len(farm.ports), repeat, one_pass,
                             True, farm)  # fmt: skip
    finally:
        await asyncio.gather(*(d.disconnect() for d in devices), return_exceptions=True)


async def klap_rows(size: int, repeat: int, poll_timeout: float) -> list[PassFigures]:
    figures = []
    for kind in ("xor", "kasa-klap", "tapo"):
        family, password = ("kasa", None) if kind == "xor" else (kind, PASSWORD)
        with Farm(size, family=family, password=password) as farm:
            figures.append(await whitegoodsd_passes(farm, kind, poll_timeout, repeat, False))
            if kind != "xor":
                figures.append(await whitegoodsd_passes(farm, kind, poll_timeout, repeat, True))
                figures.append(await python_kasa_passes(farm, kind, poll_timeout, repeat))
    return figures
