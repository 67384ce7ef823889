"""An emulated Watts Clever INPLUG: a Broadlink plug on a UDP port.

It answers discovery (as device type 0x2716 unless told otherwise),
authentication (one random device id and session key per "boot";
:meth:`InplugServer.restart` reboots it, so sessions from before are refused
with error -7, or, with ``stale="key"``, answered under the new key as a real
plug might), relay state and switching, and power, which comes from a
:class:`~whitegoodsd.emulator.PowerSource` while the relay is on and is 0
while it is off.  Replies are built by the same codec the driver uses.

``duplicate`` sends every reply twice, as real plugs do.  ``locked`` ignores
discovery requests that arrived as broadcasts and answers unicast ones; the
destination address of each datagram is read with IP_PKTINFO (Linux), so the
emulator knows which is which even when bound to 0.0.0.0.  Requests that are
not well-formed are ignored, as a real plug ignores them.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Literal

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.serve import Family, PlugServer
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import broadlink

DEFAULT_MAC = bytes.fromhex("34ea34000001")
DEFAULT_NAME = "Emulated INPLUG"

# IP_PKTINFO is 8 on Linux; Python before 3.12 does not name it.
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8) if sys.platform.startswith("linux") else None
_PKTINFO = struct.Struct("=i4s4s")  # ifindex, spec_dst (local address), addr (header dst)
_RECV_SIZE = 2048


def is_broadcast(local: str, destination: str) -> bool:
    """Whether a datagram whose header said ``destination`` was a broadcast.

    ``local`` is the interface address that received it.  A unicast datagram
    is addressed to the local address itself; anything else reaching the
    socket (255.255.255.255, a subnet broadcast, multicast) was sent to many.
    """
    dst = ipaddress.IPv4Address(destination)
    everyone = ipaddress.IPv4Address("255.255.255.255")
    return dst.is_multicast or dst == everyone or dst != ipaddress.IPv4Address(local)


@dataclass
class Stats:
    """What the emulator has been asked, for tests and the demo."""

    hellos: int = 0
    auths: int = 0
    controls: int = 0
    rejected: int = 0  # requests refused for a stale session


class InplugServer:
    """One emulated INPLUG on a bound UDP socket; see the module docstring."""

    def __init__(
        self,
        sock: socket.socket,
        source: PowerSource,
        *,
        duplicate: bool = False,
        locked: bool = False,
        mac: bytes = DEFAULT_MAC,
        name: str = DEFAULT_NAME,
        devtype: int = broadlink.INPLUG,
        stale: Literal["error", "key"] = "error",
    ) -> None:
        self.sock = sock
        self.source = source
        self.duplicate = duplicate
        self.locked = locked
        self.mac = mac
        self.name = name
        self.devtype = devtype
        self.stale = stale
        self.relay_on = True
        self.session = broadlink.Session.new()
        self.stats = Stats()
        self.host, self.port = sock.getsockname()[:2]
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        self._closed = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def restart(self) -> None:
        """Reboot: a new device id and session key; earlier sessions are refused."""
        self.session = broadlink.Session.new()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    # -- I/O --------------------------------------------------------------------

    def _readable(self) -> None:
        for _ in range(64):  # bounded: other tasks get their turn
            try:
                data, ancillary, _, peer = self.sock.recvmsg(_RECV_SIZE, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error from an earlier reply; keep serving
            broadcast = False
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IP and kind == _IP_PKTINFO:
                    _, local, dst = _PKTINFO.unpack(value[: _PKTINFO.size])
                    broadcast = is_broadcast(socket.inet_ntoa(local), socket.inet_ntoa(dst))
            for reply in self.respond(data, broadcast=broadcast):
                for _ in range(2 if self.duplicate else 1):
                    try:
                        self.sock.sendto(reply, peer)
                    except OSError:
                        pass  # UDP: a reply that cannot go out is lost, as on a real plug

    # -- the plug ---------------------------------------------------------------

    def info(self) -> broadlink.DeviceInfo:
        return broadlink.DeviceInfo(self.devtype, self.mac, self.name, self.locked, self.host)

    def respond(self, data: bytes, *, broadcast: bool = False) -> list[bytes]:
        """The replies to one datagram (none for anything not understood)."""
        if broadlink.is_hello_request(data):
            if self.locked and broadcast:
                return []
            self.stats.hellos += 1
            return [broadlink.hello_reply(data, self.info())]
        if not broadlink.is_command_packet(data):
            return []
        try:
            header, body = broadlink.parse_packet(data)
        except ProtocolError:
            return []
        if header.command == broadlink.Command.AUTH:
            return self._auth(header, body)
        if header.command == broadlink.Command.CONTROL:
            return self._control(header, body)
        return [self._reply(header, b"", error=broadlink.NOT_SUPPORTED)]

    def _reply(
        self,
        request: broadlink.Header,
        payload: bytes,
        *,
        error: int = 0,
        key: bytes | None = None,
        device_id: int | None = None,
    ) -> bytes:
        if device_id is None:
            device_id = self.session.device_id
        header = broadlink.Header(
            command=request.command + broadlink.REPLY_OFFSET,
            counter=request.counter,
            devtype=self.devtype,
            mac=self.mac,
            device_id=device_id,
            error=error,
        )
        return broadlink.build_packet(self.session.key if key is None else key, header, payload)

    def _auth(self, header: broadlink.Header, body: bytes) -> list[bytes]:
        try:
            broadlink.open_payload(broadlink.INITIAL_KEY, header, body)
        except ProtocolError:
            return []
        self.stats.auths += 1
        payload = broadlink.auth_reply_payload(self.session)
        return [self._reply(header, payload, key=broadlink.INITIAL_KEY, device_id=0)]

    def _control(self, header: broadlink.Header, body: bytes) -> list[bytes]:
        try:
            if header.device_id != self.session.device_id:
                raise ProtocolError("unknown device id")
            payload = broadlink.open_payload(self.session.key, header, body)
        except ProtocolError:
            self.stats.rejected += 1
            if self.stale == "key":
                return [self._reply(header, broadlink.power_reply_payload(self.power_mw()))]
            return [self._reply(header, b"", error=broadlink.KEY_EXPIRED)]
        self.stats.controls += 1
        op = payload[0]
        if op == broadlink.Control.GET_RELAY:
            return [self._reply(header, broadlink.relay_reply_payload(self.relay_on))]
        if op == broadlink.Control.SET_RELAY:
            self.relay_on = bool(payload[4] & 1)
            return [self._reply(header, broadlink.relay_reply_payload(self.relay_on))]
        if op == broadlink.Control.GET_POWER and self.devtype != broadlink.NEO:
            return [self._reply(header, broadlink.power_reply_payload(self.power_mw()))]
        return [self._reply(header, b"", error=broadlink.NOT_SUPPORTED)]

    def power_mw(self) -> int:
        return self.source.power_mw() if self.relay_on else 0


async def start_inplug(
    host: str,
    port: int,
    source: PowerSource,
    *,
    duplicate: bool = False,
    locked: bool = False,
    mac: bytes = DEFAULT_MAC,
    name: str = DEFAULT_NAME,
    devtype: int = broadlink.INPLUG,
    stale: Literal["error", "key"] = "error",
) -> InplugServer:
    """Serve an emulated INPLUG on UDP ``host:port`` (port 0: any free port)."""
    return InplugServer(
        bind_udp(host, port),
        source,
        duplicate=duplicate,
        locked=locked,
        mac=mac,
        name=name,
        devtype=devtype,
        stale=stale,
    )


def bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking IPv4 UDP socket bound to ``host:port``, reporting destinations."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if _IP_PKTINFO is not None:
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _start(
    host: str,
    port: int,
    source: PowerSource,
    alias: str,
    index: int,
    verbose: bool,
    args: argparse.Namespace | None,
) -> PlugServer:
    mac = bytes.fromhex("34ea34") + (0x100000 + index).to_bytes(4, "big")[1:]
    # Real INPLUGs send every reply twice; the driver must cope, so the emulator does too.
    return await start_inplug(host, port, source, duplicate=True, mac=mac, name=alias[:60])


EMULATED = (
    Family("inplug", "inplug", broadlink.PORT, "Watts Clever INPLUG (Broadlink SP2)", _start),
)
