"""TP-Link Kasa HS110 and relatives: the legacy TCP protocol (port 9999) or KLAP.

A legacy poll is one conversation around :mod:`whitegoodsd.protocols.kasa`: a
fresh connection (plugs accept very few connections at once, and a held one
can lock out the vendor app), the whole request in one write, the reply read
until the codec says it is complete.  The engine runs it.

Newer firmware (KP115 1.1.0, KP125, EP25, HS110 hardware 4 after updates)
closes port 9999 and takes the same JSON inside KLAP on HTTP port 80
(``_klap.py``), which needs the owner's TP-Link account.  With ``protocol =
auto`` (the default) a plug that refuses the legacy connection while
``username`` and ``password`` are set is asked over KLAP, in the same poll;
the protocol that answered is kept for later polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.conversation import exchange as converse
from whitegoodsd.drivers._klap import KlapClient
from whitegoodsd.drivers.base import PASSWORD, USERNAME, Driver, Option, Reading, parse_port
from whitegoodsd.protocols import kasa, klap

PROTOCOLS = ("auto", "xor", "klap")

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


def _protocol(text: str) -> str:
    name = text.strip().lower()
    if name not in PROTOCOLS:
        raise ValueError(f"expected one of {', '.join(PROTOCOLS)}, got {text!r}")
    return name


PROTOCOL = Option(
    "protocol",
    _protocol,
    "How to speak to the plug: xor (the legacy protocol on TCP port 9999), klap (KLAP "
    "on HTTP; the smartplug port, default 80, is the HTTP port; needs username and "
    "password unless the plug takes the default credentials), or auto: the legacy "
    "protocol first and, when the plug refuses the connection and username and "
    "password are set, KLAP on http_port. Default auto.",
    default="auto",
    metavar="auto|xor|klap",
)
HTTP_PORT = Option(
    "http_port",
    parse_port,
    "The HTTP port KLAP falls back to under protocol = auto. Default 80.",
    default=klap.PORT,
    metavar="PORT",
)


class KasaPlug(Driver):
    """An HS110, KP115, KP125, EP25 v1 or any plug with the legacy emeter."""

    NAME = "kasa"
    DEFAULT_PORT = kasa.PORT
    DESCRIPTION = "TP-Link Kasa HS110/KP115/KP125 (XOR-ciphered JSON on TCP 9999, or KLAP)"
    OPTIONS = (PROTOCOL, HTTP_PORT, USERNAME, PASSWORD)
    EMULATOR = "whitegoodsd.emulator.kasa"
    DISCOVERY = "whitegoodsd.discovery.kasa"

    def setup(self) -> None:
        protocol = self.options.get("protocol") or "auto"
        if protocol == "klap":
            http_port = self.port or klap.PORT
        else:
            http_port = self.options.get("http_port") or klap.PORT
        username, password = self.options.get("username"), self.options.get("password")
        self.klap: KlapClient | None = None
        if protocol == "klap" or (protocol == "auto" and (username or password)):
            self.klap = KlapClient(self.host, http_port, username, password)
        self.mode: str = protocol
        # what answered last: "xor" or "klap"; None until one did (auto)
        self.protocol: str | None = protocol if protocol != "auto" else None

    @classmethod
    def default_port(cls, options: Mapping[str, Any]) -> int | None:
        return klap.PORT if options.get("protocol") == "klap" else kasa.PORT

    def notes(self) -> list[str]:
        return self.klap.take_notes() if self.klap is not None else []

    def poll(self) -> Conversation[Reading]:
        if self.klap is None or self.mode == "xor":
            return realtime_conversation(self.host, self.port or kasa.PORT)
        if self.mode == "klap":
            return self._klap_poll(self.klap)
        if self.protocol == "klap":
            return self._klap_again(self.klap)
        return self._auto_poll(self.klap)

    def _klap_again(self, client: KlapClient) -> Conversation[Reading]:
        try:
            return (yield from self._klap_poll(client))
        except ConnectionRefusedError:
            self.protocol = None  # the next poll tries both again
            raise

    def _klap_poll(self, client: KlapClient) -> Conversation[Reading]:
        yield from client.begin()
        body = yield from client.call(kasa.dumps(kasa.GET_REALTIME))
        return kasa.parse_realtime(kasa.loads(body))

    def _auto_poll(self, client: KlapClient) -> Conversation[Reading]:
        """The legacy protocol, or KLAP when the plug refuses it; what answered is kept."""
        try:
            reading = yield from realtime_conversation(self.host, self.port or kasa.PORT)
        except ConnectionRefusedError:
            reading = yield from self._klap_poll(client)
            self.protocol = "klap"
            client.notes.append(
                f"port {self.port} refused the legacy protocol; KLAP on {client.port} answered"
            )
            return reading
        self.protocol = "xor"
        return reading


DRIVER = KasaPlug
