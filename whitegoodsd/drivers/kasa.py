"""TP-Link Kasa HS110 and relatives over the legacy TCP protocol (port 9999).

A poll is one conversation around :mod:`whitegoodsd.protocols.kasa`: a fresh
connection (plugs accept very few connections at once, and a held one can
lock out the vendor app), the whole request in one write, the reply read
until the codec says it is complete.  The engine runs it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.conversation import exchange as converse
from whitegoodsd.drivers.base import Driver, Reading
from whitegoodsd.protocols import kasa

_REALTIME = kasa.frame(kasa.GET_REALTIME)  # the same bytes every poll


def realtime_conversation(
    host: str, port: int, limit: int = kasa.MAX_REPLY
) -> Conversation[Reading]:
    """One emeter poll on a new connection."""
    yield Connect(host, port)
    decoder = kasa.FrameDecoder(limit)
    body = yield from converse(_REALTIME, lambda d: decoder.feed(d) if d else decoder.feed_eof())
    return kasa.parse_realtime(kasa.loads(body))


async def exchange(
    host: str, port: int, request: dict[str, Any], limit: int = kasa.MAX_REPLY
) -> dict[str, Any]:
    """Send one request on a new connection and return the decoded reply (for tools)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(kasa.frame(request))
        decoder = kasa.FrameDecoder(limit)
        while True:
            data = await reader.read(65536)
            body = decoder.feed(data) if data else decoder.feed_eof()
            if body is not None:
                return kasa.loads(body)
    finally:
        writer.close()


class KasaPlug(Driver):
    """An HS110, KP115, KP125, EP25 v1 or any plug with the legacy emeter."""

    NAME = "kasa"
    DEFAULT_PORT = kasa.PORT
    DESCRIPTION = "TP-Link Kasa HS110/KP115/KP125 (XOR-ciphered JSON, TCP 9999)"
    EMULATOR = "whitegoodsd.emulator.kasa"
    DISCOVERY = "whitegoodsd.discovery.kasa"

    def poll(self) -> Conversation[Reading]:
        return realtime_conversation(self.host, self.port or kasa.PORT)


DRIVER = KasaPlug
