"""The Shelly and Tasmota codecs: real device replies in, readings out; bad replies refused."""

from __future__ import annotations

import json

import pytest

from whitegoodsd.errors import AuthError, ProtocolError, Reading
from whitegoodsd.protocols import shelly, tasmota

# Replies as real devices send them (PLUGS.md section 2 and 3).
GEN1_SHELLY = (
    b'{"type":"SHPLG-S","mac":"AABBCCDDEEFF","auth":true,'
    b'"fw":"20230913-113421/v1.14.0-gcb84623","discoverable":true,'
    b'"num_outputs":1,"num_meters":1}'
)
GEN2_SHELLY = (
    b'{"id":"shellyplusplugs-aabbccddeeff","mac":"AABBCCDDEEFF","model":"SNPL-00112EU",'
    b'"gen":2,"fw_id":"20231107-164738/1.0.8-g8c7bb8d","ver":"1.0.8","app":"PlusPlugS",'
    b'"auth_en":true,"auth_domain":"shellyplusplugs-aabbccddeeff","slot":0,"name":null}'
)
GEN1_METER = (
    b'{"power":61.75,"overpower":0.00,"is_valid":true,"timestamp":1707326925,'
    b'"counters":[34.786,45.552,45.552],"total":4233}'
)
GEN2_SWITCH = (
    b'{"id":0,"source":"init","output":true,"apower":2.7,"voltage":227.9,"current":0.121,'
    b'"aenergy":{"total":7258.589,"by_minute":[34.786,45.552,45.552],"minute_ts":1707326925},'
    b'"temperature":{"tC":32.1,"tF":89.7}}'
)
TASMOTA = (
    b'{"StatusSNS":{"Time":"2022-08-19T16:00:25","ENERGY":{"TotalStartTime":'
    b'"2022-08-19T11:52:13","Total":6.04,"Yesterday":0,"Today":6.04,"Power":20,'
    b'"ApparentPower":26,"ReactivePower":18,"Factor":0.74,"Voltage":234,"Current":0.111}}}'
)
OPENBEKEN = (
    b'{"StatusSNS":{"Time":"2023-04-10T10:19:55","ENERGY":{"Power": 1843.500000,'
    b'"ApparentPower": 1850.0,"ReactivePower": 10.0,"Factor":0.99,"Voltage":229.700000,'
    b'"Current":8.030000,"ConsumptionTotal":1532.250000,"Yesterday": 0.0,'
    b'"ConsumptionLastHour":0.000000}}}'
)


def test_gen1_identity_has_no_gen() -> None:
    identity = shelly.parse_identity(GEN1_SHELLY)
    assert identity.gen == 1 and identity.model == "SHPLG-S" and identity.auth
    assert identity.mac == "AABBCCDDEEFF" and identity.meters == 1


def test_gen2_identity_gives_the_realm() -> None:
    identity = shelly.parse_identity(GEN2_SHELLY)
    assert identity.gen == 2 and identity.model == "SNPL-00112EU" and identity.auth
    assert identity.realm == identity.device_id == "shellyplusplugs-aabbccddeeff"
    # Without auth_domain the realm is the id.
    reply = json.loads(GEN2_SHELLY)
    del reply["auth_domain"]
    assert shelly.parse_identity(json.dumps(reply).encode()).realm == reply["id"]


def test_gen1_total_is_in_watt_minutes() -> None:
    reading = shelly.parse_gen1_meter_reply(GEN1_METER)
    assert reading == Reading(power_mw=61_750, total_wh=4233 / 60)
    status = json.dumps({"meters": [{"power": 1, "total": 60}, json.loads(GEN1_METER)]})
    assert shelly.parse_gen1_status(status.encode(), 1) == reading
    assert shelly.parse_gen1_status(status.encode(), 0) == Reading(1000, total_wh=1.0)
    with pytest.raises(ProtocolError, match="no meter 2: the plug has 2"):
        shelly.parse_gen1_status(status.encode(), 2)


def test_gen2_switch_status() -> None:
    reading = shelly.parse_rpc_status(GEN2_SWITCH)
    assert reading == Reading(2700, 227_900, 121, 7258.589)
    # A JSON-RPC frame around the same result reads the same.
    frame = b'{"id":1,"src":"shellyplusplugs-aabbccddeeff","result":' + GEN2_SWITCH + b"}"
    assert shelly.parse_rpc_status(frame) == reading


def test_builders_round_trip() -> None:
    reading = Reading(1_234_500, 229_700, 5_374, 812.25)
    switch = json.dumps(shelly.switch_status(0, reading)).encode()
    assert shelly.parse_rpc_status(switch) == Reading(1_234_500, 229_700, 5_374, 812.25)
    pm1 = json.dumps(shelly.pm1_status(0, reading)).encode()
    assert shelly.parse_rpc_status(pm1, shelly.PM1).power_mw == 1_234_500
    meter = json.dumps(shelly.gen1_meter(reading)).encode()
    assert shelly.parse_gen1_meter_reply(meter) == Reading(1_234_500, total_wh=812.25)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"code":404,"message":"No handler for Switch.GetStatus"}',
         "Switch.GetStatus failed: 404 No handler for Switch.GetStatus"),
        (b'{"id":1,"error":{"code":-105,"message":"Argument \'id\', value 3 not found!"}}',
         "Switch.GetStatus failed: -105 Argument 'id', value 3 not found!"),
        (b'{"id":0,"output":true}', "Switch.GetStatus reply has no apower"),
        (b'{"apower":1e309}', "apower is not finite"),
        (b'{"apower":1e308}', "apower is out of range"),
        (b'{"apower":"12"}', "apower is not a number"),
        (b"[" * 5000, "nested too deeply"),
        (b"<html>", "not JSON"),
        (b"[1]", "not an object"),
    ],
)  # fmt: skip
def test_bad_rpc_replies(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(")):
        shelly.parse_rpc_status(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name":"router"}', "neither gen nor type and mac"),
        (b'{"gen":"2","id":"x"}', 'gen "2"'),
        (b'{"gen":2}', "no device id"),
        (b"", "not JSON"),
    ],
)
def test_bad_identities(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        shelly.parse_identity(body)


def test_tasmota_status_10() -> None:
    assert tasmota.parse_status(TASMOTA) == Reading(20_000, 234_000, 111, 6040.0)


def test_openbeken_consumption_total_is_in_wh() -> None:
    assert tasmota.parse_status(OPENBEKEN) == Reading(1_843_500, 229_700, 8_030, 1532.25)


def test_tasmota_energy_keys_are_optional() -> None:
    body = b'{"StatusSNS":{"Time":"x","ENERGY":{"Power":5}}}'
    assert tasmota.parse_status(body) == Reading(5000)


def test_tasmota_channels_pick_array_elements() -> None:
    readings = [Reading(10_000, 230_000, 43, 1000.0), Reading(2_000_000, 231_000, 8_658, 500.0)]
    body = json.dumps(tasmota.status_reply(readings)).encode()
    # Total is one sum for all channels: no channel's own, so not reported for channel 1.
    assert tasmota.parse_status(body, 1) == Reading(2_000_000, 231_000, 8_658, None)
    assert tasmota.parse_status(body, 0).power_mw == 10_000
    with pytest.raises(ProtocolError, match="no channel 2: Power has 2"):
        tasmota.parse_status(body, 2)


def test_tasmota_warning_is_an_auth_error() -> None:
    body = json.dumps(tasmota.warning_reply()).encode()
    with pytest.raises(AuthError, match="plug refused the credentials"):
        tasmota.parse_status(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"StatusSNS":{"Time":"2023-04-10T10:19:55"}}', "no power meter"),
        (b'{"Command":"Unknown"}', "plug answered Command 'Unknown'"),
        (b'{"StatusSNS":{"ENERGY":{"Total":1}}}', "ENERGY has no Power"),
        (b'{"StatusSNS":{"ENERGY":{"Power":1,"Total":1e306}}}', "Total is out of range"),
        (b'{"StatusSNS":{"ENERGY":{"Power":[]}}}', "no channel 0: Power has 0"),
        (b'{"StatusSNS":[]}', "StatusSNS is not an object"),
    ],
)
def test_bad_tasmota_replies(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        tasmota.parse_status(body)


def test_tasmota_target_quotes_credentials() -> None:
    assert tasmota.target() == "/cm?cmnd=Status%2010"
    assert (
        tasmota.target("admin", "jo ker&;=")
        == "/cm?user=admin&password=jo%20ker%26%3B%3D&cmnd=Status%2010"
    )
