"""Our Broadlink codec and emulated INPLUG against python-broadlink, the reference client.

Everything compared here is computed at test time from the library: its
requests are parsed by our codec and rebuilt byte for byte by our Client, and
its parser accepts the replies our codec builds.  Then python-broadlink
discovers, authenticates to and reads the emulated INPLUG.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType
from typing import Any, cast

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import InplugServer, start_inplug
from whitegoodsd.protocols import broadlink
from whitegoodsd.protocols.broadlink import Client, Command, Control, Header, Session

from conftest import WAIT, LoopThread, need

MAC = bytes.fromhex("34ea34a1b2c3")


@pytest.fixture
def bl() -> ModuleType:
    try:
        import broadlink as library
    except ImportError:
        library = None
    need(library is not None, "python-broadlink not installed (pip install broadlink)")
    assert library is not None
    return cast(ModuleType, library)


class ScriptedPeer:
    """A UDP socket the test answers by hand while python-broadlink waits in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(WAIT)
        self.port: int = self.sock.getsockname()[1]
        self.pool = ThreadPoolExecutor(1)
        self.peer: Any = None

    def call(self, function: Callable[..., Any], *args: Any) -> tuple[bytes, Future[Any]]:
        """Start ``function`` in the thread; return the datagram it sent."""
        future = self.pool.submit(function, *args)
        data, self.peer = self.sock.recvfrom(4096)
        return data, future

    def answer(self, reply: bytes) -> None:
        self.sock.sendto(reply, self.peer)

    def close(self) -> None:
        self.pool.shutdown()
        self.sock.close()


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    scripted = ScriptedPeer()
    yield scripted
    scripted.close()


def _reply(request: Header, key: bytes, payload: bytes, device_id: int = 0) -> bytes:
    header = Header(request.command + 0x384, request.counter, 0x2716, MAC, device_id)
    return broadlink.build_packet(key, header, payload)


def test_hello_both_ways(bl: ModuleType, peer: ScriptedPeer) -> None:
    from broadlink.protocol import Datetime

    request, result = peer.call(bl.hello, "127.0.0.1", peer.port, 5)
    assert broadlink.is_hello_request(request)
    # Byte for byte what our codec builds for the same time (python-broadlink
    # sends 0.0.0.0 and port 0 when not bound to an address).
    when = Datetime.unpack(request[0x08:0x14])
    assert broadlink.hello_request(broadlink.Hello(when)) == request
    info = broadlink.DeviceInfo(0x2716, MAC, "Laundry INPLUG", True, "127.0.0.1")
    peer.answer(broadlink.hello_reply(request, info))
    device = result.result(WAIT)
    assert isinstance(device, bl.sp2s)
    assert device.devtype == 0x2716 and device.model == "NEO PRO"
    assert device.mac == MAC and device.name == "Laundry INPLUG" and device.is_locked is True


def test_commands_both_ways(bl: ModuleType, peer: ScriptedPeer) -> None:
    device = bl.sp2s(host=("127.0.0.1", peer.port), mac=MAC, devtype=0x2716, timeout=10)

    # Authentication: python-broadlink's request, parsed by our codec ...
    data, result = peer.call(device.auth)
    header, body = broadlink.parse_packet(data)
    payload = broadlink.open_payload(broadlink.INITIAL_KEY, header, body)
    assert (header.command, header.devtype, header.mac, header.device_id) == (0x65, 0x2716, MAC, 0)
    name = payload[0x30:].rstrip(b"\0").decode()
    assert payload == broadlink.auth_payload(name)
    # ... is what our Client sends for the same counter and payload ...
    client = Client(0x2716, MAC, counter=header.counter - 1)
    assert client.request(Command.AUTH, payload) == data
    # ... and python-broadlink accepts the reply our codec builds.
    session = Session(0x5EC0_0001, bytes.fromhex("00112233445566778899aabbccddeeff"))
    peer.answer(_reply(header, broadlink.INITIAL_KEY, broadlink.auth_reply_payload(session)))
    assert result.result(WAIT) is True
    assert device.id == session.device_id
    assert device.encrypt(bytes(16)) == broadlink.encrypt(session.key, bytes(16))
    client.session = session

    # Power: the same, under the session key.
    data, result = peer.call(device.get_energy)
    header, body = broadlink.parse_packet(data)
    payload = broadlink.open_payload(session.key, header, body)
    assert payload == broadlink.control_payload(Control.GET_POWER)
    assert header.device_id == session.device_id
    client = Client(0x2716, MAC, counter=header.counter - 1)
    client.session = session
    assert client.control_request(Control.GET_POWER) == data
    peer.answer(_reply(header, session.key, broadlink.power_reply_payload(57_471), 1))
    assert result.result(WAIT) == pytest.approx(57.471)

    # Relay: switching off, then the state.
    data, result = peer.call(device.set_power, False)
    header, body = broadlink.parse_packet(data)
    assert broadlink.open_payload(session.key, header, body) == broadlink.control_payload(
        Control.SET_RELAY, 0
    )
    peer.answer(_reply(header, session.key, broadlink.relay_reply_payload(False), 1))
    assert result.result(WAIT) is None
    data, result = peer.call(device.check_power)
    header, body = broadlink.parse_packet(data)
    assert broadlink.open_payload(session.key, header, body) == broadlink.control_payload(
        Control.GET_RELAY
    )
    peer.answer(_reply(header, session.key, broadlink.relay_reply_payload(False), 1))
    assert result.result(WAIT) is False

    # An error code we send is the error python-broadlink knows.
    data, result = peer.call(device.get_energy)
    header, _ = broadlink.parse_packet(data)
    error = Header(header.command + 0x384, header.counter, 0x2716, MAC, 1, broadlink.KEY_EXPIRED)
    peer.answer(broadlink.build_packet(session.key, error, b""))
    with pytest.raises(bl.exceptions.AuthorizationError, match="Control key is expired"):
        result.result(WAIT)


# -- python-broadlink against the emulated INPLUG -----------------------------


@pytest.fixture
def power() -> SettablePower:
    return SettablePower(57_471)


@pytest.fixture
def inplug(loop_thread: LoopThread, power: SettablePower) -> Iterator[InplugServer]:
    server = loop_thread.run(start_inplug("127.0.0.1", 0, power, duplicate=True))
    yield server
    loop_thread.run(server.close())


def test_python_broadlink_discovers_authenticates_and_reads(
    bl: ModuleType, inplug: InplugServer, power: SettablePower, loop_thread: LoopThread
) -> None:
    devices = bl.discover(timeout=1, discover_ip_address="127.0.0.1", discover_ip_port=inplug.port)
    assert len(devices) == 1  # every reply came twice; python-broadlink dropped the copy
    device = devices[0]
    assert isinstance(device, bl.sp2s)
    assert device.host == ("127.0.0.1", inplug.port)
    assert (device.devtype, device.model, device.manufacturer) == (0x2716, "NEO PRO", "Ankuoo")
    assert device.mac == inplug.mac and device.name == "Emulated INPLUG"
    assert device.is_locked is False

    assert device.auth() is True
    assert device.get_energy() == pytest.approx(57.471)
    power.set(2_150_000)
    assert device.get_energy() == pytest.approx(2150.0)
    assert device.check_power() is True
    device.set_power(False)
    assert loop_thread.call(lambda: inplug.relay_on) is False
    assert device.check_power() is False
    assert device.get_energy() == 0.0  # nothing flows through an open relay
    device.set_power(True)
    assert device.get_energy() == pytest.approx(2150.0)

    # A restarted plug refuses the old session; a new authentication works.
    loop_thread.call(inplug.restart)
    with pytest.raises(bl.exceptions.AuthorizationError):
        device.get_energy()
    assert device.auth() is True
    assert device.get_energy() == pytest.approx(2150.0)
    assert loop_thread.call(lambda: inplug.stats.auths) == 2


def test_a_locked_emulator_answers_unicast_discovery(
    bl: ModuleType, loop_thread: LoopThread, power: SettablePower
) -> None:
    server = loop_thread.run(start_inplug("127.0.0.1", 0, power, locked=True, name="Dryer"))
    try:
        device = bl.hello("127.0.0.1", server.port, timeout=5)
        assert device.is_locked is True and device.name == "Dryer"
    finally:
        loop_thread.run(server.close())
