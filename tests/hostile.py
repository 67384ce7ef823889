"""Plugs that misbehave: emulated plugs with a hook that misbehaves, on 127.0.0.1.

Each :class:`HostilePlug` is an emulated Kasa plug (``emulator/kasa.py``)
whose TCP connections its ``misbehave`` hook serves the way its
:class:`Mode` says: never, with garbage, with a lie about the length, too slowly, with an
error, with an absurd reading, or (the last modes) with a valid reply in one
of the odd shapes real firmware uses, which must be read correctly.  The
servers run on the caller's event loop (``await plug.start()``) or, for a
daemon in another process, on a thread of their own (:class:`PlugThread`).

:class:`HostileInplug` does the same for the Broadlink UDP protocol, as a
subclass of the emulated INPLUG's server: it answers discovery and
authentication honestly and every power request the way its
:class:`InplugMode` says.

Everything is bounded: a server never sends more than ``MAX_SENT`` bytes on a
connection, and stops when the client goes away; an INPLUG sends at most
``FLOOD_DATAGRAMS`` datagrams per request.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from whitegoodsd.emulator import PowerSource, SettablePower
from whitegoodsd.emulator.inplug import InplugServer, bind_udp
from whitegoodsd.emulator.kasa import KasaServer, start_kasa
from whitegoodsd.protocols import broadlink, kasa

from kit import LoopThread

MAX_SENT = 1024 * 1024  # per connection, for the modes that flood
_CHUNK = 4096
T = TypeVar("T")


class Mode(enum.Enum):
    """How a hostile plug answers."""

    HEALTHY = "healthy"  # a correct v2 reply in one write
    SILENT = "silent"  # accepts, reads, never answers
    CLOSE = "close"  # closes the moment it accepts
    RANDOM = "random"  # random bytes (seeded), until the client gives up
    HUGE = "huge"  # a length header claiming 2 GiB, then bytes
    FLOOD = "flood"  # a zero length header, then bytes without end
    TRICKLE = "trickle"  # a valid reply a byte at a time, ``trickle`` s apart
    BROKEN_JSON = "broken-json"  # a well-framed body that is not JSON
    ERR_CODE = "err-code"  # {"emeter":{"err_code":-1,"err_msg":"module not support"}}
    DEEP = "deep"  # a well-framed body of 60,000 "[": JSON nested past any recursion limit
    OVERFLOW = "overflow"  # a v1 reply claiming 1e308 W, which is infinite in mW
    MEGAWATTS = "megawatts"  # a v1 reply claiming 40 MW
    ZERO_LENGTH = "zero-length"  # old firmware: length 0, the body, then close
    SPLIT = "split"  # a valid reply over several TCP segments


# The modes whose replies are valid and must be read correctly.
READABLE = (Mode.HEALTHY, Mode.ZERO_LENGTH, Mode.SPLIT)

FORTY_MW_V1 = {
    "emeter": {
        "get_realtime": {
            "current": 173913.043478,
            "voltage": 230.0,
            "power": 40_000_000.0,
            "total": 55.139,
            "err_code": 0,
        }
    }
}
MODULE_NOT_SUPPORTED = {"emeter": {"err_code": -1, "err_msg": "module not support"}}
BROKEN_JSON = b'{"emeter":{"get_realtime":{"power_mw":12,'


def realtime_v2(power_mw: int, total_wh: float) -> dict[str, Any]:
    """An ``emeter.get_realtime`` reply as hardware v2 sends it."""
    return {
        "emeter": {
            "get_realtime": {
                "voltage_mv": 230_000,
                "current_ma": power_mw // 230,
                "power_mw": power_mw,
                "total_wh": int(total_wh),
                "err_code": 0,
            }
        }
    }


class Gauge:
    """Connections open at once and accepted so far, for as many plugs as share it.

    Another thread may wait for a number of connections (each is a poll).
    """

    def __init__(self) -> None:
        self.open = 0
        self.most = 0
        self.accepted = 0
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self.open += 1
            self.accepted += 1
            self.most = max(self.most, self.open)
            self._changed.notify_all()

    def leave(self) -> None:
        with self._changed:
            self.open -= 1

    def wait_accepted(self, count: int, timeout: float = 60.0) -> None:
        """Return once ``count`` connections were accepted; AssertionError after ``timeout``."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.accepted >= count, timeout):
                raise AssertionError(f"{self.accepted} of {count} connections in {timeout} s")


class HostilePlug:
    """One plug on 127.0.0.1 behaving as ``mode``.

    ``power`` sets what the readable modes report; ``script``, when given,
    overrides it per request (argument: the 1-based request number).
    ``delay`` holds every reply that long (to make polls overlap);
    ``trickle`` is the pause between bytes in TRICKLE mode; ``gauge``
    counts open connections (pass one gauge to many plugs to count them all).
    """

    def __init__(
        self,
        mode: Mode,
        *,
        power: SettablePower | None = None,
        script: Callable[[int], int] | None = None,
        delay: float = 0.0,
        trickle: float = 0.2,
        seed: int = 8,
        gauge: Gauge | None = None,
    ) -> None:
        self.mode = mode
        self.power = power or SettablePower(0)
        self.script = script
        self.delay = delay
        self.trickle = trickle
        self.random = random.Random(seed)
        self.port = 0
        self.connections = 0  # accepted so far
        self.requests = 0  # whole requests read so far
        self.gauge = gauge or Gauge()
        self.served: list[int] = []  # power_mw of every readable reply sent
        self._server: KasaServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> HostilePlug:
        self._server = await start_kasa("127.0.0.1", 0, self.power, misbehave=self._handle)
        self.port = self._server.port
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    # -- one connection --------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The misbehaviour: serves one connection on the emulated plug's socket."""
        self.connections += 1
        self.gauge.enter()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.mode is Mode.CLOSE:
                return
            if not await self._read_request(reader):
                return
            self.requests += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            await self._answer(reader, writer)
        finally:
            self.gauge.leave()

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        """Read one framed request; False if the client closed first."""
        decoder = kasa.FrameDecoder()
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                return False
            if decoder.feed(data) is not None:
                return True

    def _reading(self) -> dict[str, Any]:
        power_mw = self.script(self.requests) if self.script else self.power.power_mw()
        self.served.append(power_mw)
        return realtime_v2(power_mw, self.power.total_wh())

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode is Mode.SILENT:
            await _until_eof(reader)
        elif mode is Mode.RANDOM:
            await self._flood(reader, writer, b"")
        elif mode is Mode.HUGE:
            await self._flood(reader, writer, struct.pack(">I", 2**31))
        elif mode is Mode.FLOOD:
            await self._flood(reader, writer, struct.pack(">I", 0))
        elif mode is Mode.TRICKLE:
            for byte in kasa.frame(self._reading()):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(self.trickle)
        elif mode is Mode.BROKEN_JSON:
            body = kasa.encrypt(BROKEN_JSON)
            writer.write(struct.pack(">I", len(body)) + body)
        elif mode is Mode.ERR_CODE:
            writer.write(kasa.frame(MODULE_NOT_SUPPORTED))
        elif mode is Mode.DEEP:
            body = kasa.encrypt(b"[" * 60_000)
            writer.write(struct.pack(">I", len(body)) + body)
        elif mode is Mode.OVERFLOW:
            writer.write(kasa.frame({"emeter": {"get_realtime": {"power": 1e308, "err_code": 0}}}))
        elif mode is Mode.MEGAWATTS:
            writer.write(kasa.frame(FORTY_MW_V1))
        elif mode is Mode.ZERO_LENGTH:
            writer.write(struct.pack(">I", 0) + kasa.encrypt(kasa.dumps(self._reading())))
        elif mode is Mode.SPLIT:
            framed = kasa.frame(self._reading())
            for piece in (framed[:2], framed[2:9], framed[9:30], framed[30:]):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.01)  # TCP_NODELAY: each piece is its own segment
        else:
            writer.write(kasa.frame(self._reading()))
        await writer.drain()

    async def _flood(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes
    ) -> None:
        """``head``, then bytes until the client closes or MAX_SENT is reached."""
        writer.write(head)
        sent = len(head)
        gone = asyncio.ensure_future(_until_eof(reader))
        try:
            while sent < MAX_SENT and not gone.done():
                chunk = self.random.randbytes(_CHUNK)
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
        finally:
            gone.cancel()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(_CHUNK):
        pass


async def _cancel_all() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- INPLUG (Broadlink, UDP) -------------------------------------------------------

FLOOD_DATAGRAMS = 200


class InplugMode(enum.Enum):
    """How a hostile INPLUG answers a power request (hello and auth are honest)."""

    HEALTHY = "healthy"  # every packet twice, as real plugs send them: must be read
    SILENT = "silent"  # never answers a power request
    BAD_CHECKSUM = "bad-checksum"
    SHORT = "short"  # the first 32 bytes of the reply
    WRONG_COUNTER = "wrong-counter"  # the reply, to another packet number
    DUPLICATES = "duplicates"  # only another copy of an earlier reply
    UNDECRYPTABLE = "undecryptable"  # a reply sealed with another key
    ERROR_CODE = "error-code"  # error -4, not supported
    FLOOD = "flood"  # FLOOD_DATAGRAMS of noise, never the reply
    OVERSIZE = "oversize"  # one datagram of 2,000 bytes
    SPIKE = "spike"  # a valid reply: 16,777,215 mW, the most 3 bytes can say


class ScriptedPower:
    """Power by poll: ``script(n)`` for the n-th reading asked (1-based)."""

    def __init__(self, script: Callable[[int], int]) -> None:
        self.script = script
        self.reads = 0

    def power_mw(self) -> int:
        self.reads += 1
        return self.script(self.reads)

    def total_wh(self) -> float:
        return 0.0


def _reseal(packet: bytearray) -> bytes:
    """A packet with its checksum made right again after an edit."""
    packet[0x20:0x22] = b"\0\0"
    packet[0x20:0x22] = broadlink.checksum(packet).to_bytes(2, "little")
    return bytes(packet)


class HostileInplug(InplugServer):
    """An emulated INPLUG answering every power request as ``mode`` says."""

    def __init__(self, mode: InplugMode, source: PowerSource, seed: int = 8) -> None:
        super().__init__(bind_udp("127.0.0.1", 0), source, duplicate=mode is InplugMode.HEALTHY)
        self.mode = mode
        self.random = random.Random(seed)
        self.earlier: bytes | None = None  # the last honest reply

    def respond(self, data: bytes, *, broadcast: bool = False) -> list[bytes]:
        replies = super().respond(data, broadcast=broadcast)
        control = broadlink.is_command_packet(data) and data[0x26] == broadlink.Command.CONTROL
        if not control or self.mode is InplugMode.HEALTHY or not replies:
            self.earlier = replies[-1] if replies else self.earlier
            return replies
        return self.mangle(replies[-1])

    def power_mw(self) -> int:
        if self.mode is InplugMode.SPIKE:
            return 0xFFFFFF
        return super().power_mw()

    def mangle(self, reply: bytes) -> list[bytes]:
        mode = self.mode
        if mode is InplugMode.SILENT:
            return []
        if mode is InplugMode.BAD_CHECKSUM:
            return [reply[:-1] + bytes([reply[-1] ^ 1])]
        if mode is InplugMode.SHORT:
            return [reply[:0x20]]
        if mode is InplugMode.WRONG_COUNTER:
            packet = bytearray(reply)
            packet[0x28] ^= 0x40
            return [_reseal(packet)]
        if mode is InplugMode.DUPLICATES:
            return [self.earlier] if self.earlier else []
        if mode is InplugMode.UNDECRYPTABLE:
            header, _ = broadlink.parse_packet(reply)
            return [broadlink.build_packet(bytes(16), header, broadlink.power_reply_payload(1))]
        if mode is InplugMode.ERROR_CODE:
            packet = bytearray(reply[: broadlink.HEADER_SIZE])
            packet[0x22:0x24] = broadlink.NOT_SUPPORTED.to_bytes(2, "little", signed=True)
            return [_reseal(packet)]
        if mode is InplugMode.FLOOD:
            sizes = [self.random.randrange(1, 200) for _ in range(FLOOD_DATAGRAMS)]
            return [self.random.randbytes(size) for size in sizes]
        if mode is InplugMode.OVERSIZE:
            return [reply + bytes(2000 - len(reply))]
        return [reply]  # SPIKE: the reply is valid; its reading is not


async def start_hostile_inplug(
    mode: InplugMode, source: PowerSource | None = None
) -> HostileInplug:
    return HostileInplug(mode, source or SettablePower(0))


# -- what the daemon says about each mode, with a timeout of TIMEOUT -------------

TIMEOUT = 0.5


def inplug_name(mode: InplugMode) -> str:
    # A suffix, not a prefix: "I_SILENT" would end with the Kasa "SILENT", a
    # name clash the config warns about.
    return mode.value.upper().replace("-", "_") + "_BL"


# What a failed poll says, per mode: the whole line after "NAME: ".
IGNORED = r"no answer within 0\.5 s; ignored \d+ datagram\(s\), the last: "
COUNTER = r"0x[0-9A-F]{4}"

# What a failed poll says, per mode: the whole line after "NAME: ".
INPLUG_FAILS: dict[InplugMode, str] = {
    InplugMode.SILENT: r"no answer within 0\.5 s",
    InplugMode.BAD_CHECKSUM: IGNORED + rf"bad checksum {COUNTER} \(the bytes sum to {COUNTER}\)",
    InplugMode.SHORT: IGNORED + r"short packet: 32 bytes, a command packet has at least 56",
    InplugMode.WRONG_COUNTER: IGNORED + rf"reply to packet {COUNTER}, expected {COUNTER}",
    InplugMode.DUPLICATES: IGNORED + rf"duplicate of reply {COUNTER}",
    InplugMode.UNDECRYPTABLE: r"payload does not decrypt with the key in use "
    r"\(the plug may have restarted\), even after a new authentication",
    InplugMode.ERROR_CODE: r"plug answered error -4 \(not supported\)",
    InplugMode.FLOOD: IGNORED + r".+",
    InplugMode.OVERSIZE: IGNORED + r"packet of 2000 bytes, more than the 1024 accepted",
}
INPLUG_SPIKE = (
    "Discarded a reading of 16,777,215 mW from SPIKE_BL: above max_plausible_mw (4,000,000 mW)."
)


class PlugThread(LoopThread):
    """Hostile plugs served from an event loop on a thread of their own.

    For a daemon in another process: the test thread stays free to read
    syslog while the plugs answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.plugs: list[HostilePlug] = []
        self.inplugs: list[HostileInplug] = []

    def start(self, mode: Mode, **options: Any) -> HostilePlug:
        plug = self.run(HostilePlug(mode, **options).start())
        self.plugs.append(plug)
        return plug

    def start_inplug(self, mode: InplugMode, source: PowerSource | None = None) -> HostileInplug:
        plug = self.run(start_hostile_inplug(mode, source))
        self.inplugs.append(plug)
        return plug

    def close(self) -> None:
        for plug in self.plugs:
            self.run(plug.close())
        for inplug in self.inplugs:
            self.run(inplug.close())
        self.run(_cancel_all())
        super().close()


@contextmanager
def plug_thread() -> Iterator[PlugThread]:
    plugs = PlugThread()
    try:
        yield plugs
    finally:
        plugs.close()


def main() -> None:
    """``python tests/hostile.py MODE``: serve one hostile plug until interrupted."""
    import sys

    mode = Mode(sys.argv[1]) if len(sys.argv) > 1 else Mode.HEALTHY

    async def serve() -> None:
        plug = await HostilePlug(mode, power=SettablePower(1500)).start()
        print(json.dumps({"mode": mode.value, "port": plug.port}), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
