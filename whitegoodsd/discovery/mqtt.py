"""Finding plugs on an MQTT broker: topics that carry readings in a known format.

``discover --driver mqtt [--target HOST[:PORT]]`` subscribes to ``#`` on the
broker (127.0.0.1:1883 without a target) for the timeout, and lists each topic
whose messages a format of ``protocols/mqtt_formats.py`` reads as a power
reading, with the INI section that watches it.  Retained messages come at
once; a plug that publishes only on change shows up only if it changes while
discover listens (Tasmota: within its TelePeriod).  A broker that asks for a
login, or none there, finds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from whitegoodsd.discovery import FoundPlug
from whitegoodsd.mqtt.link import Broker, Link
from whitegoodsd.protocols import mqtt_formats

MAX_TOPICS = 10_000  # topics looked at; a busy broker's others are ignored
PORT = 1883


@dataclass(frozen=True)
class FoundTopic(FoundPlug):
    """A plug's topic on a broker: ``host`` is the topic, ``port`` the broker's."""

    broker: str = ""

    @property
    def smartplug(self) -> str:
        return self.host

    def describe(self) -> str:
        return (
            f"{self.host}  mqtt {self.model} on {self.broker} "
            f"(in [whitegoodsd]: mqtt_broker = {self.broker})"
        )


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    """The plugs publishing on the broker at ``target`` within ``seconds``."""
    host, port = target if target is not None else ("127.0.0.1", None)
    where = Broker(host, port or PORT, timeout=max(seconds, 0.5))
    quiet = logging.getLogger("whitegoodsd.discovery.mqtt")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    last: dict[str, bytes] = {}

    def keep(topic: str, payload: bytes) -> None:
        if topic in last or len(last) < MAX_TOPICS:
            last[topic] = payload

    try:
        link = Link(where, on_message=keep, log=quiet)
    except ImportError:  # no paho-mqtt: nothing can be found this way
        return []
    link.subscribe({"#"})
    link.start()
    try:
        await asyncio.sleep(seconds)  # listening for this long is the point
    finally:
        await link.close()
    found: dict[tuple[str, int], FoundPlug] = {}
    for topic, payload in sorted(last.items()):
        recognised = mqtt_formats.recognise(topic, payload)
        if recognised is None:
            continue
        format_name, smartplug, channel = recognised
        options = [("mqtt_format", format_name)]
        if channel:
            options.append(("channel", str(channel)))
        name = smartplug.split("/")[1] if smartplug.startswith("zigbee2mqtt/") else smartplug
        found.setdefault(
            (smartplug, channel),
            FoundTopic(
                family="mqtt",
                host=smartplug,
                port=where.port,
                model=format_name,
                name=name.split("/")[0] if format_name != "zigbee2mqtt" else name,
                mac="",
                meters_power=True,
                options=tuple(options),
                broker=str(where),
            ),
        )
    return list(found.values())
