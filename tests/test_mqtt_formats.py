"""The MQTT payload decoders on the payloads the publishers really send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.errors import ProtocolError, Reading
from whitegoodsd.protocols import mqtt_formats as formats
from whitegoodsd.protocols.mqtt_formats import Presence

from conftest import attempt, one_line

# Zigbee2MQTT: a metering plug's state (units from zigbee-herdsman-converters' exposes).
Z2M_STATE = (
    b'{"state":"ON","power":123.4,"energy":1.23,"voltage":231,"current":0.54,'
    b'"linkquality":120,"power_on_behavior":"previous","child_lock":"UNLOCK"}'
)
# Tasmota tele/%topic%/SENSOR (an S31), and stat/%topic%/STATUS10.
TASMOTA_SENSOR = (
    b'{"Time":"2022-08-19T16:00:25","ENERGY":{"TotalStartTime":"2022-08-19T11:52:13",'
    b'"Total":6.04,"Yesterday":0,"Today":6.04,"Period":0,"Power":20,"ApparentPower":26,'
    b'"ReactivePower":18,"Factor":0.74,"Voltage":234,"Current":0.111}}'
)
TASMOTA_STATUS10 = b'{"StatusSNS":' + TASMOTA_SENSOR + b"}"
OPENBEKEN_SENSOR = (
    b'{"Time":"1970-01-01T00:12:34","ENERGY":{"Power":1201.5,"ApparentPower":1250.0,'
    b'"ReactivePower":30.2,"Factor":0.96,"Voltage":229.8,"Current":5.44,'
    b'"ConsumptionTotal":1234.5,"Yesterday":0.5,"ConsumptionLastHour":0.2}}'
)
# Shelly Plus Plug S: status/switch:0 with status_ntf on, and NotifyStatus deltas.
SHELLY_STATUS = (
    b'{"id":0,"source":"init","output":true,"apower":12.3,"voltage":230.5,"current":0.053,'
    b'"aenergy":{"total":456.7,"by_minute":[0.000,0.000,0.000],"minute_ts":1675935540},'
    b'"temperature":{"tC":35.2,"tF":95.4}}'
)
SHELLY_NOTIFY_POWER = (
    b'{"src":"shellyplusplugs-b0b21c10a5e8","dst":"shellyplusplugs-b0b21c10a5e8/events",'
    b'"method":"NotifyStatus","params":{"ts":1736603810.49,"switch:0":{"id":0,"apower":2150.7,'
    b'"current":9.35}}}'
)
SHELLY_NOTIFY_OUTPUT = (
    b'{"src":"shellyplusplugs-b0b21c10a5e8","dst":"shellyplusplugs-b0b21c10a5e8/events",'
    b'"method":"NotifyStatus","params":{"ts":1736603810.49,"switch:0":{"id":0,"output":false,'
    b'"source":"HTTP_in"}}}'
)
SHELLY_NOTIFY_OTHER = (
    b'{"src":"shellyplus1-08b61fd90730","dst":"shellyplus1-08b61fd90730/events",'
    b'"method":"NotifyStatus","params":{"ts":1736604020.06,"cloud":{"connected":true}}}'
)


def test_zigbee2mqtt() -> None:
    z2m = formats.decoder("zigbee2mqtt", "zigbee2mqtt/washer")
    assert z2m.subscriptions() == ("zigbee2mqtt/washer", "zigbee2mqtt/washer/availability")
    assert z2m.decode("zigbee2mqtt/washer", Z2M_STATE) == Reading(123_400, 231_000, 540, 1230.0)
    availability = "zigbee2mqtt/washer/availability"
    assert z2m.decode(availability, b'{"state":"offline"}') == Presence(False)
    assert z2m.decode(availability, b'{"state":"online"}') == Presence(True)
    assert z2m.decode(availability, b"offline") == Presence(False)  # before 2.0
    with pytest.raises(ProtocolError, match="no 'power'"):
        z2m.decode("zigbee2mqtt/washer", b'{"state":"ON","linkquality":120}')


def test_tasmota() -> None:
    tasmota = formats.decoder("tasmota", "tasmota_1A2B3C")
    assert tasmota.subscriptions() == ("tele/tasmota_1A2B3C/SENSOR", "tele/tasmota_1A2B3C/LWT")
    assert tasmota.period == 300.0
    expected = Reading(20_000, 234_000, 111, 6040.0)
    assert tasmota.decode("tele/tasmota_1A2B3C/SENSOR", TASMOTA_SENSOR) == expected
    assert tasmota.decode("tele/tasmota_1A2B3C/SENSOR", TASMOTA_STATUS10) == expected
    assert tasmota.decode("tele/tasmota_1A2B3C/LWT", b"Offline") == Presence(False)
    assert tasmota.decode("tele/tasmota_1A2B3C/LWT", b"Online") == Presence(True)
    beken = formats.decoder("tasmota", "tele/obk_plug/SENSOR")
    assert beken.decode("tele/obk_plug/SENSOR", OPENBEKEN_SENSOR) == Reading(
        1_201_500, 229_800, 5440
    )
    two = formats.decoder("tasmota", "tele/dual/SENSOR", channel=1)
    payload = b'{"ENERGY":{"Power":[10,2200],"Voltage":230,"Current":[0.1,9.6],"Total":[1.5,2.5]}}'
    assert two.decode("tele/dual/SENSOR", payload) == Reading(2_200_000, 230_000, 9600, 2500.0)
    with pytest.raises(ProtocolError, match=r"no ENERGY\.Power"):
        tasmota.decode("tele/tasmota_1A2B3C/SENSOR", b'{"Time":"x","AM2301":{"Temperature":21}}')


def test_shelly() -> None:
    prefix = "shellyplusplugs-b0b21c10a5e8"
    shelly = formats.decoder("shelly", prefix)
    assert shelly.subscriptions() == (f"{prefix}/events/rpc", f"{prefix}/online")
    assert shelly.decode(f"{prefix}/events/rpc", SHELLY_NOTIFY_POWER) == Reading(
        2_150_700, None, 9350
    )
    assert shelly.decode(f"{prefix}/events/rpc", SHELLY_NOTIFY_OUTPUT) is None
    assert shelly.decode(f"{prefix}/events/rpc", SHELLY_NOTIFY_OTHER) is None
    assert shelly.decode(f"{prefix}/online", b"false") == Presence(False)
    # status_ntf on: the full status topic instead, never both (a change would come twice).
    status = formats.decoder("shelly", f"{prefix}/status/switch:0")
    assert status.subscriptions() == (f"{prefix}/status/switch:0", f"{prefix}/online")
    assert status.decode(f"{prefix}/status/switch:0", SHELLY_STATUS) == Reading(
        12_300, 230_500, 53, 456.7
    )
    with pytest.raises(ProtocolError, match="no 'apower'"):
        status.decode(f"{prefix}/status/switch:0", b'{"id":0,"output":true}')


def test_recognise() -> None:
    assert formats.recognise("zigbee2mqtt/Washer", Z2M_STATE) == (
        "zigbee2mqtt",
        "zigbee2mqtt/Washer",
        0,
    )
    assert formats.recognise("zigbee2mqtt/Lamp", b'{"state":"ON","brightness":4}') is None
    assert formats.recognise("tele/tasmota_1A/SENSOR", TASMOTA_SENSOR) == (
        "tasmota",
        "tasmota_1A",
        0,
    )
    assert formats.recognise("tasmota/x/tele/SENSOR", TASMOTA_SENSOR) == (
        "tasmota",
        "tasmota/x/tele/SENSOR",
        0,
    )
    assert formats.recognise("plug1/events/rpc", SHELLY_NOTIFY_POWER) == ("shelly", "plug1", 0)
    assert formats.recognise("plug1/events/rpc", SHELLY_NOTIFY_OUTPUT) is None
    assert formats.recognise("p/status/switch:0", SHELLY_STATUS) == (
        "shelly",
        "p/status/switch:0",
        0,
    )
    assert formats.recognise("node/sensor/power/state", b"12.5") == (
        "esphome",
        "node/sensor/power/state",
        0,
    )
    assert formats.recognise("node/sensor/temperature/state", b"21.5") is None
    assert formats.recognise("home/washer/power", b"7") == ("plain", "home/washer/power", 0)
    assert formats.recognise("home/washer/power", b"on") is None


def test_esphome_plain_and_json_path() -> None:
    esphome = formats.decoder("esphome", "athom-plug/sensor/power/state")
    assert esphome.subscriptions() == ("athom-plug/sensor/power/state", "athom-plug/status")
    assert esphome.decode("athom-plug/sensor/power/state", b"123.4") == Reading(123_400)
    with pytest.raises(ProtocolError, match="not finite"):
        esphome.decode("athom-plug/sensor/power/state", b"nan")  # ESPHome's unknown state
    assert esphome.decode("athom-plug/status", b"offline") == Presence(False)
    plain = formats.decoder("plain", "home/washer/watts")
    assert plain.subscriptions() == ("home/washer/watts",)
    assert plain.decode("home/washer/watts", b" 7 \n") == Reading(7000)
    path = formats.decoder(formats.parse_format("json:emeters.0.power"), "shellies/plug/status")
    document = {"emeters": [{"power": 61.5, "total": 10}]}
    assert path.decode("shellies/plug/status", json.dumps(document).encode()) == Reading(61_500)
    with pytest.raises(ProtocolError, match=r"no 'emeters\.1'"):
        formats.decoder("json:emeters.1.power", "t").decode("t", json.dumps(document).encode())


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"power": NaN}', "not JSON"),
        (b'{"power": Infinity}', "not JSON"),
        (b'{"power": 1e999}', "not finite"),
        (b'{"power": "12"}', "not a number"),
        (b'{"power": true}', "not a number"),
        (b'{"power": 1e300}', "out of range"),
        (b'{"power": -5000}', "negative power"),
        (b'{"power": ' + b"9" * 5000 + b"}", "not JSON"),
        (b"[" * 100_000, "over"),
        (b"[" * 60_000, "nested too deeply"),
        (b"\xff\xfe", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_bad_payloads_are_one_line(payload: bytes, message: str) -> None:
    z2m = formats.decoder("zigbee2mqtt", "z")
    with pytest.raises(ProtocolError, match=message) as caught:
        z2m.decode("z", payload)
    assert one_line(caught.value)


def test_topics_and_formats() -> None:
    for bad in ("zigbee2mqtt/+", "tele/#", "", "a\0b", "x" * 2000):
        with pytest.raises(ValueError):  # noqa: PT011 - each reason is its own
            formats.check_topic(bad)
    assert formats.check_topic("zigbee2mqtt/Washer Machine") == "zigbee2mqtt/Washer Machine"
    assert formats.parse_format("Tasmota") == "tasmota"
    for bad in ("json:", "json:a..b", "homie"):
        with pytest.raises(ValueError):  # noqa: PT011
            formats.parse_format(bad)
    assert formats.topic_level("WASHER") == "WASHER"
    assert formats.topic_level("a/b+c#d%e\0") == "a%2Fb%2Bc%23d%25e%00"


@given(st.binary(max_size=300), st.sampled_from((*formats.FORMATS[:4], "plain", "json:a.0.b")))
def test_fuzz_any_payload(payload: bytes, name: str) -> None:
    decoder = formats.decoder(formats.parse_format(name), "p/sensor/x/state")
    for topic in decoder.subscriptions():
        outcome = attempt(lambda t=topic: decoder.decode(t, payload))  # type: ignore[misc]
        if isinstance(outcome, ProtocolError):
            assert one_line(outcome)
        elif isinstance(outcome, Reading):
            assert outcome.power_mw >= 0


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["power", "ENERGY", "Power", "apower", "switch:0", "params", "method",
                         "aenergy", "total", "Total", "energy", "state", "StatusSNS"]),
        inner, max_size=4),
    max_leaves=12,
))  # fmt: skip
def test_fuzz_json_shapes(document: object) -> None:
    try:
        payload = json.dumps(document).encode()
    except ValueError:
        return
    for name, topic in (
        ("zigbee2mqtt", "z"),
        ("tasmota", "tele/t/SENSOR"),
        ("shelly", "s/events/rpc"),
        ("shelly", "s/status/switch:0"),
        ("json:ENERGY.Power", "j"),
    ):
        decoder = formats.decoder(name, topic.split("/")[0] if name == "shelly" else topic)
        outcome = attempt(lambda d=decoder, t=topic: d.decode(t, payload))  # type: ignore[misc]
        if isinstance(outcome, ProtocolError):
            assert one_line(outcome)
