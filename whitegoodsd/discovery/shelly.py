"""Finding Shelly plugs: ``GET /shelly``, on one address or on the mDNS hosts.

Gen2 and later advertise ``_shelly._tcp``; every generation advertises
``_http._tcp`` under a name that starts with "shelly".  Each host found is
asked ``/shelly``, which needs no password.
"""

from __future__ import annotations

import asyncio

from whitegoodsd.discovery import FoundPlug
from whitegoodsd.discovery.web import browse, get
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import shelly

SERVICES = ("_shelly._tcp.local.", "_http._tcp.local.")
PASSWORD_PLACEHOLDER = "CHANGE-ME"


def _mac(text: str) -> str:
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)) if len(digits) == 12 else "unknown"


def found(identity: shelly.Identity, host: str, port: int) -> FoundPlug:
    """A ``/shelly`` identity as a FoundPlug (with a password line when one is set)."""
    meters: bool | None = True if identity.gen >= 2 else None
    if identity.gen == 1 and identity.meters is not None:
        meters = identity.meters > 0
    return FoundPlug(
        family="shelly",
        host=host,
        port=port,
        model=f"{identity.model} (Gen{identity.gen})",
        name=identity.name,
        mac=_mac(identity.mac),
        meters_power=meters,
        options=(("password", PASSWORD_PLACEHOLDER),) if identity.auth else (),
    )


async def probe(host: str, port: int, seconds: float) -> FoundPlug | None:
    response = await get(host, port, shelly.IDENTIFY, seconds)
    if response is None or response.status != 200:
        return None
    try:
        return found(shelly.parse_identity(response.body), host, port)
    except ProtocolError:
        return None


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    if target is not None:
        plug = await probe(target[0], target[1] or shelly.PORT, seconds)
        return [plug] if plug else []
    hosts = await browse(SERVICES, seconds, lambda name: name.lower().startswith("shelly"))
    plugs = await asyncio.gather(*(probe(h, p, seconds / 2) for h, p in hosts))
    unique = {(p.host, p.port): p for p in plugs if p is not None}
    return list(unique.values())
