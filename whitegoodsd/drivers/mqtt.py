"""Plugs that publish their readings to an MQTT broker (``driver = mqtt``).

``smartplug`` is the plug's topic and ``mqtt_format`` says what it publishes
there (``protocols/mqtt_formats.py``: Zigbee2MQTT, Tasmota, Shelly Gen2+,
ESPHome, a bare number, or any JSON with ``json:PATH``).  Nothing is polled:
the hub (``mqtt/hub.py``) hands each message on the plug's topics to
:meth:`MqttPlug.receive`, and a pass asks :meth:`MqttPlug.silent` about a plug
that said nothing since the last pass.

In a pass in which the plug said nothing, the monitor reads the last value
again (a plug that reports on change sends nothing while its load is flat,
and the value holds: time below a threshold counts from the message that
said so, so ``finish_delay`` and ``minsamples_finished`` end a cycle on a
plug that said "1 W" once and then nothing), unless :meth:`MqttPlug.silent`
gives a reason to count the pass as failed:

* the broker connection is down (counted, not logged per plug: the hub says
  once that the broker is lost, and once that it is back);
* the publisher says the plug is offline (Zigbee2MQTT availability, Tasmota
  LWT, Shelly ``online``, ESPHome ``status``);
* a publisher that reports on a clock (Tasmota, every ``mqtt_period``
  seconds, 300 by default as its TelePeriod) has missed a report: nothing for
  1.5 periods.

``unreachable_after`` such passes in a row make the appliance UNREACHABLE,
as for a polled plug.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from whitegoodsd.drivers.base import Driver, Option, PlugError, Reading
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import mqtt_formats
from whitegoodsd.protocols.mqtt_formats import Presence

if TYPE_CHECKING:
    from whitegoodsd.mqtt.hub import Hub

GRACE = 1.5  # a periodic report is missed when 1.5 periods have passed without one


class BrokerDown(PlugError):
    """No connection to the broker: already said once by the hub, so not logged per plug."""

    quiet = True


def _period(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be 0 (reports on change only) or more seconds, got {text!r}")
    return value


def _channel(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 3:
        raise ValueError(f"expected a channel number from 0, got {text!r}")
    return int(text)


class MqttPlug(Driver):
    """A plug whose readings come from a broker, in one of the known formats."""

    NAME = "mqtt"
    DESCRIPTION = "readings pushed through an MQTT broker (Zigbee2MQTT, Tasmota, Shelly, ESPHome)"
    DEFAULT_PORT = None
    PUSHED = True
    HUB = "whitegoodsd.mqtt.hub"
    EMULATOR = "whitegoodsd.emulator.mqtt"
    DISCOVERY = "whitegoodsd.discovery.mqtt"
    OPTIONS = (
        Option(
            "mqtt_format",
            mqtt_formats.parse_format,
            "What the plug publishes on the smartplug topic: zigbee2mqtt (the device's "
            "topic, power in W), tasmota (the device's topic name or its tele/.../SENSOR "
            "topic, ENERGY.Power in W), shelly (the Gen2+ topic prefix, switch:N apower in "
            "W), esphome (a sensor's .../state topic, W), plain (a number of W), or "
            "json:PATH (the number at a dotted PATH of a JSON payload, in W).",
            required=True,
            metavar="FORMAT",
        ),
        Option(
            "mqtt_period",
            _period,
            "Seconds between the reports of a publisher that reports on a clock; a report "
            "missing for 1.5 periods fails the pass.  Default 300 (Tasmota's TelePeriod) for "
            "tasmota, else 0: the plug reports on change and silence means nothing.",
            metavar="SECONDS",
        ),
        Option(
            "channel",
            _channel,
            "Which channel of a multi-channel plug (Shelly switch:N, Tasmota arrays), from 0.",
            default=0,
            metavar="N",
        ),
    )

    def __init__(
        self,
        host: str,
        port: int | None,
        timeout: float,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(host, port, timeout, options)
        format_name = self.options["mqtt_format"] or "plain"
        self.decoder = mqtt_formats.decoder(format_name, host, self.options["channel"] or 0)
        period = self.options["mqtt_period"]
        self.period: float | None = self.decoder.period if period is None else (period or None)
        self.hub: Hub | None = None
        self.last_at: float | None = None  # monotonic time of the last reading
        self.started: float | None = None  # when silent() was first asked
        self.online = True

    @classmethod
    def parse_smartplug(cls, text: str) -> tuple[str, int | None]:
        return mqtt_formats.check_topic(text.strip()), None

    @property
    def address(self) -> str:
        return self.host

    def receive(self, topic: str, payload: bytes, at: float) -> Reading | PlugError | None:
        """One message on one of the plug's topics: what it says, if anything."""
        try:
            decoded = self.decoder.decode(topic, payload)
        except ProtocolError as exc:
            return exc
        if isinstance(decoded, Presence):
            self.online = decoded.online
            return None
        if decoded is not None:
            self.online = True
            self.last_at = at
        return decoded

    def silent(self, now: float) -> PlugError | None:
        """Why a pass without a message fails, if it does (see the module's docstring)."""
        if self.started is None:
            self.started = now
        if self.hub is None or not self.hub.connected:
            return BrokerDown("no connection to the MQTT broker")
        if not self.online:
            return PlugError("the publisher says the plug is offline")
        if self.period is not None:
            since = self.last_at if self.last_at is not None else self.started
            if now - since > GRACE * self.period:
                return PlugError(f"no report for {now - since:,.0f} s (every {self.period:g} s)")
        return None


DRIVER = MqttPlug
