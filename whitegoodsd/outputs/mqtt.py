"""The MQTT output: each appliance's state and events on a broker.

With ``mqtt_publish = yes`` the daemon publishes, through the one broker
connection of ``mqtt/hub.py`` (made for the output if no appliance uses
MQTT), under ``PREFIX`` (``mqtt_prefix``, default ``whitegoodsd``):

=========================  ============================================  ========  ===
topic                      payload                                       retained  QoS
=========================  ============================================  ========  ===
``PREFIX/status``          ``online``; ``offline`` as the last will and  yes       1
                           on a clean stop
``PREFIX/NAME/running``    ``ON`` or ``OFF``, when it changes            yes       1
``PREFIX/NAME/power``      W, when it changes, at most once a pass       yes       0
``PREFIX/NAME/energy``     the plug's counter in Wh, likewise            yes       0
``PREFIX/NAME/event``      JSON: ``event`` (and ``event_type``, for      no        1
                           Home Assistant), ``appliance``, ``at`` (ISO
                           8601); FINISHED adds ``duration_s``,
                           ``energy_wh``, ``peak_w``
=========================  ============================================  ========  ===

``NAME`` is the appliance's name as one topic level: ``/``, ``+``, ``#``,
``%`` and NUL are percent-escaped (``A/B`` is ``A%2FB``).

Nothing here waits for the broker.  While it is away, events wait in a queue
of :data:`QUEUE` (the oldest go first when it is full, with one line saying
how many), and are published in order when it is back, after ``online`` and
the current state; a FINISHED during a broker restart is late, not lost.
Home Assistant discovery configs (``outputs/homeassistant.py``) are
published at every connection; those of appliances removed by a reload are
cleared (an empty retained message) on reload, which keeps this output
(``reconfigure``) and the events it holds.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
from collections.abc import Sequence
from typing import Any

from whitegoodsd import notices
from whitegoodsd.config import Config
from whitegoodsd.mqtt.hub import Hub, status_topic
from whitegoodsd.notices import Notice
from whitegoodsd.outputs import homeassistant
from whitegoodsd.status import ApplianceStatus

QUEUE = 1000  # events kept while the broker is away


def iso(at: float) -> str:
    """Local time with its UTC offset, to the second."""
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC).astimezone()
    return moment.isoformat(timespec="seconds")


def event_payload(notice: Notice) -> bytes:
    document: dict[str, Any] = {
        "event": notice.kind,
        "event_type": notice.kind,
        "appliance": notice.appliance,
        "at": iso(notice.at),
    }
    if notice.kind == notices.FINISHED and notice.cycle is not None:
        record = notice.cycle
        document["duration_s"] = round(record.duration)
        energy = record.energy_wh
        document["energy_wh"] = None if energy is None else round(energy, 3)
        document["peak_w"] = round(record.peak_mw / 1000, 3)
    return json.dumps(document, separators=(",", ":")).encode()


def _watts(milli: int) -> bytes:
    return f"{milli / 1000:.3f}".rstrip("0").rstrip(".").encode()


class MqttOutput:
    """Publishes state after each pass and events as they happen."""

    def __init__(self, config: Config, hub: Hub, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger("whitegoodsd")
        self.hub = hub
        self._configure(config)
        self.queue: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=QUEUE)
        self.dropped = 0
        self.sent: dict[str, bytes] = {}  # retained state topic -> payload last sent
        self.state: dict[str, bytes] = {}  # retained state topic -> payload now
        self.closed = False
        self.status = status_topic(config)
        self.clears: list[str] = []
        hub.farewell = (self.status, b"offline")
        hub.up_listeners.append(self._up)
        self._clear_removed()
        if hub.connected:
            self._up()

    def _configure(self, config: Config) -> None:
        self.prefix = config.mqtt_prefix
        self.discovery = config.homeassistant_discovery
        self.names = {a.name: a.plug.driver for a in config.appliances}

    def reconfigure(self, config: Config) -> None:
        """A reload: keep the events waiting; clear the configs of appliances gone."""
        self._configure(config)
        self.state = {t: p for t, p in self.state.items() if t.startswith(f"{self.prefix}/")}
        self._clear_removed()
        if self.hub.connected:
            self._up()

    def _topic(self, name: str, what: str) -> str:
        return f"{homeassistant.base_topic(self.prefix, name)}/{what}"

    # -- the Output protocol ---------------------------------------------------

    def write(self, statuses: Sequence[ApplianceStatus]) -> None:
        for status in statuses:
            self.state[self._topic(status.name, "running")] = b"ON" if status.running else b"OFF"
            if status.reading is not None:
                self.state[self._topic(status.name, "power")] = _watts(status.reading.power_mw)
                if status.reading.total_wh is not None:
                    total = f"{status.reading.total_wh:.3f}".encode()
                    self.state[self._topic(status.name, "energy")] = total
        self._send_state()

    def notice(self, notice: Notice) -> None:
        if notice.kind in (notices.RUNNING, notices.FINISHED):
            running = b"ON" if notice.kind == notices.RUNNING else b"OFF"
            self.state[self._topic(notice.appliance, "running")] = running
            self._send_state()
        message = (self._topic(notice.appliance, "event"), event_payload(notice))
        if self.queue or not self.hub.publish(*message, qos=1):
            self._keep(message)

    def close(self) -> None:
        """Stop publishing (a reload builds a new output; the hub says ``offline`` at the end)."""
        self.closed = True
        if self._up in self.hub.up_listeners:
            self.hub.up_listeners.remove(self._up)

    # -- publishing ------------------------------------------------------------

    def _keep(self, message: tuple[str, bytes]) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(message)

    def _send_state(self) -> None:
        if not self.hub.connected:
            return
        for topic, payload in self.state.items():
            if self.sent.get(topic) != payload:
                qos = 1 if topic.endswith("/running") else 0
                if self.hub.publish(topic, payload, qos=qos, retain=True):
                    self.sent[topic] = payload

    def _up(self) -> None:
        """At every connection: online, discovery, the state, then the events kept."""
        self.hub.publish(self.status, b"online", qos=1, retain=True)
        self._send_clears()
        if self.discovery:
            for name, driver in self.names.items():
                for topic, payload in homeassistant.configs(self.prefix, name, driver).items():
                    self.hub.publish(topic, payload, qos=1, retain=True)
        self.sent.clear()
        self._send_state()
        if self.dropped:
            self.log.warning(
                "MQTT output: %d event(s) dropped while the broker was away (queue of %d).",
                self.dropped,
                QUEUE,
            )
            self.dropped = 0
        while self.queue:
            topic, payload = self.queue[0]
            if not self.hub.publish(topic, payload, qos=1):
                return
            self.queue.popleft()

    def _clear_removed(self) -> None:
        """Clear the discovery configs of appliances a reload removed."""
        wanted: set[str] = set()
        if self.discovery:
            for name, driver in self.names.items():
                wanted |= set(homeassistant.configs(self.prefix, name, driver))
        self.clears = sorted(self.hub.discovered - wanted)
        self.hub.discovered = wanted
        self._send_clears()

    def _send_clears(self) -> None:
        while self.clears and self.hub.publish(self.clears[0], b"", qos=1, retain=True):
            self.clears.pop(0)
