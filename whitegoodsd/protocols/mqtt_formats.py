"""What MQTT-fed plugs publish, without I/O: topics in, readings out.

Each ``mqtt_format`` is a :class:`Decoder` built from the appliance's
``smartplug`` topic: it names the topics to subscribe to and turns one
message (topic and payload bytes) into a Reading, a word about the
publisher's presence, or nothing (a message that carries no power figure,
such as a Shelly notification about another component).  A payload it cannot
use raises ProtocolError with a one-line reason.

Units are the publishers' own, as they document them:

================  ==========================================  =====================
format            where the power is                          energy counter
================  ==========================================  =====================
zigbee2mqtt       ``power`` W in the device's JSON state      ``energy`` kWh
tasmota           ``ENERGY.Power`` W (an array: by channel)   ``ENERGY.Total`` kWh
shelly            ``switch:N.apower`` W (Gen2+ status/RPC)    ``aenergy.total`` Wh
esphome, plain    the payload is a number of W                none
json:PATH         the number at a dotted PATH, in W           none
================  ==========================================  =====================

Presence: Zigbee2MQTT's ``TOPIC/availability`` (``{"state":"offline"}``, or
the bare word before 2.0), Tasmota's retained ``tele/TOPIC/LWT``
(``Online``/``Offline``), Shelly's ``PREFIX/online`` (``true``/``false``) and
ESPHome's ``PREFIX/status`` (``online``/``offline``).  Only Tasmota reports
on a clock (``TelePeriod``, 300 s unless changed); the others report on
change, so their silence means nothing.

Topic levels taken from appliance names for publishing are escaped by
:func:`topic_level`; ``smartplug`` topics are checked by :func:`check_topic`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whitegoodsd.errors import ProtocolError, Reading, finite

_SHELLY_STATUS = re.compile(r"^(?P<prefix>.+)/status/(?P<kind>switch|pm1):(?P<channel>\d{1,3})$")
MAX_PAYLOAD = 64 * 1024  # a Shelly NotifyFullStatus is a few KiB; a Z2M state under 1 KiB
MAX_TOPIC = 1024  # bytes; MQTT allows 65,535, but no plug needs more
TASMOTA_TELEPERIOD = 300.0  # seconds: Tasmota's default TelePeriod
FORMATS = ("zigbee2mqtt", "tasmota", "shelly", "esphome", "json:PATH", "plain")


@dataclass(frozen=True, slots=True)
class Presence:
    """The publisher (or its bridge) says whether the plug is there."""

    online: bool


Decoded = Reading | Presence | None


# -- payloads -----------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def loads(payload: bytes) -> Any:
    """JSON as the strict reading of RFC 8259: no NaN, no Infinity; ProtocolError."""
    _check_size(payload)
    try:
        return json.loads(payload, parse_constant=_reject_constant)
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProtocolError(f"not JSON: {reason[:80]}") from None


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"message of {len(payload):,} bytes is over {MAX_PAYLOAD:,}")


def number(payload: bytes, what: str = "payload") -> float:
    """A payload that is a bare number (ESPHome, plain)."""
    _check_size(payload)
    text = payload.strip()
    if len(text) > 40:
        raise ProtocolError(f"{what} is not a number: {text[:40]!r}...")
    try:
        value = float(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(f"{what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ProtocolError(f"{what} is not finite: {text.decode('ascii')!r}")
    return value


def _scaled(value: float, scale: float, what: str) -> float:
    scaled = value * scale
    if not math.isfinite(scaled) or abs(scaled) > 1e15:
        raise ProtocolError(f"{what} is out of range")
    return scaled


def watts_reading(
    power_w: object,
    *,
    voltage_v: object = None,
    current_a: object = None,
    total_wh: object = None,
    energy_scale: float = 1.0,
    what: str = "power",
) -> Reading:
    """A Reading from figures in W, V, A and an energy counter x ``energy_scale`` Wh."""
    power = _scaled(finite(power_w, what), 1000.0, what)
    if power < -1000.0:
        raise ProtocolError(f"negative power {power / 1000:,.6g} W")

    def optional(value: object, scale: float, name: str) -> float | None:
        if value is None:
            return None
        return _scaled(finite(value, name), scale, name)

    voltage = optional(voltage_v, 1000.0, "voltage")
    current = optional(current_a, 1000.0, "current")
    total = optional(total_wh, energy_scale, "energy")
    return Reading(
        power_mw=max(0, round(power)),
        voltage_mv=None if voltage is None else round(voltage),
        current_ma=None if current is None else round(current),
        total_wh=total,
    )


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    """The value at a dotted path (list items by index); ProtocolError naming what is missing."""
    value = document
    for depth, step in enumerate(path):
        where = ".".join(path[: depth + 1])
        if isinstance(value, dict):
            if step not in value:
                raise ProtocolError(f"no {where!r} in the message")
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and len(step) < 6:
            if int(step) >= len(value):
                raise ProtocolError(f"no {where!r} in the message (list of {len(value)})")
            value = value[int(step)]
        else:
            raise ProtocolError(f"no {where!r} in the message")
    return value


def _word(payload: bytes) -> str:
    return payload[:64].strip().decode("utf-8", "replace").strip('"').lower()


# -- topics -------------------------------------------------------------------


def check_topic(topic: str) -> str:
    """A topic to subscribe to for one plug; ValueError with a message if unusable."""
    if not topic:
        raise ValueError("expected an MQTT topic")
    if "+" in topic or "#" in topic:
        raise ValueError(f"{topic!r} has a wildcard ('+' or '#'); name one plug's topic")
    if "\0" in topic:
        raise ValueError("a topic cannot hold a NUL character")
    if len(topic.encode()) > MAX_TOPIC:
        raise ValueError(f"topic is longer than {MAX_TOPIC} bytes")
    return topic


def topic_level(name: str) -> str:
    """``name`` as one topic level: ``%``, ``/``, ``+``, ``#`` and NUL percent-escaped."""
    out = []
    for char in name:
        out.append(f"%{ord(char):02X}" if char in "%/+#\0" else char)
    return "".join(out) or "%00"


# -- the formats --------------------------------------------------------------


class Decoder:
    """One plug's topics and how to read their messages."""

    period: float | None = None  # seconds between reports, if the publisher keeps a clock

    def __init__(self, topic: str, channel: int = 0) -> None:
        self.topic = topic
        self.channel = channel
        self.presence_topic: str | None = None

    def subscriptions(self) -> tuple[str, ...]:
        extra = (self.presence_topic,) if self.presence_topic else ()
        return (self.topic, *extra)

    def decode(self, topic: str, payload: bytes) -> Decoded:
        if topic == self.presence_topic:
            return self.presence(payload)
        return self.reading(payload)

    def reading(self, payload: bytes) -> Reading | None:
        raise NotImplementedError

    def presence(self, payload: bytes) -> Presence | None:
        word = _word(payload)
        if word in ("online", "true"):
            return Presence(True)
        if word in ("offline", "false"):
            return Presence(False)
        return None  # something else on the topic: not a word about presence


class Zigbee2MQTT(Decoder):
    """``zigbee2mqtt/FRIENDLY_NAME``: the device's state as one JSON object."""

    def __init__(self, topic: str, channel: int = 0) -> None:
        super().__init__(topic, channel)
        self.presence_topic = f"{topic}/availability"

    def reading(self, payload: bytes) -> Reading | None:
        state = loads(payload)
        if not isinstance(state, dict):
            raise ProtocolError("the state is not a JSON object")
        if "power" not in state:
            raise ProtocolError("no 'power' in the state (not a metering device?)")
        return watts_reading(
            state["power"],
            voltage_v=state.get("voltage"),
            current_a=state.get("current"),
            total_wh=state.get("energy"),
            energy_scale=1000.0,
        )

    def presence(self, payload: bytes) -> Presence | None:
        if payload.lstrip().startswith(b"{"):
            document = loads(payload)
            word = document.get("state") if isinstance(document, dict) else None
            return super().presence(word.encode()) if isinstance(word, str) else None
        return super().presence(payload)


class Tasmota(Decoder):
    """``tele/TOPIC/SENSOR`` (every TelePeriod, and on PowerDelta) or ``stat/TOPIC/STATUS10``."""

    period = TASMOTA_TELEPERIOD

    def __init__(self, topic: str, channel: int = 0) -> None:
        if "/" not in topic:  # the device's %topic% with the default FullTopic
            topic = f"tele/{topic}/SENSOR"
        super().__init__(topic, channel)
        head, _, last = topic.rpartition("/")
        self.presence_topic = f"{head}/LWT" if last == "SENSOR" else None

    def reading(self, payload: bytes) -> Reading | None:
        document = loads(payload)
        if isinstance(document, dict) and isinstance(document.get("StatusSNS"), dict):
            document = document["StatusSNS"]
        if not isinstance(document, dict):
            raise ProtocolError("the message is not a JSON object")
        energy = document.get("ENERGY")
        if not isinstance(energy, dict) or "Power" not in energy:
            raise ProtocolError("no ENERGY.Power in the message (not a metering device?)")

        def pick(key: str) -> object:
            value = energy.get(key)
            if isinstance(value, list):
                if self.channel >= len(value):
                    raise ProtocolError(f"ENERGY.{key} has no channel {self.channel}")
                return value[self.channel]
            return value

        # OpenBeken sends no Total (its ConsumptionTotal is not documented as kWh).
        return watts_reading(
            pick("Power"),
            voltage_v=pick("Voltage"),
            current_a=pick("Current"),
            total_wh=pick("Total"),
            energy_scale=1000.0,
        )


class Shelly(Decoder):
    """Gen2+: ``NotifyStatus`` frames on ``PREFIX/events/rpc`` (on by default), or, when the
    topic given is ``PREFIX/status/switch:N``, the full status there (``status_ntf`` on).

    Never both: a change would come twice, and each message is a sample.
    """

    def __init__(self, topic: str, channel: int = 0) -> None:
        super().__init__(topic, channel)
        match = _SHELLY_STATUS.match(topic)
        self.prefix = match["prefix"] if match else topic
        self.status_topic = topic if match else None
        self.key = f"{match['kind']}:{match['channel']}" if match else None
        self.rpc_topic = None if match else f"{topic}/events/rpc"
        self.presence_topic = f"{self.prefix}/online"

    def subscriptions(self) -> tuple[str, ...]:
        return (self.status_topic or f"{self.prefix}/events/rpc", f"{self.prefix}/online")

    def decode(self, topic: str, payload: bytes) -> Decoded:
        if topic == self.presence_topic:
            return self.presence(payload)
        if topic == self.status_topic:
            return self._status(loads(payload), partial=False)
        frame = loads(payload)
        if not isinstance(frame, dict):
            raise ProtocolError("the RPC frame is not a JSON object")
        if frame.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
            return None
        params = frame.get("params")
        if not isinstance(params, dict):
            raise ProtocolError("the notification has no params object")
        status = params.get(f"switch:{self.channel}", params.get(f"pm1:{self.channel}"))
        if status is None:
            return None  # about another component
        return self._status(status, partial=True)

    def _status(self, status: object, *, partial: bool) -> Reading | None:
        if not isinstance(status, dict):
            raise ProtocolError("the switch status is not a JSON object")
        if "apower" not in status:
            if partial:
                return None  # a change of other keys only (output, temperature, counters)
            raise ProtocolError("no 'apower' in the status (not a metering switch?)")
        energy = status.get("aenergy")
        total = energy.get("total") if isinstance(energy, dict) else None
        return watts_reading(
            status["apower"],
            voltage_v=status.get("voltage"),
            current_a=status.get("current"),
            total_wh=total,
        )


class Number(Decoder):
    """A topic whose payload is a bare number of watts (``plain``)."""

    def reading(self, payload: bytes) -> Reading | None:
        return watts_reading(number(payload))


class ESPHome(Number):
    """``PREFIX/sensor/OBJECT_ID/state``: a number as text, ``nan`` while unknown."""

    def __init__(self, topic: str, channel: int = 0) -> None:
        super().__init__(topic, channel)
        head, sep, _ = topic.partition("/sensor/")
        self.presence_topic = f"{head}/status" if sep and head else None


class JSONPath(Decoder):
    """Any JSON payload, the power (in W) at a dotted path."""

    def __init__(self, topic: str, path: tuple[str, ...], channel: int = 0) -> None:
        super().__init__(topic, channel)
        self.path = path

    def reading(self, payload: bytes) -> Reading | None:
        return watts_reading(lookup(loads(payload), self.path), what=".".join(self.path))


_SIMPLE: dict[str, Callable[[str, int], Decoder]] = {
    "zigbee2mqtt": Zigbee2MQTT,
    "tasmota": Tasmota,
    "shelly": Shelly,
    "esphome": ESPHome,
    "plain": Number,
}


def parse_format(text: str) -> str:
    """``mqtt_format`` checked and normalised; ValueError with a message."""
    name = text.strip()
    if name.lower() in _SIMPLE:
        return name.lower()
    if name.lower().startswith("json:"):
        path = name[5:]
        steps = path.split(".")
        if not path or any(not step for step in steps):
            raise ValueError(f"json:PATH needs a dotted path, got {text!r}")
        return f"json:{path}"
    raise ValueError(f"unknown format {text!r} (known: {', '.join(FORMATS)})")


def decoder(format_name: str, topic: str, channel: int = 0) -> Decoder:
    """The decoder for a plug publishing on ``topic`` in ``format_name`` (parse_format's)."""
    if format_name.startswith("json:"):
        return JSONPath(topic, tuple(format_name[5:].split(".")), channel)
    return _SIMPLE[format_name](topic, channel)


# -- recognising a plug's messages (discover) ---------------------------------


def recognise(topic: str, payload: bytes) -> tuple[str, str, int] | None:
    """(format, smartplug, channel) if ``payload`` on ``topic`` is a reading in a known format."""
    head, _, last = topic.rpartition("/")
    guesses: list[tuple[str, str, int]] = []
    if last == "SENSOR":
        parts = topic.split("/")
        plain_topic = len(parts) == 3 and parts[0] == "tele"
        guesses.append(("tasmota", parts[1] if plain_topic else topic, 0))
    elif last == "rpc" and head.endswith("/events"):
        guesses += [("shelly", head[: -len("/events")], n) for n in range(4)]
    elif _SHELLY_STATUS.match(topic):
        guesses.append(("shelly", topic, 0))
    elif "/sensor/" in topic and last == "state" and "power" in topic.rsplit("/", 2)[-2]:
        guesses.append(("esphome", topic, 0))
    elif last in ("power", "watts"):
        guesses.append(("plain", topic, 0))
    elif payload.lstrip().startswith(b"{") and last not in ("set", "get", "availability"):
        guesses.append(("zigbee2mqtt", topic, 0))
    for format_name, smartplug, channel in guesses:
        try:
            reader = decoder(format_name, smartplug, channel)
            if isinstance(reader.decode(topic, payload), Reading):
                return format_name, smartplug, channel
        except (ProtocolError, ValueError):
            continue
    return None
