"""Finding Kasa plugs: system.get_sysinfo over UDP 9999, unicast or broadcast."""

from __future__ import annotations

import re

from whitegoodsd.discovery import FoundPlug, udp_probe
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import kasa


def _mac(text: object) -> str:
    digits = re.sub(r"[^0-9a-fA-F]", "", text if isinstance(text, str) else "").lower()
    if len(digits) != 12:
        return "unknown"
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _text(value: object, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_kasa(data: bytes, addr: tuple[str, int]) -> FoundPlug:
    """A Kasa discovery reply (enciphered sysinfo JSON) as a FoundPlug."""
    if len(data) > kasa.MAX_REPLY:
        raise ProtocolError("reply too long")
    sysinfo = kasa.parse_sysinfo(kasa.loads(kasa.decrypt(data)))
    model = _text(sysinfo.get("model")) or _text(sysinfo.get("dev_name")) or "unknown Kasa"
    hardware = _text(sysinfo.get("hw_ver"), 16)
    if hardware:
        model += f" hw {hardware}"
    children = sysinfo.get("children")
    if isinstance(children, list) and children:
        model += f", {len(children)} outlets"
    return FoundPlug(
        family="kasa",
        host=addr[0],
        port=addr[1],
        model=model,
        name=_text(sysinfo.get("alias")),
        mac=_mac(sysinfo.get("mac", sysinfo.get("mic_mac"))),
        meters_power=kasa.meters_power(sysinfo),
    )


def kasa_probe(local: tuple[str, int]) -> bytes:
    return kasa.datagram(kasa.GET_SYSINFO)


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    return await udp_probe(kasa.PORT, kasa_probe, parse_kasa, target, seconds)
