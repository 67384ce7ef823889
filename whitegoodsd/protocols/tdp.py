"""TP-Link's UDP discovery on port 20002 ("TDP"), without I/O.

Tapo plugs and Kasa plugs on KLAP firmware answer a probe on UDP 20002.
Both directions are a 16-byte header and JSON:

=======  ======  ==================================================
offset   size    field (big-endian)
=======  ======  ==================================================
0        1       version, 2
1        1       message type, 0
2        2       op code, 1 (probe)
4        2       length of the JSON that follows
6        1       flags, 0x11
7        1       padding, 0
8        4       serial, random
12       4       CRC-32 of the whole datagram, computed with
                 0x5A6B7C8D in this field
=======  ======  ==================================================

The probe's JSON offers an RSA public key (``{"params":{"rsa_key":PEM}}``)
that plugs may use to encrypt parts of their reply; the parts used here are
plain: ``{"error_code":0,"result":{"device_type","device_model","mac","ip",
"mgt_encrypt_schm":{"encrypt_type","http_port","lv",...},...}}``.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from whitegoodsd.errors import ProtocolError

PORT = 20002
MAX_REPLY = 16 * 1024
_HEADER = struct.Struct(">BBHHBBII")
_CRC_SEED = 0x5A6B7C8D

# Plugs that meter power, by the model before "(": what discover may promise.
METERED = frozenset({"P110", "P110M", "P115", "P125M", "KP115", "KP125", "KP125M", "HS110",
                     "EP25", "HS300", "P304M", "P316M", "EP40M"})  # fmt: skip
UNMETERED = frozenset({"P100", "P105", "P125", "HS100", "HS103", "HS105", "KP105", "EP10"})


def _crc(datagram: bytes) -> int:
    return zlib.crc32(datagram) & 0xFFFFFFFF


def packet(payload: bytes, serial: int, op_code: int = 1, msg_type: int = 0) -> bytes:
    """A datagram with its header and CRC."""
    head = _HEADER.pack(2, msg_type, op_code, len(payload), 0x11, 0, serial, _CRC_SEED)
    crc = _crc(head + payload)
    return head[:12] + struct.pack(">I", crc) + payload


def probe(rsa_public_pem: str, serial: int) -> bytes:
    """The discovery probe, offering ``rsa_public_pem``."""
    payload = json.dumps({"params": {"rsa_key": rsa_public_pem}}, separators=(",", ":"))
    return packet(payload.encode(), serial)


def parse_packet(data: bytes) -> dict[str, Any]:
    """The JSON object of a datagram, header and CRC checked."""
    if len(data) > MAX_REPLY:
        raise ProtocolError("discovery reply too long")
    if len(data) < _HEADER.size:
        raise ProtocolError(f"discovery reply of {len(data)} bytes, shorter than its header")
    version, _, _, size, _, _, _, crc = _HEADER.unpack_from(data)
    if version != 2:
        raise ProtocolError(f"discovery reply version {version}")
    if size != len(data) - _HEADER.size:
        raise ProtocolError("discovery reply length does not match its header")
    seeded = data[:12] + struct.pack(">I", _CRC_SEED) + data[_HEADER.size :]
    if _crc(seeded) != crc:
        raise ProtocolError("discovery reply CRC does not match")
    try:
        value = json.loads(data[_HEADER.size :].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError("discovery reply is not JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError("discovery reply is not a JSON object")
    return value


@dataclass(frozen=True)
class Device:
    """What a plug says about itself in a discovery reply."""

    device_type: str  # SMART.TAPOPLUG, IOT.SMARTPLUGSWITCH, ...
    model: str  # P110(UK)
    mac: str
    encrypt_type: str  # KLAP, AES, TPAP, ...
    http_port: int
    login_version: int | None
    tpap: bool  # firmware on TPAP: KLAP needs "Third-Party Compatibility"

    @property
    def family(self) -> str:
        """The driver: tapo for SMART devices, kasa for IOT ones."""
        return "tapo" if self.device_type.upper().startswith("SMART.") else "kasa"

    @property
    def meters_power(self) -> bool | None:
        base = self.model.partition("(")[0].strip().upper()
        if base in METERED:
            return True
        if base in UNMETERED:
            return False
        return None


def _text(value: object, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_reply(data: bytes) -> Device:
    """A discovery reply as a :class:`Device`."""
    reply = parse_packet(data)
    if reply.get("error_code", 0) != 0:
        raise ProtocolError(f"discovery reply error {reply.get('error_code')!r:.20}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("discovery reply has no result")
    device_type = _text(result.get("device_type"))
    if not device_type:
        raise ProtocolError("discovery reply has no device_type")
    scheme = result.get("mgt_encrypt_schm")
    scheme = scheme if isinstance(scheme, dict) else {}
    port = scheme.get("http_port", 80)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        port = 80
    login = scheme.get("lv")
    encrypt = _text(scheme.get("encrypt_type"), 16)
    tpap = encrypt.upper() == "TPAP" or isinstance(result.get("tpap"), dict)
    return Device(
        device_type=device_type,
        model=_text(result.get("device_model")) or "unknown",
        mac=_text(result.get("mac"), 20),
        encrypt_type=encrypt or "unknown",
        http_port=port,
        login_version=login if isinstance(login, int) and not isinstance(login, bool) else None,
        tpap=bool(tpap),
    )


def reply(result: dict[str, Any], serial: int = 0) -> bytes:
    """A discovery reply (for the emulator)."""
    payload = json.dumps({"error_code": 0, "result": result}, separators=(",", ":")).encode()
    return packet(payload, serial, op_code=1, msg_type=0)
