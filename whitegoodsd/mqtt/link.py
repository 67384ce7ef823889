"""One MQTT connection, driven by the daemon's asyncio loop through paho-mqtt.

paho-mqtt is used without its network thread: its socket is watched with
``loop.add_reader``/``add_writer``, ``loop_read``/``loop_write`` run when it is
ready, and ``loop_misc`` (keepalive pings) on a one-second timer, so every
message is handled on the loop's thread, between polls, with no locking.
Only the connect itself (name lookup, TCP connect, TLS handshake: calls that
paho makes blocking) runs in a short-lived thread, so that a broker that does
not answer cannot stall the polls; the socket is handed to the loop once it
is up.

The link reconnects with back-off (1 s doubling to 60 s) whenever the
connection fails or is lost, and says so once: one line when the broker is
lost (or cannot be reached at start), one when it is back.  ``on_up`` runs at
every (re)connection, so that the hub can subscribe again and the output
republish its state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whitegoodsd.drivers.base import format_address

MAX_BACKOFF = 60.0
_ids = itertools.count(1)
KEEPALIVE = 30  # seconds; a broker gone silent is noticed within 1.5 x this
PACKETS_PER_WAKEUP = 32  # messages handled before other callbacks get a turn


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in to it."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    timeout: float = 5.0

    def __str__(self) -> str:
        return format_address(self.host, self.port)


@dataclass(frozen=True)
class Will:
    """The message the broker publishes when the connection dies."""

    topic: str
    payload: bytes
    retain: bool = True


def _client(client_id: str) -> Any:
    import paho.mqtt.client as paho

    if hasattr(paho, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311
        )
    return paho.Client(client_id=client_id, clean_session=True, protocol=paho.MQTTv311)


def _reason(code: Any) -> str:
    import paho.mqtt.client as paho

    text = str(paho.error_string(code)) if isinstance(code, int) else str(code)
    return text[:1].lower() + text[1:].rstrip(".")


class Link:
    """A connection kept up until ``close()``; ``on_message(topic, payload)`` per message."""

    def __init__(
        self,
        broker: Broker,
        *,
        on_message: Callable[[str, bytes], None],
        on_up: Callable[[], None] = lambda: None,
        will: Will | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.broker = broker
        self.log = log or logging.getLogger("whitegoodsd")
        self._on_message = on_message
        self._on_up = on_up
        # Unique per connection: a broker drops a client when another logs in with its id
        # (the emulator runs many plugs in one process).
        client_id = f"whitegoodsd-{socket.gethostname()[:40]}-{os.getpid()}-{next(_ids)}"
        self.client = _client(client_id)
        self.client.on_connect = self._connack
        self.client.on_message = self._message
        self.client.max_queued_messages_set(1000)
        if hasattr(self.client, "connect_timeout"):  # paho-mqtt 2.x; 1.6 waits KEEPALIVE
            self.client.connect_timeout = broker.timeout
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set(ca_certs=broker.ca_file)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        self._subscribed: set[str] = set()
        self._sock: Any = None  # the socket the loop is watching
        self._writing = False
        self._connected = False
        self._ever_up = False
        self._down_reported = False
        self._refusal: str | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._session_end: asyncio.Future[str] | None = None
        self._wake = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    # -- subscriptions and publishing ------------------------------------------

    def subscribe(self, topics: set[str]) -> None:
        """Subscribe to ``topics`` from now on (and after every reconnection)."""
        new = topics - self._subscribed
        self._subscribed |= new
        if new and self._connected:
            self._send_subscribe(sorted(new))

    def unsubscribe(self, topics: set[str]) -> None:
        gone = topics & self._subscribed
        self._subscribed -= gone
        if gone and self._connected:
            self.client.unsubscribe(sorted(gone))
            self._pump()

    def _send_subscribe(self, topics: list[str]) -> None:
        for start in range(0, len(topics), 100):
            self.client.subscribe([(t, 1) for t in topics[start : start + 100]])
        self._pump()

    def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> bool:
        """Send a message if connected; False (nothing sent) if not."""
        if not self._connected:
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        self._pump()
        return bool(info.rc == 0)

    # -- the connection's life -------------------------------------------------

    async def _run(self) -> None:
        delay = 1.0
        loop = asyncio.get_running_loop()
        while not self._closing:
            self._refusal = None
            try:
                await self._connect(loop)
            except Exception as exc:  # noqa: BLE001 - whatever it is, try again later
                self._report_down(f"cannot connect: {_describe(exc)}")
            else:
                if self._closing:
                    return
                self._session_end = loop.create_future()
                self._watch()
                reason = await self._session_end
                self._unwatch()
                if self._connected:
                    delay = 1.0
                self._connected = False
                if self._closing:
                    return
                self._report_down(self._refusal or reason)
            if self._closing:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass
            delay = min(delay * 2, MAX_BACKOFF)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        done: asyncio.Future[None] = loop.create_future()

        def connect() -> None:
            try:
                self.client.connect(self.broker.host, self.broker.port, KEEPALIVE)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop
                loop.call_soon_threadsafe(_settle, done, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, None)

        # A daemon thread: a stop never waits for a broker that does not answer.
        threading.Thread(target=connect, name="mqtt-connect", daemon=True).start()
        await done

    def _report_down(self, reason: str) -> None:
        if self._down_reported:
            self.log.debug("MQTT broker %s: %s", self.broker, reason)
            return
        self._down_reported = True
        if self._ever_up:
            self.log.warning("Lost the MQTT broker %s: %s; reconnecting.", self.broker, reason)
        else:
            self.log.error("Cannot use the MQTT broker %s: %s; retrying.", self.broker, reason)

    def _connack(self, client: Any, userdata: Any, flags: Any, code: Any, *rest: Any) -> None:
        failed = code.is_failure if hasattr(code, "is_failure") else code != 0
        if failed:
            text = str(code) if hasattr(code, "is_failure") else _connack_text(code)
            self._refusal = f"refused the connection: {text}"
            return
        self._connected = True
        if self._subscribed:
            self._send_subscribe(sorted(self._subscribed))
        if self._down_reported and self._ever_up:
            self.log.info("MQTT broker %s is back.", self.broker)
        else:
            self.log.info("Connected to the MQTT broker %s.", self.broker)
        self._ever_up = True
        self._down_reported = False
        try:
            self._on_up()
        except Exception:
            self.log.exception("MQTT connection listener failed")

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            return  # not a topic anyone subscribed to by name
        try:
            self._on_message(topic, bytes(message.payload))
        except Exception:
            self.log.exception("MQTT message on %.80s", topic)

    # -- the socket on the loop ------------------------------------------------

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._sock = self.client.socket()
        if self._sock is None:
            self._end("connection closed")
            return
        loop.add_reader(self._sock, self._readable)
        self._writing = False
        self._timer = loop.call_later(1.0, self._tick)
        self._pump()

    def _unwatch(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is not None:
            loop.remove_reader(self._sock)
            if self._writing:
                loop.remove_writer(self._sock)
            self._sock = None
            self._writing = False

    def _readable(self) -> None:
        rc = self.client.loop_read(PACKETS_PER_WAKEUP)
        self._after(rc)
        sock = self._sock
        if sock is not None and isinstance(sock, ssl.SSLSocket) and sock.pending():
            asyncio.get_running_loop().call_soon(self._readable)

    def _writable(self) -> None:
        self._after(self.client.loop_write())

    def _tick(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(1.0, self._tick)
        self._after(self.client.loop_misc())

    def _pump(self) -> None:
        """Write what paho has queued, and watch for writability while some is left."""
        if self._sock is None:
            return
        if self.client.want_write():
            self._after(self.client.loop_write())

    def _after(self, rc: int) -> None:
        if self._sock is None:
            return
        if rc != 0 or self.client.socket() is not self._sock:
            self._end(_reason(rc) if rc else "connection closed")
            return
        want = bool(self.client.want_write())
        if want != self._writing:
            loop = asyncio.get_running_loop()
            if want:
                loop.add_writer(self._sock, self._writable)
            else:
                loop.remove_writer(self._sock)
            self._writing = want

    def _end(self, reason: str) -> None:
        self._connected = False
        if self._session_end is not None and not self._session_end.done():
            self._session_end.set_result(reason)

    # -- stopping --------------------------------------------------------------

    async def close(self, last: tuple[str, bytes] | None = None) -> None:
        """Publish ``last`` (retained) if connected, disconnect cleanly, stop reconnecting."""
        self._closing = True
        self._wake.set()
        if self._connected and self._sock is not None:
            if last is not None:
                self.client.publish(last[0], last[1], qos=0, retain=True)
            self.client.disconnect()
            for _ in range(100):  # a few KiB at most; the socket takes it at once
                if not self.client.want_write() or self.client.loop_write() != 0:
                    break
        self._end("closed")
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 1.0)
            except (TimeoutError, asyncio.CancelledError):
                pass
        self._unwatch_if_left()
        self._connected = False

    def _unwatch_if_left(self) -> None:
        if self._sock is not None:
            self._unwatch()
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


def _connack_text(code: int) -> str:
    import paho.mqtt.client as paho

    return str(paho.connack_string(code))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the name ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__
