"""The MQTT hub: one broker connection for every MQTT appliance and the MQTT output.

The monitor makes it as ``Hub(config, deliver, log)`` (the Hub protocol of
``sources``) when an appliance uses ``driver = mqtt`` or ``mqtt_publish`` is
on, calls ``start()``, ``attach(name, driver)`` for each MQTT appliance
(``detach`` on reload), ``silent(name)`` in a pass for an appliance that said
nothing since the last one, and ``close()`` at the end.

Each message on a plug's topics goes to the plug's driver
(``drivers/mqtt.py``), which decodes it; a Reading goes to ``deliver(name,
reading, at)`` at once, with ``at`` from ``time.monotonic()``, so the
detector sees every message once and when it came.

A payload the driver cannot use is not a failed poll (the plug's last value
still holds): the hub logs it, ``Bad message from NAME on TOPIC: reason``, at
most :data:`ERRORS_PER_MINUTE` lines a minute per appliance, the rest counted
into the next line that goes out, so a plug that floods garbage costs a line
now and then.

The work per message is bounded (a size limit, one JSON parse, one detector
step), and the link reads at most a few dozen messages per wakeup before
other callbacks (polls, timers, other sockets) get a turn: a plug publishing
a thousand messages a second costs CPU in proportion, and starves nothing.

The output (``outputs/mqtt.py``) publishes through the same hub: ``publish``,
and ``on_up`` listeners to republish its state after each reconnection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.mqtt.link import Broker, Link, Will

if TYPE_CHECKING:
    from whitegoodsd.config import Config
    from whitegoodsd.drivers.mqtt import MqttPlug

Deliver = Callable[[str, Reading | PlugError, float], None]
ERRORS_PER_MINUTE = 5


def broker(config: Config) -> Broker | None:
    """The broker ``config`` names, or None."""
    if config.mqtt_broker is None:
        return None
    host, port = config.mqtt_broker
    return Broker(
        host,
        port,
        config.mqtt_username,
        config.mqtt_password,
        config.mqtt_tls,
        config.mqtt_ca_file,
        config.timeout,
    )


def status_topic(config: Config) -> str:
    return f"{config.mqtt_prefix}/status"


def same_connection(old: Config, new: Config) -> bool:
    """Whether a reload can keep the connection (same broker, login and will)."""
    keep = (broker(old), old.mqtt_publish and status_topic(old))
    return keep == (broker(new), new.mqtt_publish and status_topic(new))


class _Limit:
    """At most ERRORS_PER_MINUTE error lines a minute; the rest counted."""

    def __init__(self) -> None:
        self.window = 0.0
        self.sent = 0
        self.suppressed = 0

    def allow(self, now: float) -> int | None:
        """None to drop this error; else how many were dropped before it."""
        if now - self.window >= 60.0:
            self.window, self.sent = now, 0
        if self.sent >= ERRORS_PER_MINUTE:
            self.suppressed += 1
            return None
        self.sent += 1
        dropped, self.suppressed = self.suppressed, 0
        return dropped


class Hub:
    """One broker connection; routes messages to the plugs attached to it."""

    def __init__(
        self,
        config: Config,
        deliver: Deliver,
        log: logging.Logger | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        where = broker(config)
        if where is None:
            raise ValueError("mqtt_broker is not set")
        self.config = config
        self.log = log or logging.getLogger("whitegoodsd")
        self.deliver = deliver
        self.clock = clock
        will = Will(status_topic(config), b"offline") if config.mqtt_publish else None
        self.link = Link(where, on_message=self._message, on_up=self._up, will=will, log=self.log)
        self.farewell: tuple[str, bytes] | None = None  # published retained by close()
        self.discovered: set[str] = set()  # discovery config topics the output published
        self.plugs: dict[str, MqttPlug] = {}
        self._routes: dict[str, list[tuple[str, MqttPlug]]] = {}  # topic -> (name, plug)
        self._limits: dict[str, _Limit] = {}
        self.up_listeners: list[Callable[[], None]] = []
        self.messages = 0  # every message received

    @property
    def connected(self) -> bool:
        return self.link.connected

    async def start(self) -> None:
        """Begin connecting; returns at once (the connection comes up in the background)."""
        self.link.start()

    def attach(self, name: str, plug: MqttPlug) -> None:
        """Route ``plug``'s topics to it from now on, as appliance ``name``."""
        self.detach(name)
        plug.hub = self
        self.plugs[name] = plug
        self._limits[name] = _Limit()
        for topic in plug.decoder.subscriptions():
            self._routes.setdefault(topic, []).append((name, plug))
        self.link.subscribe(set(plug.decoder.subscriptions()))

    def detach(self, name: str) -> None:
        plug = self.plugs.pop(name, None)
        if plug is None:
            return
        self._limits.pop(name, None)
        unused = set()
        for topic in plug.decoder.subscriptions():
            routes = [r for r in self._routes.get(topic, []) if r[0] != name]
            if routes:
                self._routes[topic] = routes
            else:
                self._routes.pop(topic, None)
                unused.add(topic)
        self.link.unsubscribe(unused)
        plug.hub = None

    def silent(self, name: str) -> PlugError | None:
        """Why a pass in which ``name`` said nothing counts as failed, if it does."""
        plug = self.plugs.get(name)
        if plug is None:
            return PlugError("not attached to the MQTT hub")
        return plug.silent(self.clock())

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> bool:
        """Send a message now if connected; False if not (the caller keeps it)."""
        return self.link.publish(topic, payload, qos=qos, retain=retain)

    async def close(self) -> None:
        """Disconnect cleanly; ``farewell`` (topic, payload) is published retained first."""
        for name in list(self.plugs):
            self.detach(name)
        await self.link.close(self.farewell)

    def _up(self) -> None:
        # A publisher's word on its presence is retained: it comes again with the subscription.
        for plug in self.plugs.values():
            plug.online = True
        for listener in self.up_listeners:
            listener()

    def _message(self, topic: str, payload: bytes) -> None:
        self.messages += 1
        routes = self._routes.get(topic)
        if not routes:
            return
        at = self.clock()
        for name, plug in routes:
            outcome = plug.receive(topic, payload, at)
            if isinstance(outcome, PlugError):
                self._bad(name, topic, outcome, at)
            elif outcome is not None:
                self.deliver(name, outcome, at)

    def _bad(self, name: str, topic: str, error: PlugError, at: float) -> None:
        dropped = self._limits[name].allow(at)
        if dropped is None:
            return
        more = f" ({dropped:,} more since the last line)" if dropped else ""
        self.log.error("Bad message from %s on %.200s: %s%s", name, topic, error, more)
