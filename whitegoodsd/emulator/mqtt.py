"""Emulated MQTT-fed plugs: publishers that replay a power profile to a broker.

``whitegoodsd emulate --driver mqtt --mqtt-format FORMAT --broker HOST:PORT``
connects one client per plug to the broker and publishes what the profile
draws as the real publisher of that format would:

* ``zigbee2mqtt``: ``zigbee2mqtt/NAME``, the device's JSON state (``power``
  W, ``energy`` kWh, ``voltage``, ``current``), on change; availability
  ``zigbee2mqtt/NAME/availability`` ``{"state":"online"}``, retained, with
  ``{"state":"offline"}`` as the last will;
* ``tasmota``: ``tele/NAME/SENSOR`` every ``--mqtt-period`` seconds and on
  a change of power (as ``PowerDelta`` makes Tasmota do), ``tele/NAME/LWT``
  ``Online``/``Offline``;
* ``shelly``: ``NAME/events/rpc`` ``NotifyStatus`` frames carrying
  ``switch:0`` ``apower`` and ``aenergy``, on change; ``NAME/online``;
* ``esphome``: ``NAME/sensor/power/state`` a number of W, on change;
  ``NAME/status``;
* ``plain``: ``NAME/power`` a number of W; ``json:PATH``: ``NAME/state``, a
  JSON object with the power at PATH.

A change is a difference of half a watt or more, looked at every
``--mqtt-interval`` seconds (default 1).  The payloads are built by the same
module that decodes them (``protocols/mqtt_formats.py`` reads what
:func:`payloads` writes), and, for Tasmota, checked against HATasmota in the
tests.  Each plug reconnects like the daemon does when the broker goes away,
and publishes its state again when it is back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import time
from typing import Any

from whitegoodsd.drivers.base import split_host_port
from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.serve import Family, PlugServer
from whitegoodsd.mqtt.link import Broker, Link, Will
from whitegoodsd.protocols import mqtt_formats

log = logging.getLogger("whitegoodsd.emulator")
DEFAULT_BROKER = "127.0.0.1:1883"
VOLTAGE = 230.0
CHANGE_W = 0.5


def topic_name(alias: str) -> str:
    """A device topic from an appliance name: what the publishers allow in one."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", alias).strip("_").lower() or "plug"


def smartplug(format_name: str, name: str) -> str:
    """What ``smartplug =`` says for an emulated plug called ``name``."""
    if format_name == "zigbee2mqtt":
        return f"zigbee2mqtt/{name}"
    if format_name == "esphome":
        return f"{name}/sensor/power/state"
    if format_name == "plain":
        return f"{name}/power"
    if format_name.startswith("json:"):
        return f"{name}/state"
    return name  # tasmota: the device's topic; shelly: its topic prefix


def presence(format_name: str, name: str, online: bool) -> tuple[str, bytes] | None:
    """The topic and payload by which the publisher says it is there (or gone)."""
    if format_name == "zigbee2mqtt":
        state = "online" if online else "offline"
        return f"zigbee2mqtt/{name}/availability", json.dumps({"state": state}).encode()
    if format_name == "tasmota":
        return f"tele/{name}/LWT", b"Online" if online else b"Offline"
    if format_name == "shelly":
        return f"{name}/online", b"true" if online else b"false"
    if format_name == "esphome":
        return f"{name}/status", b"online" if online else b"offline"
    return None


def payloads(
    format_name: str, name: str, watts: float, total_wh: float, at: float
) -> list[tuple[str, bytes]]:
    """The messages a publisher of ``format_name`` sends for one reading."""
    watts = round(watts, 1)
    amps = round(watts / VOLTAGE, 3)
    if format_name == "zigbee2mqtt":
        state = {"state": "ON", "power": watts, "energy": round(total_wh / 1000, 3),
                 "voltage": VOLTAGE, "current": amps, "linkquality": 120}  # fmt: skip
        return [(f"zigbee2mqtt/{name}", json.dumps(state).encode())]
    if format_name == "tasmota":
        energy = {"TotalStartTime": "2026-01-01T00:00:00", "Total": round(total_wh / 1000, 3),
                  "Yesterday": 0.0, "Today": round(total_wh / 1000, 3), "Period": 0,
                  "Power": round(watts), "ApparentPower": round(watts), "ReactivePower": 0,
                  "Factor": 1.0 if watts else 0.0, "Voltage": round(VOLTAGE),
                  "Current": amps}  # fmt: skip
        sensor = {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"), "ENERGY": energy}
        return [(f"tele/{name}/SENSOR", json.dumps(sensor, separators=(",", ":")).encode())]
    if format_name == "shelly":
        status = {"id": 0, "apower": watts, "voltage": VOLTAGE, "current": amps,
                  "aenergy": {"total": round(total_wh, 3)}}  # fmt: skip
        frame = {"src": name, "dst": f"{name}/events", "method": "NotifyStatus",
                 "params": {"ts": round(at, 2), "switch:0": status}}  # fmt: skip
        return [(f"{name}/events/rpc", json.dumps(frame, separators=(",", ":")).encode())]
    if format_name in ("esphome", "plain"):
        return [(smartplug(format_name, name), f"{watts:g}".encode())]
    document: Any = watts
    for step in reversed(format_name[5:].split(".")):
        document = [document] if step == "0" else {step: document}
    return [(f"{name}/state", json.dumps(document).encode())]


class MqttPublisher:
    """One emulated plug: a broker connection and a task that publishes."""

    def __init__(
        self,
        broker: Broker,
        format_name: str,
        name: str,
        source: PowerSource,
        *,
        interval: float = 1.0,
        period: float | None = None,
        verbose: bool = False,
    ) -> None:
        self.format = format_name
        self.name = name
        self.source = source
        self.interval = interval
        self.period = period
        self.verbose = verbose
        self.smartplug = smartplug(format_name, name)
        self.broker = broker
        gone = presence(format_name, name, online=False)
        self.link = Link(
            broker,
            on_message=lambda topic, payload: None,
            on_up=self._up,
            will=Will(*gone) if gone else None,
            log=log,
        )
        self.published = 0
        self._last: float | None = None  # watts last published
        self._since = 0.0  # loop time of the last publication
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.broker.port

    def start(self) -> None:
        self.link.start()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _up(self) -> None:
        here = presence(self.format, self.name, online=True)
        if here is not None:
            self.link.publish(here[0], here[1], qos=1, retain=True)
        self._last = None  # publish the state again at the next look

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            watts = self.source.power_mw() / 1000
            now = loop.time()
            changed = self._last is None or abs(watts - self._last) >= CHANGE_W
            due = self.period is not None and now - self._since >= self.period
            if (changed or due) and self.link.connected:
                self.publish(watts)
                self._last, self._since = watts, now
            await asyncio.sleep(self.interval)

    def publish(self, watts: float) -> None:
        loop = asyncio.get_running_loop()
        for topic, payload in payloads(
            self.format, self.name, watts, self.source.total_wh(), loop.time()
        ):
            self.link.publish(topic, payload, qos=0)
            self.published += 1
            if self.verbose:
                log.info("%s %s", topic, payload.decode())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        gone = presence(self.format, self.name, online=False)
        await self.link.close(gone)


async def start_publisher(
    broker: Broker,
    format_name: str,
    name: str,
    source: PowerSource,
    *,
    interval: float = 1.0,
    period: float | None = None,
    verbose: bool = False,
) -> MqttPublisher:
    """A publisher connecting (in the background) and publishing ``source``."""
    publisher = MqttPublisher(
        broker, format_name, name, source, interval=interval, period=period, verbose=verbose
    )
    publisher.start()
    return publisher


def _format(text: str) -> str:
    try:
        return mqtt_formats.parse_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _broker(text: str) -> tuple[str, int]:
    try:
        host, port = split_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return host, 1883 if port is None else port


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--broker",
        type=_broker,
        metavar="HOST:PORT",
        help=f"the MQTT broker to publish to (--driver mqtt; default {DEFAULT_BROKER})",
    )
    group.add_argument(
        "--mqtt-format",
        type=_format,
        default="zigbee2mqtt",
        metavar="FORMAT",
        help="what to publish: zigbee2mqtt (default), tasmota, shelly, esphome, plain or json:PATH",
    )
    group.add_argument(
        "--mqtt-interval",
        type=_positive,
        default=1.0,
        metavar="S",
        help="look at the power every S seconds and publish a change (default 1)",
    )
    group.add_argument(
        "--mqtt-period",
        type=_positive,
        metavar="S",
        help="also publish every S seconds whatever the change (default: 300 for tasmota, "
        "as its TelePeriod, else never)",
    )


def _options(args: argparse.Namespace | None) -> tuple[str, float | None, float, Broker]:
    format_name = getattr(args, "mqtt_format", None) or "zigbee2mqtt"
    period = getattr(args, "mqtt_period", None)
    if period is None and format_name == "tasmota":
        period = mqtt_formats.TASMOTA_TELEPERIOD
    host, port = getattr(args, "broker", None) or _broker(DEFAULT_BROKER)
    return format_name, period, getattr(args, "mqtt_interval", 1.0), Broker(host, port)


async def _start(
    host: str,
    port: int,
    source: PowerSource,
    alias: str,
    index: int,
    verbose: bool,
    args: argparse.Namespace | None,
) -> PlugServer:
    format_name, period, interval, broker = _options(args)
    return await start_publisher(
        broker,
        format_name,
        topic_name(alias),
        source,
        interval=interval,
        period=period,
        verbose=verbose,
    )


def _ini_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    format_name, period, _, _ = _options(args)
    options = [("mqtt_format", format_name)]
    if period is not None:
        options.append(("mqtt_period", f"{period:g}"))
    return options


def _ini_globals(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    broker = _options(args)[3]
    return [("mqtt_broker", str(broker))]


EMULATED = (
    Family(
        "mqtt",
        "mqtt",
        1883,
        "a plug publishing to an MQTT broker (--mqtt-format, --broker)",
        _start,
        ini_options=_ini_options,
        ini_globals=_ini_globals,
    ),
)
