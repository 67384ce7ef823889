"""Fuzzing the Broadlink codec: any datagram is a value or a ProtocolError.

ProtocolError (with its subclasses Stray and SessionRejected) is the codec's
documented failure; the INPLUG driver catches nothing else.  Beyond random
bytes (tests/test_broadlink_codec.py has those too), the strategies here make
datagrams that pass the outer checks - magic, checksum, counter, even the
right AES key - so that the parsers behind them get hammered as well.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import broadlink
from whitegoodsd.protocols.broadlink import Client, Control, Header, Session

from conftest import attempt, one_line

u16 = st.integers(0, 0xFFFF)
i16 = st.integers(-0x8000, 0x7FFF)
keys = st.binary(min_size=16, max_size=16)


def sealed(data: bytes) -> bytes:
    """``data`` with the magic and a right checksum: what passes parse_packet's checks."""
    packet = bytearray(broadlink.MAGIC + data[8:])
    packet[0x20:0x22] = b"\0\0"
    packet[0x20:0x22] = broadlink.checksum(packet).to_bytes(2, "little")
    return bytes(packet)


@given(st.binary(max_size=1100) | st.binary(min_size=0x38, max_size=1100).map(sealed))
def test_parse_packet_answers_a_header_or_raises_protocol_error(data: bytes) -> None:
    parsed = attempt(lambda: broadlink.parse_packet(data))
    if isinstance(parsed, ProtocolError):
        assert isinstance(parsed, broadlink.Stray) and one_line(parsed)
        return
    header, body = parsed
    assert 0 <= header.counter <= 0xFFFF and len(header.mac) == 6
    assert len(body) == len(data) - broadlink.HEADER_SIZE


@given(keys, st.binary(max_size=200), u16)
def test_open_payload_answers_bytes_or_raises_protocol_error(
    key: bytes, body: bytes, stated: int
) -> None:
    header = Header(0x3EE, 1, broadlink.INPLUG, bytes(6), 1, 0, stated)
    plain = attempt(lambda: broadlink.open_payload(key, header, body))
    assert isinstance(plain, ProtocolError) or len(plain) == len(body)


@given(keys, st.binary(max_size=200))
def test_aes_decrypt_answers_or_raises_protocol_error(key: bytes, body: bytes) -> None:
    plain = attempt(lambda: broadlink.decrypt(key, body))
    assert isinstance(plain, ProtocolError) == bool(len(body) % broadlink.BLOCK)


def hello_shaped(data: bytes, keep_checksum: bool) -> bytes:
    if keep_checksum:
        return data
    packet = bytearray(data)
    packet[0x20:0x22] = b"\0\0"
    packet[0x20:0x22] = broadlink.checksum(packet).to_bytes(2, "little")
    return bytes(packet)


@given(
    st.binary(max_size=1100)
    | st.builds(hello_shaped, st.binary(min_size=0x40, max_size=0x90), st.booleans())
)
def test_parse_hello_reply_answers_device_info_or_raises_protocol_error(data: bytes) -> None:
    info = attempt(lambda: broadlink.parse_hello_reply(data))
    if isinstance(info, ProtocolError):
        assert one_line(info)
        return
    assert len(info.mac) == 6 and 0 <= info.devtype <= 0xFFFF
    assert info.model and info.mac_text and info.meters_power in (True, False, None)


@given(st.binary(max_size=64))
def test_payload_parsers_answer_or_raise_protocol_error(payload: bytes) -> None:
    power = attempt(lambda: broadlink.parse_power(payload))
    assert isinstance(power, ProtocolError) or 0 <= power <= 0xFFFFFF
    relay = attempt(lambda: broadlink.parse_relay(payload))
    assert isinstance(relay, ProtocolError | bool)
    session = attempt(lambda: broadlink.parse_auth_reply(payload))
    assert isinstance(session, ProtocolError) or len(session.key) == 16


@given(
    counter=u16,
    device_id=st.integers(0, 2**32 - 1),
    key=keys,
    error=st.one_of(st.just(0), i16, st.sampled_from(sorted(broadlink.SESSION_ERRORS))),
    command=st.one_of(st.just(broadlink.Command.CONTROL + broadlink.REPLY_OFFSET), u16),
    counter_offset=st.sampled_from([0, 0, 0, 1, -1, 0x4000]),
    right_key=st.booleans(),
    payload=st.binary(max_size=96),
)
def test_a_well_sealed_reply_to_a_power_request_answers_or_raises_protocol_error(
    counter: int,
    device_id: int,
    key: bytes,
    error: int,
    command: int,
    counter_offset: int,
    right_key: bool,
    payload: bytes,
) -> None:
    """The plug's reply with anything in it, mostly under the session's own key."""
    client = Client(counter=counter)
    client.session = Session(device_id, key)
    client.control_request(Control.GET_POWER)
    reply = broadlink.build_packet(
        key if right_key else bytes(16),
        Header(
            command=command,
            counter=(counter + 1 + counter_offset) & 0xFFFF,
            devtype=broadlink.INPLUG,
            mac=bytes(6),
            device_id=device_id,
            error=error,
        ),
        payload,
    )
    answer = attempt(lambda: client.receive(reply))
    if isinstance(answer, ProtocolError):
        assert one_line(answer)
        return
    power = attempt(lambda: broadlink.parse_power(answer))
    assert isinstance(power, ProtocolError) or 0 <= power <= 0xFFFFFF


@given(st.lists(st.binary(max_size=120), max_size=6))
def test_a_client_survives_any_sequence_of_datagrams(datagrams: list[bytes]) -> None:
    client = Client(counter=7)
    client.auth_request()
    for data in datagrams:
        attempt(lambda: client.receive(data))  # noqa: B023 - called at once
    assert client.session is None or len(client.session.key) == 16
