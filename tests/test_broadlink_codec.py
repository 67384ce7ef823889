"""The Broadlink codec: checksums, AES, packets, discovery, and the client's matching."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import broadlink
from whitegoodsd.protocols.broadlink import Client, Command, Control, Header, Session, Stray

# The answer of a real Broadlink SP3 to authentication, as logged in
# home-assistant/core issue #36624: magic, checksums, command 0x3E9 and an
# AES payload holding device id 1 and the session key.
REAL_AUTH_REPLY = bytes.fromhex(
    "5aa5aa555aa5aa55000000000000000000000000000000000000000000000000"
    "5ed700003e75e903db7d68f53c770f780000000019c50000"
    "65a1f5db200a1d8aaf461a23578adc71209d25199fdbe280403b902c9fa80dde"
)
REAL_SESSION_KEY = bytes.fromhex("71b04351a0db0607472ad4331c6df338")

MAC = bytes.fromhex("34ea34b0c1d2")


def test_a_real_plug_reply_parses_and_decrypts() -> None:
    header, body = broadlink.parse_packet(REAL_AUTH_REPLY)
    assert header.command == Command.AUTH + broadlink.REPLY_OFFSET == 0x3E9
    assert header.error == 0 and header.devtype == 0x753E
    payload = broadlink.open_payload(broadlink.INITIAL_KEY, header, body)
    assert broadlink.parse_auth_reply(payload) == Session(1, REAL_SESSION_KEY)
    # The plug states the checksum of the padded plaintext at 0x34.
    assert broadlink.checksum(payload) == header.payload_checksum == 0xC519


def test_checksum_is_0xbeaf_plus_the_bytes() -> None:
    assert broadlink.checksum(b"") == 0xBEAF
    assert broadlink.checksum(b"\x01\x02") == 0xBEB2
    assert broadlink.checksum(b"\xff" * 0x200) == (0xBEAF + 0xFF * 0x200) & 0xFFFF


@given(st.binary(max_size=200), st.binary(min_size=16, max_size=16))
def test_aes_round_trip_with_zero_padding(plain: bytes, key: bytes) -> None:
    cipher = broadlink.encrypt(key, plain)
    assert len(cipher) % 16 == 0 and len(cipher) - len(plain) < 16
    assert broadlink.decrypt(key, cipher) == broadlink.pad(plain)


def test_decrypt_refuses_partial_blocks() -> None:
    with pytest.raises(ProtocolError, match="not whole AES blocks"):
        broadlink.decrypt(broadlink.INITIAL_KEY, bytes(17))


headers = st.builds(
    Header,
    command=st.integers(0, 0xFFFF),
    counter=st.integers(0, 0xFFFF),
    devtype=st.integers(0, 0xFFFF),
    mac=st.binary(min_size=6, max_size=6),
    device_id=st.integers(0, 0xFFFFFFFF),
    error=st.integers(-0x8000, 0x7FFF),
)


@given(headers, st.binary(max_size=0x60), st.binary(min_size=16, max_size=16))
def test_packet_round_trip(header: Header, payload: bytes, key: bytes) -> None:
    packet = broadlink.build_packet(key, header, payload)
    assert packet[:8] == broadlink.MAGIC
    parsed, body = broadlink.parse_packet(packet)
    assert parsed == Header(**{**vars(header), "payload_checksum": broadlink.checksum(payload)})
    assert broadlink.open_payload(key, parsed, body) == broadlink.pad(payload)


def test_packet_layout() -> None:
    header = Header(Command.CONTROL, 0x1234, 0x2716, MAC, 0xA1B2C3D4)
    packet = broadlink.build_packet(broadlink.INITIAL_KEY, header, b"\x04")
    assert packet[0x24:0x26] == b"\x16\x27"
    assert packet[0x26:0x28] == b"\x6a\x00"
    assert packet[0x28:0x2A] == b"\x34\x12"
    assert packet[0x2A:0x30] == MAC[::-1]
    assert packet[0x30:0x34] == bytes.fromhex("d4c3b2a1")
    assert packet[0x34:0x36] == (0xBEAF + 4).to_bytes(2, "little")
    assert len(packet) == 0x38 + 16


WHEN = dt.datetime(2024, 3, 9, 21, 5, 42, tzinfo=dt.timezone(dt.timedelta(hours=10)))


def test_hello_request_layout() -> None:
    packet = broadlink.hello_request(broadlink.Hello(WHEN, "192.168.1.7", 0xBEEF))
    assert len(packet) == broadlink.HELLO_SIZE
    assert packet[0x08:0x0C] == (10).to_bytes(4, "little")
    assert packet[0x0C:0x0E] == (2024).to_bytes(2, "little")
    assert list(packet[0x0E:0x14]) == [5, 21, 24, 6, 9, 3]  # min hour yy Saturday day month
    assert packet[0x18:0x1C] == bytes([7, 1, 168, 192])
    assert packet[0x1C:0x1E] == b"\xef\xbe"
    assert packet[0x26] == 6
    assert broadlink.is_hello_request(packet)
    assert not broadlink.is_hello_request(packet[:-1])
    assert not broadlink.is_hello_request(packet[:0x20] + b"\0\0" + packet[0x22:])


@given(
    st.integers(0, 0xFFFF),
    st.binary(min_size=6, max_size=6),
    st.text(max_size=20).filter(lambda t: "\0" not in t),
    st.booleans(),
)
def test_hello_reply_round_trip(devtype: int, mac: bytes, name: str, locked: bool) -> None:
    request = broadlink.hello_request(broadlink.Hello(WHEN))
    info = broadlink.DeviceInfo(devtype, mac, name, locked, "10.1.2.3")
    reply = broadlink.hello_reply(request, info)
    assert len(reply) == broadlink.HELLO_REPLY_SIZE and reply[:0x20] == request[:0x20]
    assert broadlink.parse_hello_reply(reply) == info


def test_device_types() -> None:
    inplug = broadlink.DeviceInfo(0x2716, MAC)
    assert inplug.meters_power is True and "0x2716" in inplug.model
    assert broadlink.DeviceInfo(0x2717, MAC).meters_power is False
    assert broadlink.DeviceInfo(0x1234, MAC).meters_power is None
    assert inplug.mac_text == "34:ea:34:b0:c1:d2"


def test_control_payloads() -> None:
    assert broadlink.control_payload(Control.GET_POWER) == b"\x04" + bytes(15)
    assert broadlink.control_payload(Control.SET_RELAY, 1)[:5] == b"\x02\0\0\0\x01"
    assert broadlink.parse_power(broadlink.power_reply_payload(57_471)) == 57_471
    assert broadlink.parse_power(broadlink.power_reply_payload(2**30)) == 0xFFFFFF
    assert broadlink.parse_relay(broadlink.relay_reply_payload(True)) is True
    with pytest.raises(ProtocolError, match="power reply of 6 bytes"):
        broadlink.parse_power(bytes(6))


# -- the client ---------------------------------------------------------------


class FakePlug:
    """Answers a Client's requests with the codec, for the matching tests."""

    def __init__(self) -> None:
        self.session = Session(0x01020304, bytes(range(16)))

    def answer(
        self, request: bytes, payload: bytes, *, error: int = 0, key: bytes | None = None
    ) -> bytes:
        header, _ = broadlink.parse_packet(request)
        if header.command == Command.AUTH:
            key = key or broadlink.INITIAL_KEY
        reply = Header(header.command + 0x384, header.counter, 0x2716, MAC, 0, error)
        return broadlink.build_packet(key or self.session.key, reply, payload)


@pytest.fixture
def authenticated() -> tuple[Client, FakePlug]:
    client, plug = Client(mac=MAC, counter=0xFFFE), FakePlug()
    request = client.auth_request()
    client.receive(plug.answer(request, broadlink.auth_reply_payload(plug.session)))
    assert client.session == plug.session
    return client, plug


def test_client_request_carries_the_session(authenticated: tuple[Client, FakePlug]) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    header, body = broadlink.parse_packet(request)
    assert header.counter == 0x0000  # wrapped from 0xFFFF
    assert header.device_id == plug.session.device_id and header.mac == MAC
    plain = broadlink.open_payload(plug.session.key, header, body)
    assert plain == broadlink.control_payload(Control.GET_POWER)
    reply = plug.answer(request, broadlink.power_reply_payload(1234))
    assert broadlink.parse_power(client.receive(reply)) == 1234


def _corrupt(packet: bytes, offset: int) -> bytes:
    return packet[:offset] + bytes([packet[offset] ^ 0x55]) + packet[offset + 1 :]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda p: p[:0x30], "short packet: 48 bytes"),
        (lambda p: _corrupt(p, 0x40), "bad checksum"),
        (lambda p: _corrupt(p, 0x03), "no 5aa5aa55 magic"),
        (lambda p: p + bytes(2000), "more than the 1024 accepted"),
    ],
)
def test_client_drops_broken_datagrams(
    authenticated: tuple[Client, FakePlug], mangle: object, reason: str
) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    reply = plug.answer(request, broadlink.power_reply_payload(5))
    assert callable(mangle)
    with pytest.raises(Stray, match=reason):
        client.receive(mangle(reply))
    # Still waiting: the good reply is taken afterwards.
    assert broadlink.parse_power(client.receive(reply)) == 5


def test_client_drops_other_counters_and_names_duplicates(
    authenticated: tuple[Client, FakePlug],
) -> None:
    client, plug = authenticated
    first = client.control_request(Control.GET_POWER)
    first_reply = plug.answer(first, broadlink.power_reply_payload(1))
    client.receive(first_reply)
    second = client.control_request(Control.GET_POWER)
    with pytest.raises(Stray, match=r"duplicate of reply 0x0000"):
        client.receive(first_reply)
    other = Header(0x3EE, 0x4242, 0x2716, MAC, 0)
    stranger = broadlink.build_packet(plug.session.key, other, bytes(16))
    with pytest.raises(Stray, match=r"reply to packet 0x4242, expected 0x0001"):
        client.receive(stranger)
    assert broadlink.parse_power(
        client.receive(plug.answer(second, broadlink.power_reply_payload(2)))
    ) == 2  # fmt: skip
    with pytest.raises(Stray, match="expected none"):
        client.receive(stranger)


@pytest.mark.parametrize(("code", "text"), [(-4, "-4 (not supported)"), (-99, "error -99")])
def test_error_code_fails_the_request(
    authenticated: tuple[Client, FakePlug], code: int, text: str
) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    with pytest.raises(ProtocolError, match=text.replace("(", r"\(").replace(")", r"\)")) as exc:
        client.receive(plug.answer(request, b"", error=code))
    assert not isinstance(exc.value, Stray | broadlink.SessionRejected)
    assert client.session is not None


@pytest.mark.parametrize("code", [-1, -2, -7])
def test_session_errors_ask_for_a_new_authentication(
    authenticated: tuple[Client, FakePlug], code: int
) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    with pytest.raises(broadlink.SessionRejected, match="rejected the session"):
        client.receive(plug.answer(request, b"", error=code))
    assert client.session is None


def test_undecryptable_reply_asks_for_a_new_authentication(
    authenticated: tuple[Client, FakePlug],
) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    reply = plug.answer(request, broadlink.power_reply_payload(1), key=bytes(16))
    with pytest.raises(broadlink.SessionRejected, match="does not decrypt"):
        client.receive(reply)
    assert client.session is None


def test_partial_block_payload_is_an_error(authenticated: tuple[Client, FakePlug]) -> None:
    client, plug = authenticated
    request = client.control_request(Control.GET_POWER)
    reply = bytearray(plug.answer(request, broadlink.power_reply_payload(1))[:-3])
    reply[0x20:0x22] = b"\0\0"
    reply[0x20:0x22] = broadlink.checksum(reply).to_bytes(2, "little")
    with pytest.raises(ProtocolError, match="13 bytes is not whole AES blocks"):
        client.receive(bytes(reply))


def test_refused_authentication() -> None:
    client, plug = Client(), FakePlug()
    request = client.auth_request()
    with pytest.raises(ProtocolError, match=r"authentication refused: error -1") as exc:
        client.receive(plug.answer(request, b"", error=-1))
    assert not isinstance(exc.value, broadlink.SessionRejected)
    request = client.auth_request()
    with pytest.raises(ProtocolError, match="does not decrypt"):
        client.receive(plug.answer(request, bytes(32), key=bytes(16)))
    assert client.session is None


@given(st.binary(max_size=300))
def test_any_bytes_give_a_payload_or_a_protocol_error(data: bytes) -> None:
    client = Client(counter=0)
    client.control_request(Control.GET_POWER)
    try:
        client.receive(data)
    except ProtocolError:
        pass
    try:
        broadlink.parse_hello_reply(data)
    except ProtocolError:
        pass


@given(st.binary(min_size=0x38, max_size=0x80), st.integers(0, 0xFFFF))
def test_well_framed_garbage_gives_a_protocol_error(body: bytes, counter: int) -> None:
    """Garbage with magic, a valid checksum and the right counter: never a crash."""
    client = Client(counter=counter)
    request = client.control_request(Control.GET_POWER)
    packet = bytearray(broadlink.MAGIC + body[8:])
    packet[0x28:0x2A] = request[0x28:0x2A]
    packet[0x20:0x22] = b"\0\0"
    packet[0x20:0x22] = broadlink.checksum(packet).to_bytes(2, "little")
    try:
        client.receive(bytes(packet))
    except ProtocolError:
        pass
