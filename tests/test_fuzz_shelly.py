"""Fuzzing the Shelly and Tasmota parsers: any body gives a Reading or a one-line ProtocolError.

AuthError (a Tasmota WARNING) is a ProtocolError's sibling under PlugError and
counts as a clean answer too; anything else escaping would be a bug.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.protocols import shelly, tasmota

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
numbers = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**63, True, "12", None]),
)
values = numbers | json_values | st.lists(numbers, max_size=3)

switch_objects = st.dictionaries(
    st.sampled_from(["apower", "voltage", "current", "aenergy", "output", "code", "message"]),
    values | st.fixed_dictionaries({"total": values}),
)
meter_objects = st.dictionaries(st.sampled_from(["power", "total", "is_valid"]), values)
identity_objects = st.dictionaries(
    st.sampled_from(["gen", "id", "type", "mac", "model", "auth", "auth_en", "auth_domain", "fw"]),
    values,
)
energy_objects = st.dictionaries(
    st.sampled_from(["Power", "Voltage", "Current", "Total", "ConsumptionTotal", "WARNING"]), values
)
tasmota_replies = st.one_of(
    st.fixed_dictionaries({"StatusSNS": st.fixed_dictionaries({"ENERGY": energy_objects})}),
    st.dictionaries(st.sampled_from(["StatusSNS", "WARNING", "Command", "ENERGY"]), json_values),
)


def body(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def outcome(parse: Callable[[], object]) -> object:
    """What ``parse()`` returns, or the PlugError it raises (anything else escapes)."""
    try:
        return parse()
    except PlugError as exc:
        return exc


def clean(parse: Callable[[], object]) -> None:
    result = outcome(parse)
    if isinstance(result, PlugError):
        assert "\n" not in str(result) and len(str(result)) < 200, str(result)
    elif isinstance(result, Reading):
        assert isinstance(result.power_mw, int)
        for number in (result.voltage_mv, result.current_ma):
            assert number is None or isinstance(number, int)
        assert result.total_wh is None or math.isfinite(result.total_wh)


@given(switch_objects | json_values, st.sampled_from(shelly.METHODS))
def test_rpc_replies(reply: object, method: str) -> None:
    clean(lambda: shelly.parse_rpc_status(body(reply), method))
    clean(lambda: shelly.parse_rpc_status(body({"id": 1, "result": reply}), method))


@given(meter_objects | json_values, st.integers(0, 3))
def test_gen1_replies(meter: object, channel: int) -> None:
    clean(lambda: shelly.parse_gen1_meter_reply(body(meter)))
    clean(lambda: shelly.parse_gen1_status(body({"meters": [meter, meter]}), channel))


@given(identity_objects | json_values)
def test_identities(reply: object) -> None:
    clean(lambda: shelly.parse_identity(body(reply)))


@given(tasmota_replies, st.integers(0, 3))
def test_tasmota_replies(reply: object, channel: int) -> None:
    clean(lambda: tasmota.parse_status(body(reply), channel))


@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    for parse in (
        lambda: shelly.parse_identity(data),
        lambda: shelly.parse_rpc_status(data),
        lambda: shelly.parse_gen1_meter_reply(data),
        lambda: shelly.parse_gen1_status(data),
        lambda: tasmota.parse_status(data),
    ):
        clean(parse)
