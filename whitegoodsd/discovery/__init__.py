"""Finding plugs: what a found plug is, and the UDP probe most families use.

Each plug family that can be found names a module (its ``DISCOVERY``) with
``async def find(target, seconds) -> list[FoundPlug]``: with ``target`` None
it looks on the local network, else it asks that ``(host, port or None)``
only.  ``whitegoodsd discover`` (``discover.py``) runs them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whitegoodsd.errors import ProtocolError

BROADCAST = "255.255.255.255"
RESEND_INTERVAL = 1.0
THRESHOLD_MW = 4000  # the starting values offered in each INI section
MINSAMPLES = 3


@dataclass(frozen=True)
class FoundPlug:
    """One plug that answered a probe."""

    family: str  # the driver name: kasa or inplug
    host: str
    port: int
    model: str
    name: str
    mac: str
    meters_power: bool | None  # None: a device type this program does not know
    locked: bool | None = None  # Broadlink only
    options: tuple[tuple[str, str], ...] = ()  # further INI lines (credential placeholders)

    @property
    def default_port(self) -> int | None:
        from whitegoodsd import drivers

        return drivers.get(self.family).DEFAULT_PORT

    @property
    def smartplug(self) -> str:
        return self.host if self.port == self.default_port else f"{self.host}:{self.port}"

    def describe(self) -> str:
        meter = {True: "meters power", False: "no power meter", None: "power meter unknown"}
        name = f'"{self.name}"' if self.name else "(no name)"
        return (
            f"{self.host}:{self.port}  {self.family}  {self.model}  {name}  {self.mac}  "
            f"{meter[self.meters_power]}{', locked' if self.locked else ''}"
        )

    def ini(self, section: str) -> str:
        """The INI section for this plug, or a comment if it cannot be used."""
        lines = [f"; {self.describe()}"]
        if self.meters_power is False:
            lines.append("; this plug cannot measure power: whitegoodsd cannot use it")
            return "\n".join(lines) + "\n"
        if self.meters_power is None:
            lines.append("; unknown device type: it may not be able to measure power")
        lines += [
            f"[{section}]",
            f"smartplug = {self.smartplug}",
            f"driver = {self.family}",
            f"threshold_running_mw = {THRESHOLD_MW}",
            f"minsamples = {MINSAMPLES}",
            *(f"{key} = {value}" for key, value in self.options),
        ]
        return "\n".join(lines) + "\n"


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(256)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.queue.put_nowait((data, (addr[0], addr[1])))
        except asyncio.QueueFull:
            pass

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. "port unreachable" from a target that is not a plug: no answer


Probe = Callable[[tuple[str, int]], bytes]
Parse = Callable[[bytes, tuple[str, int]], FoundPlug]


async def udp_probe(
    default_port: int,
    make_probe: Probe,
    parse: Parse,
    target: tuple[str, int | None] | None,
    seconds: float,
) -> list[FoundPlug]:
    """Broadcast (or, with ``target``, unicast) a probe every second or so and
    gather the plugs that answer within ``seconds``; replies that ``parse``
    refuses with a ProtocolError are ignored."""
    loop = asyncio.get_running_loop()
    if target is None:
        host, port = BROADCAST, default_port
    else:
        host, port = target[0], target[1] or default_port
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        host = str(infos[0][4][0])
    transport, replies = await loop.create_datagram_endpoint(
        _Replies, local_addr=("0.0.0.0", 0), allow_broadcast=target is None
    )
    found: dict[tuple[str, int, str], FoundPlug] = {}
    try:
        local = transport.get_extra_info("sockname")
        probe = make_probe((local[0], local[1]))
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            transport.sendto(probe, (host, port))
            resend = min(deadline, loop.time() + RESEND_INTERVAL)
            while (remaining := resend - loop.time()) > 0:
                try:
                    data, addr = await asyncio.wait_for(replies.queue.get(), remaining)
                except TimeoutError:
                    break
                if target is not None and addr[0] != host:
                    continue
                try:
                    plug = parse(data, addr)
                except ProtocolError:
                    continue
                found.setdefault((plug.host, plug.port, plug.mac), plug)
                if target is not None:
                    return list(found.values())
    finally:
        transport.close()
    return list(found.values())
