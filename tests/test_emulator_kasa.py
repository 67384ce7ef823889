"""The emulated Kasa HS110: the device logic, its TCP and UDP servers, and real clients.

Our own driver and python-kasa (the reference client, pip) both read it, in
both emeter reply shapes, over TCP and over unicast UDP discovery.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import socket
import struct
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whitegoodsd.drivers.kasa import KasaPlug, exchange
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaDevice, KasaServer, start_kasa
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.protocols import kasa

from conftest import FakeClock, need

SHAPES = ["v1", "v2"]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


# -- the device, without sockets ----------------------------------------------------


@pytest.mark.parametrize(("shape", "hw_ver"), [("v1", "1.0"), ("v2", "2.0")])
def test_sysinfo_is_an_hs110_with_a_meter(shape: str, hw_ver: str) -> None:
    device = KasaDevice(SettablePower(5000), shape=shape, alias="WASHER", index=3)
    reply = device.handle(kasa.GET_SYSINFO)
    info = kasa.parse_sysinfo(reply)
    assert kasa.meters_power(info)
    assert info["feature"] == "TIM:ENE"
    assert info["model"] == "HS110(EU)"
    assert info["hw_ver"] == hw_ver
    assert info["alias"] == "WASHER"
    assert info["relay_state"] == 1
    assert re.fullmatch(r"[0-9A-F]{40}", info["deviceId"])
    assert re.fullmatch(r"[0-9A-F]{32}", info["hwId"])
    assert re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", info["mac"])


def test_plugs_have_distinct_identities() -> None:
    infos = [KasaDevice(SettablePower(), index=i).sysinfo() for i in range(50)]
    assert len({i["mac"] for i in infos}) == 50
    assert len({i["deviceId"] for i in infos}) == 50


def test_v1_shape_is_floats_in_watts() -> None:
    device = KasaDevice(SettablePower(61753), shape="v1")
    realtime = device.handle(kasa.GET_REALTIME)["emeter"]["get_realtime"]
    assert set(realtime) == {"power", "voltage", "current", "total", "err_code"}
    assert realtime["power"] == pytest.approx(61.753)
    assert 225 < realtime["voltage"] < 235
    assert realtime["current"] == pytest.approx(61.753 / realtime["voltage"], abs=0.001)
    assert all(isinstance(realtime[k], float) for k in ("power", "voltage", "current", "total"))


def test_v2_shape_is_integers_in_milliwatts() -> None:
    device = KasaDevice(SettablePower(61753), shape="v2")
    realtime = device.handle(kasa.GET_REALTIME)["emeter"]["get_realtime"]
    assert set(realtime) == {"power_mw", "voltage_mv", "current_ma", "total_wh", "err_code"}
    assert realtime["power_mw"] == 61753
    assert all(isinstance(realtime[k], int) for k in realtime)


@pytest.mark.parametrize("shape", SHAPES)
def test_codec_reads_back_what_the_emulator_writes(shape: str) -> None:
    reading = Reading(2_150_300, 231_067, 9_306, 16_323.0)
    back = kasa.parse_realtime({"emeter": {"get_realtime": kasa.realtime(reading, shape)}})
    assert back == reading


def test_several_modules_in_one_request_and_unknown_ones() -> None:
    device = KasaDevice(SettablePower(1000))
    reply = device.handle(
        {
            "system": {"get_sysinfo": {}, "reboot": {"delay": 1}},
            "emeter": {"get_realtime": {}},
            "smartlife.iot.dimmer": {"get_dimmer_parameters": {}},
            "cnCloud": {"get_info": {}},
        }
    )
    assert list(reply) == ["system", "emeter", "smartlife.iot.dimmer", "cnCloud"]
    assert reply["system"]["get_sysinfo"]["err_code"] == 0
    assert reply["system"]["reboot"] == {"err_code": -2, "err_msg": "member not support"}
    assert reply["emeter"]["get_realtime"]["power_mw"] == 1000
    assert reply["smartlife.iot.dimmer"] == {"err_code": -1, "err_msg": "module not support"}
    assert reply["cnCloud"] == {"err_code": -1, "err_msg": "module not support"}
    with pytest.raises(PlugError, match="module not support"):
        kasa.parse_realtime({"emeter": reply["cnCloud"]})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
MODULES = st.sampled_from(["system", "emeter", "time", "context", "schedule"]) | st.text(max_size=8)
METHODS = st.sampled_from(
    ["get_sysinfo", "set_relay_state", "set_dev_alias", "set_led_off", "get_realtime",
     "get_daystat", "get_monthstat", "get_time", "get_timezone"]
) | st.text(max_size=8)  # fmt: skip


@given(st.dictionaries(MODULES, st.dictionaries(METHODS, JSON, max_size=4) | JSON, max_size=5))
def test_any_request_gets_a_json_reply(request: dict[str, Any]) -> None:
    reply = KasaDevice(SettablePower(5000)).handle(request)
    assert set(reply) == set(request) - {"context"}
    json.dumps(reply, allow_nan=False)


def test_relay_off_reads_zero_and_stops_the_energy_counter() -> None:
    clock = FakeClock(1000.0)
    source = SettablePower(1_000_000, clock=clock)  # 1 kW
    device = KasaDevice(source, clock=clock)
    clock.now += 3600
    assert device.total_wh() == pytest.approx(1000)
    off = device.handle({"system": {"set_relay_state": {"state": 0}}})
    assert off == {"system": {"set_relay_state": {"err_code": 0}}}
    assert device.sysinfo()["relay_state"] == 0
    clock.now += 3600
    assert device.reading().power_mw == 0
    assert device.total_wh() == pytest.approx(1000)
    device.handle({"system": {"set_relay_state": {"state": 1}}})
    clock.now += 1800
    assert device.reading().power_mw == 1_000_000
    assert device.total_wh() == pytest.approx(1500)


@pytest.mark.parametrize("argument", [{}, {"state": 2}, {"state": True}, {"state": "1"}, []])
def test_bad_relay_arguments_are_refused(argument: object) -> None:
    device = KasaDevice(SettablePower())
    reply = device.handle({"system": {"set_relay_state": argument}})
    assert reply["system"]["set_relay_state"]["err_code"] == -3
    assert device.relay_on


def test_decoder_keeps_what_follows_a_message() -> None:
    decoder = kasa.FrameDecoder(kind="request")
    two = kasa.frame({"a": 1}) + kasa.frame({"b": 2})
    assert decoder.feed(two[:-3]) == b'{"a":1}'
    assert decoder.feed(b"") is None
    assert decoder.pending
    assert decoder.feed(two[-3:]) == b'{"b":2}'
    assert not decoder.pending


# -- over the network --------------------------------------------------------------


async def serve(shape: str = "v2", power_mw: int = 61753) -> KasaServer:
    return await start_kasa("127.0.0.1", 0, SettablePower(power_mw), shape=shape, alias="WASHER")


@pytest.mark.parametrize("shape", SHAPES)
def test_our_driver_reads_the_emulator(shape: str) -> None:
    async def scenario() -> None:
        server = await serve(shape, 2_150_000)
        try:
            reading = await KasaPlug("127.0.0.1", server.port, 5).read()
            assert reading.power_mw == 2_150_000
            assert reading.voltage_mv is not None and 225_000 < reading.voltage_mv < 235_000
            assert reading.current_ma is not None and 9_000 < reading.current_ma < 9_600
            assert reading.total_wh is not None and reading.total_wh >= 0
        finally:
            await server.close()

    run(scenario)


def test_many_requests_on_one_connection_back_to_back() -> None:
    async def scenario() -> None:
        server = await serve()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(kasa.frame(kasa.GET_SYSINFO) + kasa.frame(kasa.GET_REALTIME) * 2)
            decoder = kasa.FrameDecoder()
            bodies: list[bytes] = []
            while len(bodies) < 3:
                data = await reader.read(4096)
                assert data, "the emulator closed the connection"
                body = decoder.feed(data)
                while body is not None:
                    bodies.append(body)
                    body = decoder.feed(b"")
            assert "system" in kasa.loads(bodies[0])
            assert kasa.parse_realtime(kasa.loads(bodies[2])).power_mw == 61753
            writer.close()
            await writer.wait_closed()
            assert server.device.requests == 3
        finally:
            await server.close()

    run(scenario)


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack(">I", kasa.MAX_REQUEST + 1),  # too long, refused on the header
        struct.pack(">I", 9) + kasa.encrypt(b"not json!"),
        struct.pack(">I", 2) + kasa.encrypt(b"[]"),
    ],
    ids=["too-long", "not-json", "not-an-object"],
)
def test_bad_requests_close_the_connection(payload: bytes) -> None:
    async def scenario() -> None:
        server = await serve()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(payload)
            assert await reader.read() == b""  # closed, nothing said
            writer.close()
            # The plug still serves everybody else.
            assert (await KasaPlug("127.0.0.1", server.port, 5).read()).power_mw == 61753
        finally:
            await server.close()

    run(scenario)


def test_udp_answers_discovery_from_the_same_port() -> None:
    async def scenario() -> None:
        server = await serve("v1")
        try:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.connect(("127.0.0.1", server.port))
                sock.send(b"\x00garbage")  # ignored
                await loop.sock_sendall(sock, kasa.datagram(kasa.GET_SYSINFO))
                data = await loop.sock_recv(sock, 65536)
            info = kasa.parse_sysinfo(kasa.loads(kasa.decrypt(data)))
            assert info["alias"] == "WASHER" and info["hw_ver"] == "1.0"
        finally:
            await server.close()

    run(scenario)


def test_a_fixed_port_and_close_frees_it() -> None:
    async def scenario() -> None:
        first = await serve()
        port = first.port
        await first.close()
        again = await start_kasa("127.0.0.1", port, SettablePower(7))
        try:
            assert again.port == port
            assert (await exchange("127.0.0.1", port, kasa.GET_REALTIME))["emeter"]
        finally:
            await again.close()

    run(scenario)


# -- python-kasa, the reference client -----------------------------------------------


def python_kasa() -> ModuleType:
    try:
        return importlib.import_module("kasa")
    except ImportError:
        need(False, "python-kasa not installed (pip install python-kasa; ./run test does)")
        raise


def energy_of(device: Any) -> Any:
    return device.modules["Energy"]


@pytest.mark.parametrize("shape", SHAPES)
def test_python_kasa_discovers_and_reads_the_emulator(shape: str) -> None:
    pk = python_kasa()

    async def scenario() -> None:
        server = await serve(shape, 2_150_000)
        try:
            device = await pk.Discover.discover_single(
                "127.0.0.1", port=server.port, discovery_timeout=10
            )
            assert device is not None
            await device.update()
            try:
                assert device.alias == "WASHER"
                assert device.model == "HS110"
                assert device.is_on
                assert device.hw_info["hw_ver"] == ("1.0" if shape == "v1" else "2.0")
                energy = energy_of(device)
                assert energy.current_consumption == pytest.approx(2150.0)
                assert 225 < energy.voltage < 235
                assert energy.consumption_total is not None
                await device.turn_off()
                await device.update()
                assert not device.is_on
                assert energy_of(device).current_consumption == 0
            finally:
                await device.disconnect()
        finally:
            await server.close()

    run(scenario)


@pytest.mark.parametrize("shape", SHAPES)
def test_python_kasa_connects_over_tcp_without_discovery(shape: str) -> None:
    pk = python_kasa()
    from kasa.iot import IotPlug

    async def scenario() -> None:
        server = await serve(shape, 1_234_000)
        try:
            config = pk.DeviceConfig("127.0.0.1", port_override=server.port)
            device = IotPlug("127.0.0.1", config=config)
            try:
                await device.update()
                status = energy_of(device).status
                assert status.power == pytest.approx(1234.0)
                assert status["power_mw"] == pytest.approx(1_234_000)
            finally:
                await device.disconnect()
        finally:
            await server.close()

    run(scenario)
