"""TP-Link Kasa HS110 and relatives over the legacy TCP protocol (port 9999).

A thin asyncio transport around :mod:`whitegoodsd.protocols.kasa`: a fresh
connection per poll (plugs accept very few connections at once, and a held
one can lock out the vendor app), the whole request in one write, the reply
read until the codec says it is complete.

The transport drives a non-blocking socket straight from the event loop's
reader and writer callbacks rather than through asyncio streams: a poll is a
handful of system calls and one wake-up, which is what lets a pass over a
thousand plugs cost little more than the kernel's own work.  The caller
(Driver.read) bounds the whole exchange in time; cancellation closes the
socket.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Any

from whitegoodsd.drivers.base import Driver, Reading
from whitegoodsd.protocols import kasa

_CHUNK = 4096
_REALTIME = kasa.frame(kasa.GET_REALTIME)  # the same bytes every poll


def numeric_family(host: str) -> socket.AddressFamily | None:
    """AF_INET or AF_INET6 when ``host`` is an address literal, else None (a name)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    future = loop.create_future()
    loop.add_reader(fd, _wake, future)
    try:
        await future
    finally:
        loop.remove_reader(fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    future = loop.create_future()
    loop.add_writer(fd, _wake, future)
    try:
        await future
    finally:
        loop.remove_writer(fd)


async def _addresses(
    host: str, port: int, family: socket.AddressFamily | None
) -> list[tuple[socket.AddressFamily, Any]]:
    if family is not None:
        return [(family, (host, port))]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(info[0], info[4]) for info in infos]


async def _send(
    loop: asyncio.AbstractEventLoop, family: socket.AddressFamily, address: Any, request: bytes
) -> socket.socket:
    """A socket connected to ``address`` with ``request`` sent on it."""
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, os.strerror(code))
        try:
            # On a fast network the handshake is already done: no wait at all.
            sent = sock.send(request)
        except BlockingIOError:
            await _writable(loop, sock.fileno())
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code)) from None
            sent = sock.send(request)
        if sent != len(request):  # a 30-byte request on a fresh socket: never, in practice
            raise OSError(errno.EMSGSIZE, "request not sent whole")
        return sock
    except BaseException:
        sock.close()
        raise


async def transact(
    host: str,
    port: int,
    request: bytes,
    limit: int = kasa.MAX_REPLY,
    family: socket.AddressFamily | None = None,
) -> bytes:
    """Send a framed request on a new connection; the deciphered reply body."""
    loop = asyncio.get_running_loop()
    addresses = await _addresses(host, port, family or numeric_family(host))
    for number, (address_family, address) in enumerate(addresses, start=1):
        try:
            sock = await _send(loop, address_family, address, request)
            break
        except OSError:
            if number == len(addresses):
                raise
    else:
        raise OSError(errno.EHOSTUNREACH, f"no address for {host}")
    try:
        decoder = kasa.FrameDecoder(limit)
        while True:
            try:
                data = sock.recv(_CHUNK)
            except BlockingIOError:
                await _readable(loop, sock.fileno())
                continue
            body = decoder.feed(data) if data else decoder.feed_eof()
            if body is not None:
                return body
    finally:
        sock.close()


async def exchange(
    host: str, port: int, request: dict[str, Any], limit: int = kasa.MAX_REPLY
) -> dict[str, Any]:
    """Send one request on a new connection and return the decoded reply."""
    return kasa.loads(await transact(host, port, kasa.frame(request), limit))


class KasaPlug(Driver):
    """An HS110, KP115, KP125, EP25 v1 or any plug with the legacy emeter."""

    NAME = "kasa"
    DEFAULT_PORT = kasa.PORT
    DESCRIPTION = "TP-Link Kasa HS110/KP115/KP125 (XOR-ciphered JSON, TCP 9999)"

    def __init__(self, host: str, port: int | None, timeout: float) -> None:
        super().__init__(host, port, timeout)
        self._family = numeric_family(host)

    async def _read(self) -> Reading:
        body = await transact(self.host, self.port, _REALTIME, family=self._family)
        return kasa.parse_realtime(kasa.loads(body))


DRIVER = KasaPlug
