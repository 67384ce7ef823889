"""Finding Tasmota plugs: ``GET /cm?cmnd=Status 0``, on one address or on mDNS hosts.

Tasmota builds with mDNS advertise ``_http._tcp`` under their host name
(``tasmota-XXXXXX-NNNN`` by default); each is asked ``Status 0``.  A plug
with a web password answers only a WARNING: it is listed, with a password
line to fill in.
"""

from __future__ import annotations

import asyncio

from whitegoodsd.discovery import FoundPlug
from whitegoodsd.discovery.shelly import PASSWORD_PLACEHOLDER, _mac
from whitegoodsd.discovery.web import browse, get
from whitegoodsd.errors import AuthError, ProtocolError
from whitegoodsd.protocols import tasmota

SERVICES = ("_http._tcp.local.",)


async def probe(host: str, port: int, seconds: float) -> FoundPlug | None:
    response = await get(host, port, tasmota.target(command=tasmota.DEVICE_STATUS), seconds)
    if response is None or response.status != 200:
        return None
    try:
        device = tasmota.parse_device(response.body)
    except AuthError:
        return FoundPlug(
            family="tasmota", host=host, port=port, model="Tasmota (web password set)",
            name="", mac="unknown", meters_power=None,
            options=(("password", PASSWORD_PLACEHOLDER),),
        )  # fmt: skip
    except ProtocolError:
        return None
    return FoundPlug(
        family="tasmota",
        host=host,
        port=port,
        model=f"Tasmota {device.version}".strip(),
        name=device.name,
        mac=_mac(device.mac),
        meters_power=device.meters_power,
    )


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    if target is not None:
        plug = await probe(target[0], target[1] or tasmota.PORT, seconds)
        return [plug] if plug else []
    hosts = await browse(SERVICES, seconds, lambda name: name.lower().startswith("tasmota"))
    plugs = await asyncio.gather(*(probe(h, p, seconds / 2) for h, p in hosts))
    unique = {(p.host, p.port): p for p in plugs if p is not None}
    return list(unique.values())
