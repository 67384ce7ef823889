"""The Broadlink UDP protocol (Watts Clever INPLUG, Ankuoo NEO PRO), without I/O.

Theory of operation.  A client finds a plug with a 48-byte *hello* (UDP port
80, broadcast or unicast) and the plug answers with its device type, MAC and
name.  Every later exchange is a *command packet*: a 0x38-byte header (magic,
checksums, error code, device type, command, packet counter, MAC, device id)
followed by a payload enciphered with AES-128-CBC, zero-padded to 16 bytes.
The client authenticates first (command 0x65, under a key every device
knows) and gets a device id and a session key back, which every later packet
uses.  A plug that restarts forgets the session: it answers with an error code
or with bytes that no longer decrypt, and the client must authenticate again.
All integers are little-endian.  Both checksums are ``0xBEAF + sum of bytes``
modulo 2**16.

:class:`Client` is one client's side of the conversation as a small state
machine: it makes request bytes and judges reply bytes (h11-style, no
sockets).  Datagrams that are not the answer to the pending request (short,
bad checksum, another counter, a duplicate) raise :class:`Stray`: a transport
drops them and keeps waiting.  A plug that no longer knows the session raises
:class:`SessionRejected`.  Everything else wrong raises ProtocolError.

The emulated INPLUG builds its replies with the same functions.  The AES
cipher comes from ``cryptography``, imported on first use only, so a daemon
that watches only Kasa plugs never loads it.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from whitegoodsd.errors import ProtocolError

PORT = 80
INITIAL_KEY = bytes.fromhex("097628343fe99e23765c1513accf8b02")
IV = bytes.fromhex("562e17996d093d28ddb3ba695a2e6f58")
MAGIC = bytes.fromhex("5aa5aa555aa5aa55")

HELLO_SIZE = 0x30
HELLO_REPLY_SIZE = 0x80
HEADER_SIZE = 0x38
BLOCK = 16
MAX_PACKET = 1024  # the replies to what we send are at most 0x38 + 0x50 bytes
CHECKSUM_SEED = 0xBEAF

INPLUG = 0x2716  # Ankuoo NEO PRO, sold as the Watts Clever INPLUG: meters power
NEO = 0x2717  # its sibling without a meter

# Device types this module knows by name, and whether each meters power.
DEVICE_TYPES: dict[int, tuple[str, bool]] = {
    INPLUG: ("NEO PRO (INPLUG)", True),
    NEO: ("NEO", False),
}


class Command(enum.IntEnum):
    """Values of the command field (0x26 of a packet)."""

    HELLO = 0x06
    HELLO_REPLY = 0x07
    AUTH = 0x65
    CONTROL = 0x6A


# Devices answer command C with C + 0x384 (0x65 -> 0x3E9, 0x6A -> 0x3EE).
# Clients do not rely on it: replies are matched by their counter.
REPLY_OFFSET = 0x384


class Control(enum.IntEnum):
    """Byte 0 of a CONTROL payload: what is asked of an SP2-family plug."""

    GET_RELAY = 1
    SET_RELAY = 2
    GET_POWER = 4


# Error codes in replies (field 0x22, int16), as the devices report them.
ERRORS: dict[int, str] = {
    -1: "authentication failed",
    -2: "logged out",
    -3: "device offline",
    -4: "not supported",
    -5: "storage full",
    -6: "structure abnormal",
    -7: "control key expired",
    -8: "send error",
    -9: "write error",
    -10: "read error",
}
# Codes that mean "this session is no longer valid: authenticate again".
SESSION_ERRORS = frozenset({-1, -2, -7})

NOT_SUPPORTED = -4
KEY_EXPIRED = -7


class Stray(ProtocolError):
    """A datagram that is not the answer awaited: drop it and keep waiting."""


class SessionRejected(ProtocolError):
    """The plug no longer accepts the session (it restarted): authenticate again."""


def error_text(code: int) -> str:
    """``-4 (not supported)`` for an error code."""
    meaning = ERRORS.get(code)
    return f"{code} ({meaning})" if meaning else str(code)


def checksum(data: bytes | bytearray) -> int:
    """The Broadlink checksum: 0xBEAF plus every byte, modulo 2**16."""
    return (CHECKSUM_SEED + sum(data)) & 0xFFFF


def _le16(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


# -- AES ------------------------------------------------------------------


@cache
def _cipher(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(IV))


def pad(plain: bytes) -> bytes:
    """Zero-pad to a whole number of AES blocks."""
    return plain + bytes(-len(plain) % BLOCK)


def encrypt(key: bytes, plain: bytes) -> bytes:
    """AES-128-CBC with the fixed IV, after zero padding."""
    encryptor = _cipher(bytes(key)).encryptor()
    return bytes(encryptor.update(pad(plain)) + encryptor.finalize())


def decrypt(key: bytes, cipher: bytes) -> bytes:
    """Inverse of :func:`encrypt` (the padding stays)."""
    if len(cipher) % BLOCK:
        raise ProtocolError(f"payload of {len(cipher)} bytes is not whole AES blocks")
    decryptor = _cipher(bytes(key)).decryptor()
    return bytes(decryptor.update(cipher) + decryptor.finalize())


# -- discovery --------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A discovery request: who asks, and their clock."""

    when: dt.datetime
    address: str = "0.0.0.0"  # the requester's IPv4 address
    port: int = 0  # the requester's UDP port


def pack_time(when: dt.datetime) -> bytes:
    """The 12 bytes at 0x08 of a hello.

    Offset from UTC in hours (int32), year (u16), then minute, hour, year in
    the century, ISO weekday, day and month, one byte each.  This is the
    layout python-broadlink sends to real devices; the older protocol notes
    describe seconds, minutes, hours at 0x0E..0x10.  Devices are not known to
    use any of it.
    """
    offset = when.utcoffset() or dt.timedelta(0)
    return (
        struct.pack("<iH", int(offset.total_seconds() / 3600), when.year)
        + bytes(
            [when.minute, when.hour, when.year % 100, when.isoweekday(), when.day, when.month]
        )
    )  # fmt: skip


def hello_request(hello: Hello) -> bytes:
    """The 48-byte discovery request."""
    packet = bytearray(HELLO_SIZE)
    packet[0x08:0x14] = pack_time(hello.when)
    packet[0x18:0x1C] = ipaddress.IPv4Address(hello.address).packed[::-1]
    packet[0x1C:0x1E] = hello.port.to_bytes(2, "little")
    packet[0x26] = Command.HELLO
    packet[0x20:0x22] = checksum(packet).to_bytes(2, "little")
    return bytes(packet)


def is_hello_request(data: bytes) -> bool:
    """Whether a datagram is a well-formed discovery request."""
    return (
        len(data) >= HELLO_SIZE
        and data[:8] != MAGIC
        and data[0x26] == Command.HELLO
        and _checksum_ok(data[:HELLO_SIZE])
    )


def _checksums(packet: bytes) -> tuple[int, int]:
    """The checksum a packet states at 0x20, and the one its bytes give."""
    actual = (CHECKSUM_SEED + sum(packet) - packet[0x20] - packet[0x21]) & 0xFFFF
    return _le16(packet, 0x20), actual


def _checksum_ok(packet: bytes) -> bool:
    stated, actual = _checksums(packet)
    return stated == actual


@dataclass(frozen=True)
class DeviceInfo:
    """What a plug says about itself in its discovery reply."""

    devtype: int
    mac: bytes  # 6 bytes, in the usual order
    name: str = ""
    locked: bool = False
    address: str = "0.0.0.0"  # the IPv4 address the plug states for itself

    @property
    def model(self) -> str:
        known = DEVICE_TYPES.get(self.devtype)
        label = known[0] if known else "unknown Broadlink device"
        return f"{label}, type 0x{self.devtype:04X}"

    @property
    def meters_power(self) -> bool | None:
        """True or False for known types; None when the type is unknown."""
        known = DEVICE_TYPES.get(self.devtype)
        return known[1] if known else None

    @property
    def mac_text(self) -> str:
        return ":".join(f"{b:02x}" for b in self.mac)


def hello_reply(request: bytes, info: DeviceInfo) -> bytes:
    """A plug's 128-byte answer to a discovery request."""
    packet = bytearray(HELLO_REPLY_SIZE)
    packet[0x00:0x20] = request[0x00:0x20]
    packet[0x26] = Command.HELLO_REPLY
    packet[0x34:0x36] = info.devtype.to_bytes(2, "little")
    packet[0x36:0x3A] = ipaddress.IPv4Address(info.address).packed[::-1]
    packet[0x3A:0x40] = info.mac[::-1]
    name = info.name.encode()[:0x3F]
    packet[0x40 : 0x40 + len(name)] = name
    packet[0x7F] = int(info.locked)
    packet[0x20:0x22] = checksum(packet).to_bytes(2, "little")
    return bytes(packet)


def parse_hello_reply(data: bytes) -> DeviceInfo:
    """A discovery reply as a DeviceInfo, or ProtocolError.

    The checksum is checked when the plug filled it in (python-broadlink, the
    reference client, never checks it, so a zero is let through).
    """
    if len(data) < 0x40:
        raise ProtocolError(f"discovery reply of {len(data)} bytes, expected {HELLO_REPLY_SIZE}")
    if len(data) > MAX_PACKET:
        raise ProtocolError(f"discovery reply of {len(data)} bytes, too long")
    if data[:8] == MAGIC:
        raise ProtocolError("a command packet, not a discovery reply")
    if _le16(data, 0x20) and not _checksum_ok(data):
        raise ProtocolError("discovery reply with a bad checksum")
    raw_name = data[0x40:0x7F].split(b"\0", 1)[0]
    return DeviceInfo(
        devtype=_le16(data, 0x34),
        mac=bytes(data[0x3A:0x40][::-1]),
        name=raw_name.decode("utf-8", "replace"),
        locked=len(data) > 0x7F and bool(data[0x7F]),
        address=str(ipaddress.IPv4Address(bytes(data[0x36:0x3A][::-1]))),
    )


# -- command packets ----------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The clear-text fields of a command packet."""

    command: int
    counter: int
    devtype: int
    mac: bytes  # in the usual order
    device_id: int
    error: int = 0
    payload_checksum: int = 0


_HEADER = struct.Struct("<8s24xHhHHH6sIH2x")


def build_packet(key: bytes, header: Header, payload: bytes) -> bytes:
    """A whole command packet: header, both checksums, enciphered payload.

    ``header.payload_checksum`` is ignored: it is computed from ``payload``.
    """
    packet = bytearray(
        _HEADER.pack(
            MAGIC,
            0,
            header.error,
            header.devtype,
            header.command,
            header.counter,
            header.mac[::-1],
            header.device_id,
            checksum(payload),
        )
    )
    packet += encrypt(key, payload)
    packet[0x20:0x22] = checksum(packet).to_bytes(2, "little")
    return bytes(packet)


def parse_packet(data: bytes) -> tuple[Header, bytes]:
    """Split a command packet into its header and enciphered payload.

    Checks the size, the magic and the whole-packet checksum; raises Stray
    otherwise, since such a datagram cannot be anybody's answer.
    """
    if len(data) < HEADER_SIZE:
        raise Stray(f"short packet: {len(data)} bytes, a command packet has at least {HEADER_SIZE}")
    if len(data) > MAX_PACKET:
        raise Stray(f"packet of {len(data)} bytes, more than the {MAX_PACKET} accepted")
    if data[:8] != MAGIC:
        raise Stray("not a command packet (no 5aa5aa55 magic)")
    stated, actual = _checksums(data)
    if stated != actual:
        raise Stray(f"bad checksum 0x{stated:04X} (the bytes sum to 0x{actual:04X})")
    _, _, error, devtype, command, counter, mac, device_id, inner = _HEADER.unpack_from(data)
    header = Header(command, counter, devtype, mac[::-1], device_id, error, inner)
    return header, bytes(data[HEADER_SIZE:])


def open_payload(key: bytes, header: Header, body: bytes) -> bytes:
    """Decrypt a packet's payload and check it against the header.

    Plugs state the checksum of the (padded) plaintext at 0x34 of their
    replies too, as a real reply logged in a Home Assistant issue shows: a
    mismatch means the bytes were enciphered under another key.
    """
    plain = decrypt(key, body)
    if checksum(plain) != header.payload_checksum:
        raise ProtocolError("payload does not decrypt with the key in use")
    return plain


def is_command_packet(data: bytes) -> bool:
    return data[:8] == MAGIC


# -- authentication and control payloads --------------------------------------


@dataclass(frozen=True)
class Session:
    """What authentication yields: the device id and key for every later packet."""

    device_id: int
    key: bytes

    @classmethod
    def new(cls) -> Session:
        return cls(int.from_bytes(os.urandom(4), "big"), os.urandom(16))


def auth_payload(client_name: str = "whitegoodsd") -> bytes:
    """The 0x50-byte payload of an AUTH command."""
    payload = bytearray(0x50)
    payload[0x04:0x14] = b"1" * 16  # a client identifier; the app sends its IMEI
    payload[0x1E] = 0x01
    payload[0x2D] = 0x01
    name = client_name.encode()[: 0x50 - 0x30 - 1]
    payload[0x30 : 0x30 + len(name)] = name
    return bytes(payload)


def auth_reply_payload(session: Session) -> bytes:
    """What a plug answers to AUTH: device id and session key."""
    return session.device_id.to_bytes(4, "little") + session.key + bytes(12)


def parse_auth_reply(payload: bytes) -> Session:
    if len(payload) < 0x14:
        raise ProtocolError(f"authentication reply of {len(payload)} bytes, expected 20 or more")
    return Session(int.from_bytes(payload[0:4], "little"), bytes(payload[4:0x14]))


def control_payload(op: Control, value: int = 0) -> bytes:
    """A 16-byte CONTROL payload: ``[0]`` what, ``[4]`` the value (SET_RELAY)."""
    payload = bytearray(BLOCK)
    payload[0] = op
    payload[4] = value
    return bytes(payload)


def power_reply_payload(power_mw: int) -> bytes:
    """A plug's answer to GET_POWER: milliwatts at ``[4:7]``."""
    clamped = max(0, min(power_mw, 0xFFFFFF))
    return bytes([Control.GET_POWER, 0, 0, 0]) + clamped.to_bytes(3, "little") + bytes(9)


def relay_reply_payload(on: bool) -> bytes:
    return bytes([Control.GET_RELAY, 0, 0, 0, int(on)]) + bytes(11)


def parse_power(payload: bytes) -> int:
    """Milliwatts from a GET_POWER reply payload."""
    if len(payload) < 7:
        raise ProtocolError(f"power reply of {len(payload)} bytes, expected 7 or more")
    return int.from_bytes(payload[4:7], "little")


def parse_relay(payload: bytes) -> bool:
    if len(payload) < 5:
        raise ProtocolError(f"relay reply of {len(payload)} bytes, expected 5 or more")
    return payload[4] != 0


# -- the client's side of the conversation --------------------------------------


class Client:
    """One client talking to one plug: counter, session, and reply matching.

    ``request()`` makes the bytes to send and remembers what is pending;
    ``receive()`` judges one datagram: the decrypted payload of the answer, or
    Stray for a datagram to drop (the transport keeps waiting), or
    SessionRejected / ProtocolError for an answer that ends the exchange.
    Resending the pending request's bytes is fine: the answer is matched by
    counter, whichever copy it answers.
    """

    def __init__(self, devtype: int = INPLUG, mac: bytes = bytes(6), counter: int | None = None):
        self.devtype = devtype
        self.mac = mac
        self.session: Session | None = None
        first = int.from_bytes(os.urandom(2), "big") if counter is None else counter
        self._counter = first & 0xFFFF
        self._pending: tuple[int, int] | None = None  # (counter, command)
        self._answered: list[int] = []  # counters of recent answers, to name duplicates

    def learn(self, info: DeviceInfo) -> None:
        """Address later packets to the plug a discovery reply described."""
        self.devtype = info.devtype
        self.mac = info.mac

    def _key(self, command: int) -> bytes:
        if command == Command.AUTH or self.session is None:
            return INITIAL_KEY
        return self.session.key

    def request(self, command: Command, payload: bytes) -> bytes:
        """A new request; any earlier pending one is forgotten."""
        self._counter = (self._counter + 1) & 0xFFFF
        if command == Command.AUTH:
            self.session = None
        device_id = self.session.device_id if self.session else 0
        header = Header(command, self._counter, self.devtype, self.mac, device_id)
        self._pending = (self._counter, command)
        return build_packet(self._key(command), header, payload)

    def auth_request(self, client_name: str = "whitegoodsd") -> bytes:
        return self.request(Command.AUTH, auth_payload(client_name))

    def control_request(self, op: Control, value: int = 0) -> bytes:
        return self.request(Command.CONTROL, control_payload(op, value))

    def receive(self, data: bytes) -> bytes:
        """The decrypted payload answering the pending request (see the class)."""
        header, body = parse_packet(data)
        if self._pending is None or header.counter != self._pending[0]:
            if header.counter in self._answered:
                raise Stray(f"duplicate of reply 0x{header.counter:04X}")
            expected = f"0x{self._pending[0]:04X}" if self._pending else "none"
            raise Stray(f"reply to packet 0x{header.counter:04X}, expected {expected}")
        _, command = self._pending
        self._pending = None
        self._answered = [*self._answered[-7:], header.counter]
        if command == Command.AUTH:
            return self._auth_answer(header, body)
        if header.error in SESSION_ERRORS:
            self.session = None
            raise SessionRejected(f"plug rejected the session: error {error_text(header.error)}")
        if header.error:
            raise ProtocolError(f"plug answered error {error_text(header.error)}")
        if not body or len(body) % BLOCK:
            raise ProtocolError(f"reply payload of {len(body)} bytes is not whole AES blocks")
        try:
            return open_payload(self._key(command), header, body)
        except ProtocolError as exc:
            if self.session is None:
                raise
            self.session = None
            raise SessionRejected(f"{exc} (the plug may have restarted)") from None

    def _auth_answer(self, header: Header, body: bytes) -> bytes:
        if header.error:
            raise ProtocolError(f"authentication refused: error {error_text(header.error)}")
        if not body:
            raise ProtocolError("authentication reply without a payload")
        payload = open_payload(INITIAL_KEY, header, body)
        self.session = parse_auth_reply(payload)
        return payload
