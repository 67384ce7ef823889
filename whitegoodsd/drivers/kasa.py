"""TP-Link Kasa HS110 and relatives over the legacy TCP protocol (port 9999).

A thin asyncio transport around :mod:`whitegoodsd.protocols.kasa`: a fresh
connection per poll (plugs accept very few connections at once, and a held
one can lock out the vendor app), the whole request in one write, the reply
read until the codec says it is complete.
"""

from __future__ import annotations

import asyncio
from typing import Any

from whitegoodsd.drivers.base import Driver, Reading
from whitegoodsd.protocols import kasa

_CHUNK = 4096


async def exchange(
    host: str, port: int, request: dict[str, Any], limit: int = kasa.MAX_REPLY
) -> dict[str, Any]:
    """Send one request on a new connection and return the decoded reply."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        # Header and body in one write: some peers treat each segment as a message.
        writer.write(kasa.frame(request))
        await writer.drain()
        decoder = kasa.FrameDecoder(limit)
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                body = decoder.feed_eof()
                break
            complete = decoder.feed(data)
            if complete is not None:
                body = complete
                break
        return kasa.loads(body)
    finally:
        writer.close()


class KasaPlug(Driver):
    """An HS110, KP115, KP125, EP25 v1 or any plug with the legacy emeter."""

    NAME = "kasa"
    DEFAULT_PORT = kasa.PORT
    DESCRIPTION = "TP-Link Kasa HS110/KP115/KP125 (XOR-ciphered JSON, TCP 9999)"

    async def _read(self) -> Reading:
        reply = await exchange(self.host, self.port, kasa.GET_REALTIME)
        return kasa.parse_realtime(reply)


DRIVER = KasaPlug
