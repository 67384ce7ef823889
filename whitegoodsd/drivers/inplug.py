"""Watts Clever INPLUG (Ankuoo NEO PRO) over the Broadlink UDP protocol (port 80).

A thin asyncio transport around :mod:`whitegoodsd.protocols.broadlink`, which
does all the packet work.  The first poll of a plug sends a unicast hello to
learn its device type and MAC (a NEO, type 0x2717, has no meter and is refused
with a clear error) and authenticates; later polls reuse the session and cost
one request and one reply.  A plug that restarted rejects the session (an
error code, or a reply that no longer decrypts): the poll authenticates again
and asks once more.  All of it runs inside the poll's timeout, so a pass is
never held up; if the time runs out, the next poll starts with the
authentication.

Replies are matched by packet counter; duplicates (plugs send every packet
twice), replies to other packets, short or corrupt datagrams and datagrams
from other addresses are dropped, and a poll that gets nothing better says
what it dropped.  A request without an answer is sent again every second or
so until the timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

from whitegoodsd.drivers.base import Driver, PlugError, ProtocolError, Reading
from whitegoodsd.protocols import broadlink

T = TypeVar("T")

RESEND_INTERVAL = 1.0
QUEUE_LIMIT = 64  # datagrams waiting to be judged; a flood beyond this is dropped


class _Link(asyncio.DatagramProtocol):
    """One connected UDP socket to one plug, for the length of one poll."""

    def __init__(self, on_drop: Callable[[str], None]) -> None:
        self.on_drop = on_drop
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(QUEUE_LIMIT)
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # A connected socket already filters by address; this is the second check.
        if self.peer is not None and tuple(addr[:2]) != self.peer:
            self.on_drop(f"datagram from {addr[0]}:{addr[1]}, not the plug")
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.on_drop("more datagrams than expected")

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            try:
                self.queue.put_nowait(exc)
            except asyncio.QueueFull:
                pass

    async def exchange(
        self, packet: bytes, accept: Callable[[bytes], T], resend: float, sends: int
    ) -> T:
        """Send ``packet`` (again every ``resend`` s) until ``accept`` takes a reply.

        ``accept`` raises broadlink.Stray for a datagram to drop.
        """
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        for _ in range(sends):
            self.transport.sendto(packet)
            deadline = loop.time() + resend
            while (remaining := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
                if isinstance(item, OSError):
                    raise item
                try:
                    return accept(item)
                except broadlink.Stray as exc:
                    self.on_drop(str(exc))
        raise TimeoutError


def _hello_reply(data: bytes) -> broadlink.DeviceInfo:
    try:
        return broadlink.parse_hello_reply(data)
    except broadlink.Stray:
        raise
    except ProtocolError as exc:
        raise broadlink.Stray(str(exc)) from None


class InplugPlug(Driver):
    """A Watts Clever INPLUG, or any Broadlink SP2-family plug with a power meter.

    Sockets are opened per poll, not held between polls.  python-broadlink
    does the same with real plugs (a new socket per packet), so plugs do not
    tie a session to the client's port; no descriptor is held for an idle
    plug, so the monitor's cap on polls in flight also caps open sockets; and
    a new socket cannot hold stale datagrams from an earlier poll.  The
    session (device id and key) is what persists, in the codec's Client.
    """

    NAME = "inplug"
    DEFAULT_PORT = broadlink.PORT
    DESCRIPTION = "Watts Clever INPLUG / Ankuoo NEO PRO (Broadlink, AES, UDP 80)"

    def __init__(self, host: str, port: int | None, timeout: float) -> None:
        super().__init__(host, port, timeout)
        self.client = broadlink.Client()
        self.info: broadlink.DeviceInfo | None = None
        self.authentications = 0
        self._dropped = 0  # datagrams dropped in this poll
        self._last_drop = ""

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        self._last_drop = reason

    async def read(self) -> Reading:
        """Poll once; a timeout names what was dropped while waiting, if anything."""
        self._dropped = 0
        try:
            return await super().read()
        except PlugError as exc:
            if self._dropped and isinstance(exc.__cause__, TimeoutError):
                raise PlugError(
                    f"{exc}; ignored {self._dropped} datagram(s), the last: {self._last_drop}"
                ) from exc.__cause__
            raise

    async def _read(self) -> Reading:
        loop = asyncio.get_running_loop()
        transport, link = await loop.create_datagram_endpoint(
            lambda: _Link(self._drop),
            remote_addr=(self.host, self.port),
            family=socket.AF_INET,
        )
        try:
            return await self._poll(link)
        finally:
            transport.close()

    async def _ask(self, link: _Link, packet: bytes, accept: Callable[[bytes], T]) -> T:
        resend = min(RESEND_INTERVAL, max(0.05, self.timeout / 3))
        sends = math.ceil(self.timeout / resend) + 1
        return await link.exchange(packet, accept, resend, sends)

    async def _poll(self, link: _Link) -> Reading:
        if self.info is None:
            assert link.transport is not None
            local = link.transport.get_extra_info("sockname")
            hello = broadlink.Hello(dt.datetime.now().astimezone(), local[0], local[1])
            info = await self._ask(link, broadlink.hello_request(hello), _hello_reply)
            self.client.learn(info)
            self.info = info
        if self.info.meters_power is False:
            raise ProtocolError(
                f"{self.info.model} cannot measure power; "
                f"only type 0x{broadlink.INPLUG:04X} (NEO PRO, INPLUG) has a meter"
            )
        if self.client.session is None:
            await self._authenticate(link)
        try:
            payload = await self._power(link)
        except broadlink.SessionRejected:
            await self._authenticate(link)
            try:
                payload = await self._power(link)
            except broadlink.SessionRejected as exc:
                raise ProtocolError(f"{exc}, even after a new authentication") from None
        return Reading(power_mw=broadlink.parse_power(payload))

    async def _authenticate(self, link: _Link) -> None:
        await self._ask(link, self.client.auth_request(), self.client.receive)
        self.authentications += 1

    async def _power(self, link: _Link) -> bytes:
        request = self.client.control_request(broadlink.Control.GET_POWER)
        return await self._ask(link, request, self.client.receive)


DRIVER = InplugPlug
