"""The TP-Link Kasa legacy protocol, without I/O.

JSON enciphered with an autokey XOR (key starts at 171; each cipher byte is
the key for the next), sent over TCP port 9999 behind a 4-byte big-endian
length, or over UDP port 9999 without the length (discovery).  Bytes go in,
values come out: the driver, the emulator and the fuzz tests all share this
code, and none of it touches a socket.  Both directions are here: requests
and replies are framed alike, and :func:`realtime` is the inverse of
:func:`parse_realtime` for the emulator.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from whitegoodsd.errors import ProtocolError, Reading, finite

PORT = 9999
INITIAL_KEY = 171
MAX_REPLY = 64 * 1024  # real replies to the queries we send are under 2 KiB
MAX_REQUEST = 16 * 1024  # what an emulated plug accepts; real clients send < 1 KiB

GET_REALTIME: dict[str, Any] = {"emeter": {"get_realtime": {}}}
GET_SYSINFO: dict[str, Any] = {"system": {"get_sysinfo": {}}}

# What a plug answers for a module, or a method of a module, it does not have.
MODULE_NOT_SUPPORTED: dict[str, Any] = {"err_code": -1, "err_msg": "module not support"}
METHOD_NOT_SUPPORTED: dict[str, Any] = {"err_code": -2, "err_msg": "member not support"}
INVALID_ARGUMENT: dict[str, Any] = {"err_code": -3, "err_msg": "invalid argument"}

_HEADER = struct.Struct(">I")


# Both directions work on the whole message as one big integer rather than a
# Python loop per byte: the daemon deciphers every reply, so this is its hot path.


def encrypt(plain: bytes) -> bytes:
    """Autokey XOR: c = k ^ p; k = c.

    So each cipher byte is 171 XOR every plain byte up to it: a prefix XOR,
    computed in log2(n) shift-and-XOR steps.
    """
    size = len(plain)
    if not size:
        return b""
    value = int.from_bytes(plain, "big") ^ (INITIAL_KEY << 8 * (size - 1))
    shift = 8
    while shift < 8 * size:
        value ^= value >> shift
        shift *= 2
    return value.to_bytes(size, "big")


def decrypt(cipher: bytes) -> bytes:
    """Inverse of :func:`encrypt`: p = k ^ c; k = c.

    Each plain byte is its cipher byte XOR the cipher byte before it (171
    for the first): the cipher XOR itself shifted by one byte.
    """
    size = len(cipher)
    if not size:
        return b""
    value = int.from_bytes(cipher, "big")
    return (value ^ (value >> 8) ^ (INITIAL_KEY << 8 * (size - 1))).to_bytes(size, "big")


def dumps(message: object) -> bytes:
    """Compact JSON, as the plugs and their app send it."""
    return json.dumps(message, separators=(",", ":")).encode()


def frame(message: object) -> bytes:
    """A whole TCP message: length header and enciphered JSON, to send in one write."""
    body = encrypt(dumps(message))
    return _HEADER.pack(len(body)) + body


def datagram(message: object) -> bytes:
    """A UDP message: enciphered JSON with no length header."""
    return encrypt(dumps(message))


def loads(plain: bytes, kind: str = "reply") -> dict[str, Any]:
    """Decode a deciphered body into a JSON object, or raise ProtocolError."""
    try:
        value = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"{kind} is not JSON ({_brief(exc)})") from None
    except RecursionError:  # "[[[[..." fits in far less than MAX_REPLY
        raise ProtocolError(f"{kind} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{kind} is not a JSON object")
    return value


def _brief(exc: Exception) -> str:
    return str(exc).splitlines()[0][:80]


class FrameDecoder:
    """Reassembles length-prefixed messages from a TCP byte stream.

    Feed it what arrives; it answers with the deciphered body once a whole
    message is there.  Bytes after that message are kept for the next one:
    ``feed(b"")`` returns it if it is already complete (a client may send
    requests back to back on one connection).  A length of 0 (old firmware)
    means the body runs to the end of the connection.  More than ``limit``
    bytes is an error, whatever the header claims.  ``kind`` names what is
    decoded ("reply" or "request") in error messages.
    """

    def __init__(self, limit: int = MAX_REPLY, kind: str = "reply") -> None:
        self.limit = limit
        self.kind = kind
        self._buffer = bytearray()
        self._length: int | None = None  # None: header not yet read; 0: to EOF

    @property
    def buffered(self) -> int:
        """Bytes held: never more than ``limit`` plus the last piece fed."""
        return len(self._buffer)

    @property
    def pending(self) -> bool:
        """Whether part of a message has arrived."""
        return self._length is not None or bool(self._buffer)

    def feed(self, data: bytes) -> bytes | None:
        """Add received bytes; the deciphered body when complete, else None."""
        self._buffer += data
        if self._length is None:
            if len(self._buffer) < _HEADER.size:
                return None
            (self._length,) = _HEADER.unpack_from(self._buffer)
            del self._buffer[: _HEADER.size]
            if self._length > self.limit:
                raise ProtocolError(
                    f"{self.kind} claims {self._length:,} bytes, "
                    f"more than the {self.limit:,} accepted"
                )
        if self._length and len(self._buffer) >= self._length:
            body = bytes(self._buffer[: self._length])
            del self._buffer[: self._length]
            self._length = None
            return decrypt(body)
        if len(self._buffer) > self.limit:
            raise ProtocolError(f"{self.kind} longer than the {self.limit:,} bytes accepted")
        return None

    def feed_eof(self) -> bytes:
        """The connection closed: the body if that completes it, else ProtocolError."""
        if self._length == 0 and self._buffer:
            body = bytes(self._buffer)
            self._buffer.clear()
            self._length = None
            return decrypt(body)
        if self._length is None:
            if not self._buffer:
                raise ProtocolError(f"connection closed without a {self.kind}")
            raise ProtocolError("connection closed inside the length header")
        if self._length == 0:
            raise ProtocolError(f"connection closed before the {self.kind} body")
        raise ProtocolError(
            f"connection closed after {len(self._buffer):,} of {self._length:,} bytes"
        )


def _module(reply: dict[str, Any], module: str, method: str) -> dict[str, Any]:
    """The ``reply[module][method]`` object, checking both levels' err_code."""
    outer = reply.get(module)
    if not isinstance(outer, dict):
        raise ProtocolError(f"reply has no {module!r} object")
    _check_err(outer, module)
    inner = outer.get(method)
    if not isinstance(inner, dict):
        raise ProtocolError(f"reply has no {module}.{method} object")
    _check_err(inner, f"{module}.{method}")
    return inner


def _check_err(obj: dict[str, Any], where: str) -> None:
    code = obj.get("err_code", 0)
    if code != 0:
        msg = obj.get("err_msg")
        text = f": {msg}" if isinstance(msg, str) else ""
        raise ProtocolError(f"{where} err_code {code!r:.20}{text[:80]}")


def parse_realtime(reply: dict[str, Any]) -> Reading:
    """An ``emeter.get_realtime`` reply in either shape as a Reading.

    Hardware v1 reports floats in W, V, A and kWh (``power``, ``voltage``,
    ``current``, ``total``); v2 and later integers in mW, mV, mA and Wh
    (``power_mw`` ...).  The shape is told by the keys present.
    """
    realtime = _module(reply, "emeter", "get_realtime")

    def pick(v2_key: str, v1_key: str, scale: float) -> float | None:
        if v2_key in realtime:
            return finite(realtime[v2_key], v2_key)
        if v1_key in realtime:
            scaled = finite(realtime[v1_key], v1_key) * scale
            if not math.isfinite(scaled):  # 1e308 W is finite, 1e311 mW is not
                raise ProtocolError(f"{v1_key} is out of range")
            return scaled
        return None

    power = pick("power_mw", "power", 1000.0)
    if power is None:
        raise ProtocolError("emeter reply has neither power_mw nor power")
    if power < -1000.0:
        raise ProtocolError(f"negative power {power / 1000:,.6g} W")
    voltage = pick("voltage_mv", "voltage", 1000.0)
    current = pick("current_ma", "current", 1000.0)
    total = pick("total_wh", "total", 1000.0)
    return Reading(
        power_mw=max(0, round(power)),
        voltage_mv=None if voltage is None else round(voltage),
        current_ma=None if current is None else round(current),
        total_wh=total,
    )


def parse_sysinfo(reply: dict[str, Any]) -> dict[str, Any]:
    """The ``system.get_sysinfo`` object of a reply."""
    return _module(reply, "system", "get_sysinfo")


def meters_power(sysinfo: dict[str, Any]) -> bool:
    """Whether a plug's sysinfo says it has an energy meter (``ENE`` feature)."""
    feature = sysinfo.get("feature", "")
    return isinstance(feature, str) and "ENE" in feature.split(":")


def realtime(reading: Reading, shape: str = "v2") -> dict[str, Any]:
    """The ``emeter.get_realtime`` object a plug would send for ``reading``.

    ``shape`` is ``"v2"`` (integers in mW, mV, mA, Wh: hardware 2.0 and
    later) or ``"v1"`` (floats in W, V, A, kWh: HS110 hardware 1.0).  Values
    the reading lacks are left out.  :func:`parse_realtime` reads either back.
    """
    out: dict[str, Any] = {}
    if shape == "v1":
        if reading.voltage_mv is not None:
            out["voltage"] = reading.voltage_mv / 1000
        if reading.current_ma is not None:
            out["current"] = reading.current_ma / 1000
        out["power"] = reading.power_mw / 1000
        if reading.total_wh is not None:
            out["total"] = round(reading.total_wh / 1000, 3)
    elif shape == "v2":
        if reading.voltage_mv is not None:
            out["voltage_mv"] = reading.voltage_mv
        if reading.current_ma is not None:
            out["current_ma"] = reading.current_ma
        out["power_mw"] = reading.power_mw
        if reading.total_wh is not None:
            out["total_wh"] = int(reading.total_wh)
    else:
        raise ValueError(f"unknown emeter reply shape {shape!r} (v1 or v2)")
    out["err_code"] = 0
    return out
