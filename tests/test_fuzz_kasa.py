"""Fuzzing the Kasa codec: whatever a plug sends, the parsers answer or raise ProtocolError.

ProtocolError is the codec's documented failure; anything else escaping from
FrameDecoder, loads, parse_realtime or parse_sysinfo would be a bug, caught
by nothing between the codec and the poll loop.  Run with more examples
under CI=true (the "ci" profile in conftest.py).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError, Reading
from whitegoodsd.protocols import kasa

from conftest import attempt, one_line

LIMIT = 200  # small, so that the cap is reached often


# Values as json.loads can produce them (ints it parses have at most 4,300 digits).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

MEASURES = [
    "power", "power_mw", "voltage", "voltage_mv", "current", "current_ma", "total", "total_wh",
]  # fmt: skip
numbers = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.sampled_from([0, -1, -2, 1e308, -1e308, 5e-324, 2**63, True, "12"]),
)
errors: st.SearchStrategy[dict[str, object]] = st.one_of(
    st.just({}),
    st.just({"err_code": 0}),
    st.dictionaries(st.sampled_from(["err_code", "err_msg"]), numbers | json_values),
)
realtime_objects = st.builds(
    lambda measures, error: {**measures, **error},
    st.dictionaries(st.sampled_from(MEASURES), numbers | json_values, max_size=len(MEASURES)),
    errors,
)
# Replies shaped like the real thing, with anything in the places that matter.
realtime_replies = st.one_of(
    st.fixed_dictionaries({"emeter": st.fixed_dictionaries({"get_realtime": realtime_objects})}),
    st.fixed_dictionaries(
        {"emeter": st.dictionaries(st.sampled_from(["get_realtime", "err_code", "err_msg"]),
                                   realtime_objects | json_values)}
    ),
    st.dictionaries(st.sampled_from(["emeter", "system"]), json_values),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)  # fmt: skip
sysinfo_replies = st.one_of(
    st.fixed_dictionaries(
        {"system": st.fixed_dictionaries({"get_sysinfo": st.dictionaries(st.text(max_size=8),
                                                                        json_values)})}
    ),
    st.dictionaries(st.sampled_from(["system", "emeter"]), json_values),
)  # fmt: skip


def framed(body: bytes, length: int | None = None) -> bytes:
    return struct.pack(">I", len(body) if length is None else length) + kasa.encrypt(body)


# A stream: a real frame (true, zero, short or long length), or noise.
streams = st.one_of(
    st.binary(max_size=600),
    st.builds(framed, st.binary(max_size=300)),
    st.builds(framed, st.binary(max_size=300), st.just(0)),
    st.builds(framed, st.binary(max_size=300), st.integers(0, 2**32 - 1)),
    st.builds(lambda v: framed(kasa.dumps(v)), json_values),
)


@given(streams, st.lists(st.integers(1, 64), max_size=20), st.booleans())
def test_frame_decoder_answers_or_raises_protocol_error(
    stream: bytes, cuts: list[int], eof: bool
) -> None:
    decoder = kasa.FrameDecoder(LIMIT)
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(stream[at : at + cut])
        at += cut
    pieces.append(stream[at:])
    for piece in pieces:
        body = attempt(lambda: decoder.feed(piece))  # noqa: B023 - called at once
        assert decoder.buffered <= LIMIT + len(piece)
        if isinstance(body, ProtocolError):
            assert one_line(body)
            return
        if body is not None:
            assert len(body) <= LIMIT
            return
    if eof:
        last = attempt(decoder.feed_eof)
        assert one_line(last) if isinstance(last, ProtocolError) else len(last) <= LIMIT


@given(st.binary(max_size=2000))
def test_loads_answers_a_dict_or_raises_protocol_error(data: bytes) -> None:
    try:
        assert isinstance(kasa.loads(data), dict)
    except ProtocolError:
        pass


@given(json_values)
def test_loads_of_any_json_text(value: object) -> None:
    text = kasa.dumps(value) if _dumpable(value) else b"null"
    try:
        assert isinstance(kasa.loads(text), dict)
    except ProtocolError:
        assert not isinstance(value, dict)


@given(st.integers(1, kasa.MAX_REPLY), st.sampled_from([b"[", b'{"a":', b"[{"]))
def test_loads_of_deep_nesting(depth: int, opener: bytes) -> None:
    try:
        kasa.loads(opener * (depth // len(opener)))
    except ProtocolError:
        pass


@given(realtime_replies)
def test_parse_realtime_answers_a_sane_reading_or_raises_protocol_error(
    reply: dict[str, Any],
) -> None:
    reading = attempt(lambda: kasa.parse_realtime(reply))
    if isinstance(reading, ProtocolError):
        assert one_line(reading)
        return
    assert isinstance(reading, Reading)
    assert isinstance(reading.power_mw, int) and reading.power_mw >= 0
    for value in (reading.voltage_mv, reading.current_ma):
        assert value is None or isinstance(value, int)
    assert reading.total_wh is None or math.isfinite(reading.total_wh)


@given(
    st.dictionaries(st.sampled_from(MEASURES), numbers, min_size=1),
    st.sampled_from([{}, {"err_code": 0}]),
)
def test_parse_realtime_of_well_shaped_replies(
    measures: dict[str, object], error: dict[str, int]
) -> None:
    # Mostly readings: the arithmetic (scales, rounding, overflow) gets hammered.
    reply = {"emeter": {"get_realtime": {**measures, **error}}}
    reading = attempt(lambda: kasa.parse_realtime(reply))
    if isinstance(reading, ProtocolError):
        assert one_line(reading)
        return
    assert reading.power_mw >= 0
    assert reading.total_wh is None or math.isfinite(reading.total_wh)


@given(sysinfo_replies)
def test_parse_sysinfo_answers_a_dict_or_raises_protocol_error(reply: dict[str, Any]) -> None:
    try:
        sysinfo = kasa.parse_sysinfo(reply)
    except ProtocolError:
        return
    assert isinstance(sysinfo, dict)
    assert isinstance(kasa.meters_power(sysinfo), bool)


@given(streams)
def test_the_whole_read_path_answers_or_raises_protocol_error(stream: bytes) -> None:
    # What the driver does with a connection's bytes, then EOF.
    decoder = kasa.FrameDecoder()
    try:
        body = decoder.feed(stream)
        if body is None:
            body = decoder.feed_eof()
        kasa.parse_realtime(kasa.loads(body))
    except ProtocolError:
        pass


def _dumpable(value: object) -> bool:
    try:
        kasa.dumps(value)
    except ValueError:  # ints past the digit limit
        return False
    return True
