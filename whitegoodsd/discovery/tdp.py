"""Finding Tapo plugs and KLAP Kasa plugs: TP-Link's discovery on UDP 20002.

A SMART device (Tapo) is offered as ``driver = tapo``, an IOT one (Kasa on
KLAP firmware) as ``driver = kasa`` with ``protocol = klap``; both with
placeholder credentials to fill in.  Plugs on TPAP firmware say so in the
model column.
"""

from __future__ import annotations

import functools
import os

from whitegoodsd.discovery import FoundPlug, udp_probe
from whitegoodsd.protocols import tdp

USERNAME_PLACEHOLDER = "your-tp-link-account@example.com"
PASSWORD_PLACEHOLDER = "your-tp-link-password"


@functools.cache
def _public_key() -> str:
    """An RSA public key for the probe: plugs want one offered, even if unused here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _probe(local: tuple[str, int]) -> bytes:
    return tdp.probe(_public_key(), int.from_bytes(os.urandom(4), "big"))


def _mac(text: str) -> str:
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)) if len(digits) == 12 else "unknown"


def parse(data: bytes, addr: tuple[str, int]) -> FoundPlug:
    device = tdp.parse_reply(data)
    model = f"{device.model}, {device.encrypt_type}"
    if device.tpap:
        model += ' (TPAP: switch on "Third-Party Compatibility" in the Tapo app)'
    options = [("username", USERNAME_PLACEHOLDER), ("password", PASSWORD_PLACEHOLDER)]
    if device.family == "kasa":
        options.insert(0, ("protocol", "klap"))
    return FoundPlug(
        family=device.family,
        host=addr[0],
        port=device.http_port,
        model=model,
        name="",
        mac=_mac(device.mac),
        meters_power=device.meters_power,
        options=tuple(options),
    )


async def find(target: tuple[str, int | None] | None, seconds: float) -> list[FoundPlug]:
    return await udp_probe(tdp.PORT, _probe, parse, target, seconds)
