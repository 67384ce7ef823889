"""An emulated TP-Link Kasa HS110: the legacy protocol on TCP and UDP, one port.

:class:`KasaDevice` is the plug itself, without I/O: a request object in, a
reply object out, as a real HS110(EU) answers.  It knows ``system``
(``get_sysinfo``, ``set_relay_state``, ``set_dev_alias``, ``set_led_off``),
``emeter`` (``get_realtime`` in the hardware v1 or v2 reply shape,
``get_daystat``, ``get_monthstat``) and ``time`` (``get_time``,
``get_timezone``); several modules in one request are answered in one reply;
any other module gets ``{"err_code":-1,"err_msg":"module not support"}`` and
any other method ``-2 member not support``.  With the relay off the meter
reads 0 W and the energy counter stands still.

:func:`start_kasa` serves a device on a TCP port (length-prefixed frames,
any number of requests per connection) and the UDP port of the same number
(discovery: bare enciphered datagrams).  Many servers share one event loop:
a thousand plugs in one process cost two descriptors each plus the open
connections (see :func:`whitegoodsd.emulator.raise_open_file_limit`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from whitegoodsd.drivers.base import format_address
from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.serve import Family, PlugServer, Starter
from whitegoodsd.errors import ProtocolError, Reading
from whitegoodsd.protocols import kasa

log = logging.getLogger("whitegoodsd.emulator")

SHAPES = ("v1", "v2")

# Replies a client does not read pile up; past this the connection is dropped.
_MAX_UNSENT = 256 * 1024
_BIND_ATTEMPTS = 50


def identity(index: int, shape: str = "v2") -> dict[str, str]:
    """Stable made-up identifiers for plug number ``index``: mac, deviceId, hwId, oemId."""
    digest = hashlib.sha256(f"whitegoodsd emulated plug {index} {shape}".encode()).hexdigest()
    # 50:C7:BF is a TP-Link prefix; the rest comes from the index, so plugs differ.
    tail = f"{(0x5A3C00 + index) % 0x1000000:06X}"
    return {
        "mac": f"50:C7:BF:{tail[0:2]}:{tail[2:4]}:{tail[4:6]}",
        "deviceId": digest[:40].upper(),
        "hwId": digest[40:64].upper() + hashlib.md5(digest.encode()).hexdigest()[:8].upper(),
        "oemId": hashlib.md5(f"oem {shape}".encode()).hexdigest().upper(),
    }


class KasaDevice:
    """An HS110(EU) energy-metering plug as request and reply objects, no I/O."""

    def __init__(
        self,
        source: PowerSource,
        *,
        shape: str = "v2",
        alias: str = "Emulated plug",
        index: int = 0,
        voltage_mv: int = 230_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown Kasa reply shape {shape!r} (v1 or v2)")
        self.source = source
        self.shape = shape
        self.alias = alias
        self.index = index
        self.voltage_mv = voltage_mv
        self.relay_on = True
        self.led_off = False
        self.ids = identity(index, shape)
        self._clock = clock
        self._booted = clock()
        self._relay_since = self._booted
        self._off_wh = 0.0  # energy the source "used" while the relay was off
        self._off_since_wh: float | None = None
        self.requests = 0
        self._handlers: dict[str, dict[str, Callable[[Any], dict[str, Any]]]] = {
            "system": {
                "get_sysinfo": lambda _: self.sysinfo(),
                "set_relay_state": self._set_relay_state,
                "set_dev_alias": self._set_dev_alias,
                "set_led_off": self._set_led_off,
            },
            "emeter": {
                "get_realtime": lambda _: kasa.realtime(self.reading(), self.shape),
                "get_daystat": self._daystat,
                "get_monthstat": self._monthstat,
            },
            "time": {
                "get_time": lambda _: self._time(),
                "get_timezone": lambda _: {"index": 38, "err_code": 0},  # UTC in the zone table
            },
        }

    # -- what the plug reports ------------------------------------------------

    def power_mw(self) -> int:
        return max(0, self.source.power_mw()) if self.relay_on else 0

    def total_wh(self) -> float:
        used = self.source.total_wh() - self._off_wh
        if self._off_since_wh is not None:
            used -= self.source.total_wh() - self._off_since_wh
        return max(0.0, used)

    def reading(self) -> Reading:
        """What the meter measures now, voltage wandering a little as mains does."""
        power = self.power_mw()
        wobble = math.sin(self._clock() / 7.0 + self.index) * 1200
        voltage = round(self.voltage_mv + wobble)
        current = round(power / voltage * 1000) if voltage else 0
        return Reading(power, voltage, current, self.total_wh())

    def sysinfo(self) -> dict[str, Any]:
        v1 = self.shape == "v1"
        now = self._clock()
        info: dict[str, Any] = {
            "sw_ver": "1.2.5 Build 171213 Rel.101523" if v1 else "1.5.4 Build 180815 Rel.121440",
            "hw_ver": "1.0" if v1 else "2.0",
            "type": "IOT.SMARTPLUGSWITCH",
            "model": "HS110(EU)",
            "mac": self.ids["mac"],
            "dev_name": "Wi-Fi Smart Plug With Energy Monitoring",
            "alias": self.alias,
            "relay_state": int(self.relay_on),
            "on_time": int(now - self._relay_since) if self.relay_on else 0,
            "active_mode": "none",
            "feature": "TIM:ENE",
            "updating": 0,
            "icon_hash": "",
            "rssi": -52 - self.index % 20,
            "led_off": int(self.led_off),
            "deviceId": self.ids["deviceId"],
            "hwId": self.ids["hwId"],
            "fwId": "00000000000000000000000000000000",
            "oemId": self.ids["oemId"],
            "err_code": 0,
        }
        if v1:
            info.update(latitude=0.0, longitude=0.0)
        else:
            info.update(latitude_i=0, longitude_i=0)
        return info

    # -- requests -------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one request object: every module and method asked, in order."""
        self.requests += 1
        reply: dict[str, Any] = {}
        for module, methods in request.items():
            if module == "context":
                continue  # child ids address the outlets of a strip; a plug has none
            handlers = self._handlers.get(module)
            if handlers is None or not isinstance(methods, dict):
                reply[module] = dict(kasa.MODULE_NOT_SUPPORTED)
                continue
            answers: dict[str, Any] = {}
            for method, argument in methods.items():
                handler = handlers.get(method)
                answers[method] = (
                    dict(kasa.METHOD_NOT_SUPPORTED) if handler is None else handler(argument)
                )
            reply[module] = answers
        return reply

    def summary(self, request: dict[str, Any]) -> str:
        """``system.get_sysinfo, emeter.get_realtime``: what a request asked, for the log."""
        parts = []
        for module, methods in request.items():
            if isinstance(methods, dict) and methods:
                parts += [f"{module}.{method}" for method in methods]
            else:
                parts.append(str(module))
        shown = [part[:40] for part in parts[:6]]
        if len(parts) > len(shown):
            shown.append(f"{len(parts) - len(shown)} more")
        return ", ".join(shown) or "{}"

    def _set_relay_state(self, argument: Any) -> dict[str, Any]:
        state = argument.get("state") if isinstance(argument, dict) else None
        if state not in (0, 1) or isinstance(state, bool):
            return dict(kasa.INVALID_ARGUMENT)
        on = state == 1
        if on != self.relay_on:
            if on:
                assert self._off_since_wh is not None
                self._off_wh += self.source.total_wh() - self._off_since_wh
                self._off_since_wh = None
                self._relay_since = self._clock()
            else:
                self._off_since_wh = self.source.total_wh()
            self.relay_on = on
            log.info("%s: relay %s", self.alias, "on" if on else "off")
        return {"err_code": 0}

    def _set_dev_alias(self, argument: Any) -> dict[str, Any]:
        alias = argument.get("alias") if isinstance(argument, dict) else None
        if not isinstance(alias, str) or not alias or len(alias) > 31:
            return dict(kasa.INVALID_ARGUMENT)
        self.alias = alias
        return {"err_code": 0}

    def _set_led_off(self, argument: Any) -> dict[str, Any]:
        off = argument.get("off") if isinstance(argument, dict) else None
        if off not in (0, 1) or isinstance(off, bool):
            return dict(kasa.INVALID_ARGUMENT)
        self.led_off = off == 1
        return {"err_code": 0}

    def _energy_entry(self) -> dict[str, Any]:
        total = self.total_wh()
        if self.shape == "v1":
            return {"energy": round(total / 1000, 3)}
        return {"energy_wh": int(total)}

    def _daystat(self, argument: Any) -> dict[str, Any]:
        today = time.localtime()
        days = []
        if isinstance(argument, dict) and (argument.get("year"), argument.get("month")) == (
            today.tm_year,
            today.tm_mon,
        ):
            days.append(
                {"year": today.tm_year, "month": today.tm_mon, "day": today.tm_mday}
                | self._energy_entry()
            )
        return {"day_list": days, "err_code": 0}

    def _monthstat(self, argument: Any) -> dict[str, Any]:
        today = time.localtime()
        months = []
        if isinstance(argument, dict) and argument.get("year") == today.tm_year:
            months.append({"year": today.tm_year, "month": today.tm_mon} | self._energy_entry())
        return {"month_list": months, "err_code": 0}

    def _time(self) -> dict[str, Any]:
        now = time.gmtime()
        return {
            "year": now.tm_year,
            "month": now.tm_mon,
            "mday": now.tm_mday,
            "hour": now.tm_hour,
            "min": now.tm_min,
            "sec": now.tm_sec,
            "err_code": 0,
        }


# -- transports -------------------------------------------------------------------


def _describe_reply(device: KasaDevice, reply: dict[str, Any]) -> str:
    emeter = reply.get("emeter")
    if isinstance(emeter, dict) and isinstance(emeter.get("get_realtime"), dict):
        return f"{device.power_mw() / 1000:,.1f} W"
    return "ok"


class _Connection(asyncio.Protocol):
    """One TCP connection: frames in, frames out, until the client closes."""

    def __init__(self, server: KasaServer) -> None:
        self.server = server
        self.decoder = kasa.FrameDecoder(kasa.MAX_REQUEST, kind="request")
        self.transport: asyncio.Transport | None = None
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = f"{peer[0]}:{peer[1]}"

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.connections.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            body = self.decoder.feed(data)
            while body is not None:
                self._answer(body)
                body = self.decoder.feed(b"")
        except ProtocolError as exc:
            self.server.log_bad(self.peer, str(exc))
            self.transport.abort()

    def eof_received(self) -> bool:
        if self.decoder.pending:
            try:
                self._answer(self.decoder.feed_eof())
            except ProtocolError as exc:
                self.server.log_bad(self.peer, str(exc))
        return False  # close our side too

    def _answer(self, body: bytes) -> None:
        assert self.transport is not None
        request = kasa.loads(body, kind="request")
        reply = self.server.device.handle(request)
        self.server.log_request("tcp", self.peer, request, reply)
        self.transport.write(kasa.frame(reply))
        if self.transport.get_write_buffer_size() > _MAX_UNSENT:
            raise ProtocolError("client does not read its replies")


class _Discovery(asyncio.DatagramProtocol):
    """The UDP side: any request in a datagram, answered to its sender."""

    def __init__(self, server: KasaServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not a DatagramTransport subclass before Python 3.12, but one in behaviour.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        peer = f"{addr[0]}:{addr[1]}"
        if len(data) > kasa.MAX_REQUEST:
            self.server.log_bad(peer, f"datagram of {len(data):,} bytes ignored")
            return
        try:
            request = kasa.loads(kasa.decrypt(data), kind="request")
        except ProtocolError as exc:
            self.server.log_bad(peer, str(exc))
            return
        reply = self.server.device.handle(request)
        self.server.log_request("udp", peer, request, reply)
        self.transport.sendto(kasa.datagram(reply), addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: udp error: %s", self.server.device.alias, exc)


# Serves a TCP connection in place of the plug's own protocol (tests: a plug
# that misbehaves in one particular way, on the emulator's sockets).
Misbehaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class KasaServer:
    """A running emulated plug: ``port`` (TCP and UDP), ``device``, ``close()``."""

    def __init__(
        self, device: KasaDevice, host: str, verbose: bool, misbehave: Misbehaviour | None = None
    ) -> None:
        self.device = device
        self.host = host
        self.port = 0
        self.verbose = verbose
        self.misbehave = misbehave
        self.connections: set[asyncio.Transport] = set()
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    async def _bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        attempts = _BIND_ATTEMPTS if port == 0 else 1
        for attempt in range(attempts):
            if self.misbehave is not None:
                tcp = await asyncio.start_server(
                    self._misbehave, self.host, port, reuse_address=True, backlog=256
                )
            else:
                tcp = await loop.create_server(
                    lambda: _Connection(self), self.host, port, reuse_address=True, backlog=128
                )
            bound = tcp.sockets[0].getsockname()[1]
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Discovery(self), local_addr=(self.host, bound)
                )
            except OSError as exc:
                tcp.close()
                await tcp.wait_closed()
                # A free TCP port may be a busy UDP one: try another.
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise
                continue
            self._tcp, self._udp, self.port = tcp, udp, bound
            return

    async def _misbehave(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.misbehave is not None
        transport = cast(asyncio.Transport, writer.transport)
        self.connections.add(transport)
        try:
            await self.misbehave(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client went away, or the server is closing
        finally:
            self.connections.discard(transport)
            writer.close()

    def log_request(self, via: str, peer: str, request: dict[str, Any], reply: Any) -> None:
        if self.verbose or log.isEnabledFor(logging.DEBUG):
            log.log(
                logging.INFO if self.verbose else logging.DEBUG,
                "%s %s: %s from %s -> %s",
                self.device.alias,
                via,
                self.device.summary(request),
                peer,
                _describe_reply(self.device, reply),
            )

    def log_bad(self, peer: str, reason: str) -> None:
        log.warning("%s: bad request from %s: %s", self.device.alias, peer, reason)

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for transport in list(self.connections):
                transport.abort()
            await self._tcp.wait_closed()
            self._tcp = None


async def start_kasa(
    host: str,
    port: int,
    source: PowerSource,
    *,
    shape: str = "v2",
    alias: str = "Emulated plug",
    index: int = 0,
    verbose: bool = False,
    clock: Callable[[], float] = time.monotonic,
    misbehave: Misbehaviour | None = None,
) -> KasaServer:
    """Serve an emulated HS110 on ``host``:``port`` (TCP and UDP); port 0 picks a free one.

    ``shape`` is the emeter reply shape, ``"v1"`` (hardware 1.0: floats in W,
    V, A, kWh) or ``"v2"`` (2.0 and later: integers in mW, mV, mA, Wh).
    ``index`` tells plugs apart (MAC and device id).  With ``verbose`` every
    request is logged at INFO on the ``whitegoodsd.emulator`` logger, else
    at DEBUG.  ``misbehave`` serves each TCP connection instead of the plug's
    protocol (the UDP side stays the plug's).
    """
    device = KasaDevice(source, shape=shape, alias=alias, index=index, clock=clock)
    server = KasaServer(device, host, verbose, misbehave)
    await server._bind(port)
    return server


def _starter(shape: str) -> Starter:
    async def start(
        host: str,
        port: int,
        source: PowerSource,
        alias: str,
        index: int,
        verbose: bool,
        args: argparse.Namespace | None,
    ) -> PlugServer:
        return await start_kasa(
            host, port, source, shape=shape, alias=alias, index=index, verbose=verbose
        )

    return start


_V2 = Family(
    "kasa-v2", "kasa", kasa.PORT, "TP-Link HS110 hardware 2.0 (mW, mV, mA, Wh)", _starter("v2")
)
EMULATED = (
    _V2,
    Family(
        "kasa-v1", "kasa", kasa.PORT, "TP-Link HS110 hardware 1.0 (W, V, A, kWh)", _starter("v1")
    ),
    dataclasses.replace(_V2, name="kasa"),
)
