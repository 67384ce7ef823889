"""The Kasa codec: cipher, framing, both emeter reply shapes, and bad replies."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError, Reading
from whitegoodsd.protocols import kasa


def test_known_cipher_vector() -> None:
    # {"system":{"get_sysinfo":{}}} as every Kasa client sends it.
    cipher = kasa.encrypt(b'{"system":{"get_sysinfo":{}}}')
    assert cipher[:4] == bytes([0xD0, 0xF2, 0x81, 0xF8])
    assert kasa.decrypt(cipher) == b'{"system":{"get_sysinfo":{}}}'


@given(st.binary(max_size=512))
def test_cipher_round_trip(data: bytes) -> None:
    assert kasa.decrypt(kasa.encrypt(data)) == data


def test_frame_is_length_then_body() -> None:
    framed = kasa.frame(kasa.GET_REALTIME)
    (length,) = struct.unpack(">I", framed[:4])
    assert length == len(framed) - 4
    assert kasa.decrypt(framed[4:]) == b'{"emeter":{"get_realtime":{}}}'


@given(st.binary(min_size=1, max_size=300), st.integers(1, 7))
def test_decoder_reassembles_any_split(body: bytes, pieces: int) -> None:
    framed = struct.pack(">I", len(body)) + kasa.encrypt(body)
    decoder = kasa.FrameDecoder()
    size = max(1, len(framed) // pieces)
    result = None
    for start in range(0, len(framed), size):
        assert result is None
        result = decoder.feed(framed[start : start + size])
    assert result == body


def test_zero_length_reads_to_eof() -> None:
    decoder = kasa.FrameDecoder()
    assert decoder.feed(b"\0\0\0\0" + kasa.encrypt(b'{"a":1}')) is None
    assert decoder.feed_eof() == b'{"a":1}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "without a reply"),
        (b"\0\0", "inside the length header"),
        (b"\0\0\0\x10abc", "after 3 of 16 bytes"),
        (b"\0\0\0\0", "before the reply body"),
    ],
)
def test_early_close_is_an_error(data: bytes, message: str) -> None:
    decoder = kasa.FrameDecoder()
    decoder.feed(data)
    with pytest.raises(ProtocolError, match=message):
        decoder.feed_eof()


def test_huge_length_is_refused_at_once() -> None:
    with pytest.raises(ProtocolError, match="claims 2,147,483,648 bytes"):
        kasa.FrameDecoder().feed(struct.pack(">I", 2**31))


def test_zero_length_body_is_capped() -> None:
    decoder = kasa.FrameDecoder(limit=100)
    decoder.feed(b"\0\0\0\0" + b"x" * 100)
    with pytest.raises(ProtocolError, match="longer than"):
        decoder.feed(b"x")


def test_v1_reply() -> None:
    reply = {"emeter": {"get_realtime": {
        "current": 0.014937, "voltage": 231.067823, "power": 0.928511,
        "total": 55.139, "err_code": 0}}}  # fmt: skip
    assert kasa.parse_realtime(reply) == Reading(929, 231068, 15, 55139.0)


def test_v2_reply() -> None:
    reply = {"emeter": {"get_realtime": {
        "current_ma": 451, "power_mw": 61753, "total_wh": 16323,
        "voltage_mv": 230837, "err_code": 0}}}  # fmt: skip
    assert kasa.parse_realtime(reply) == Reading(61753, 230837, 451, 16323.0)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"emeter": {"err_code": -1, "err_msg": "module not support"}},
         "emeter err_code -1: module not support"),
        ({"emeter": {"get_realtime": {"err_code": -2, "err_msg": "member not support"}}},
         "emeter.get_realtime err_code -2"),
        ({"system": {}}, "no 'emeter' object"),
        ({"emeter": {"get_realtime": {"voltage_mv": 1}}}, "neither power_mw nor power"),
        ({"emeter": {"get_realtime": {"power_mw": "12"}}}, "power_mw is not a number"),
        ({"emeter": {"get_realtime": {"power": True}}}, "power is not a number"),
        ({"emeter": {"get_realtime": {"power": -5000.0}}}, "negative power"),
    ],
)  # fmt: skip
def test_bad_replies(reply: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        kasa.parse_realtime(reply)


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b"[1,2]", b"NaN"])
def test_not_a_json_object(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        kasa.loads(body)


def test_meters_power() -> None:
    assert kasa.meters_power({"feature": "TIM:ENE"})
    assert not kasa.meters_power({"feature": "TIM"})
