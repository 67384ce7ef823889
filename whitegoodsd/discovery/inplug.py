"""Finding Broadlink plugs (the INPLUG): the hello over UDP 80."""

from __future__ import annotations

import datetime as dt

from whitegoodsd.discovery import FoundPlug, udp_probe
from whitegoodsd.protocols import broadlink


def parse_inplug(data: bytes, addr: tuple[str, int]) -> FoundPlug:
    """A Broadlink discovery reply as a FoundPlug."""
    info = broadlink.parse_hello_reply(data)
    return FoundPlug(
        family="inplug",
        host=addr[0],
        port=addr[1],
        model=info.model,
        name=info.name,
        mac=info.mac_text,
        meters_power=info.meters_power,
        locked=info.locked,
    )


def inplug_probe(local: tuple[str, int]) -> bytes:
    when = dt.datetime.now().astimezone()
    return broadlink.hello_request(broadlink.Hello(when, local[0], local[1]))


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    return await udp_probe(broadlink.PORT, inplug_probe, parse_inplug, target, seconds)
