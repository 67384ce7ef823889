"""The shelly and tasmota drivers against the emulated plugs, poll by poll.

Each test serves an emulated plug on 127.0.0.1 and polls it through the
engine (``driver.read()``), counting on the plug's side what each poll cost:
requests, 401s, identifications.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from whitegoodsd.drivers.shelly import ShellyPlug
from whitegoodsd.drivers.tasmota import TasmotaPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.shelly import ShellyDevice, start_shelly
from whitegoodsd.emulator.tasmota import TasmotaDevice, start_tasmota
from whitegoodsd.errors import AuthError, PlugError, ProtocolError, Reading

T = TypeVar("T")
TIMEOUT = 5.0


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


async def outcome(driver: ShellyPlug | TasmotaPlug) -> Reading | PlugError:
    try:
        return await driver.read()
    except PlugError as exc:
        return exc


async def with_shelly(
    gen: int, test: Callable[[ShellyDevice, int], Awaitable[None]], **options: Any
) -> None:
    server = await start_shelly("127.0.0.1", 0, SettablePower(1_500_000), gen=gen, **options)
    try:
        await test(server.device, server.port)  # type: ignore[attr-defined]
    finally:
        await server.close()


@pytest.mark.parametrize("gen", [1, 2])
def test_reads_power_and_identifies_once(gen: int) -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT)
        first = await driver.read()
        assert first.power_mw == 1_500_000
        if gen == 2:
            assert first.voltage_mv is not None and 228_000 < first.voltage_mv < 232_000
        assert driver.identity is not None and driver.identity.gen == gen
        assert device.requests == 2  # /shelly, then the reading
        device.source.set(2_000)  # type: ignore[attr-defined]
        assert (await driver.read()).power_mw == 2_000
        assert device.requests == 3 and driver.identifications == 1

    run(lambda: with_shelly(gen, test))


def test_gen2_digest_nonce_is_reused_across_polls() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT, {"password": "s3cret"})
        assert (await driver.read()).power_mw == 1_500_000
        assert (device.requests, device.challenges) == (3, 1)  # /shelly, 401, reading
        for _ in range(5):
            assert (await driver.read()).power_mw == 1_500_000
        # One request per poll: the nonce of the first 401 is still good.
        assert (device.requests, device.challenges) == (8, 1)
        assert driver.digest.nc == 6
        # The plug restarts and forgets its nonces: one 401 more, in the same poll.
        device.nonces.clear()
        assert (await driver.read()).power_mw == 1_500_000
        assert (device.requests, device.challenges) == (10, 2)

    run(lambda: with_shelly(2, test, password="s3cret"))


def test_gen2_wrong_password_is_one_auth_error_per_poll_and_two_requests() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT, {"password": "wrong"})
        for poll in range(1, 4):
            failure = await outcome(driver)
            assert isinstance(failure, AuthError)
            assert str(failure) == "the plug refused the password (HTTP 401)"
            assert device.requests == 1 + 2 * poll  # never more than two a poll
        assert driver.identifications == 1

    run(lambda: with_shelly(2, test, password="s3cret"))


@pytest.mark.parametrize("gen", [1, 2])
def test_a_password_is_asked_for(gen: int) -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        failure = await outcome(ShellyPlug("127.0.0.1", port, TIMEOUT))
        assert isinstance(failure, AuthError)
        assert str(failure).startswith("plug asks for a password: set ")

    run(lambda: with_shelly(gen, test, password="s3cret"))


def test_gen1_basic_auth() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        good = ShellyPlug("127.0.0.1", port, TIMEOUT, {"username": "me", "password": "pw"})
        assert await good.read() == Reading(1_500_000, total_wh=good_total(device))
        bad = ShellyPlug("127.0.0.1", port, TIMEOUT, {"password": "pw"})  # user admin
        failure = await outcome(bad)
        assert isinstance(failure, AuthError)
        assert str(failure) == "the plug refused the user name or password (HTTP 401)"

    def good_total(device: ShellyDevice) -> float:
        return int(device.source.total_wh() * 60) / 60

    run(lambda: with_shelly(1, test, username="me", password="pw"))


def test_gen2_meter_without_relay_is_read_with_pm1() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT)
        assert (await driver.read()).power_mw == 1_500_000
        assert driver.method == "PM1.GetStatus"
        assert device.requests == 3  # /shelly, Switch (404), PM1
        await driver.read()
        assert device.requests == 4  # PM1 straight away

    run(lambda: with_shelly(2, test, component="pm1"))


def test_a_missing_channel_is_a_clear_error() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        failure = await outcome(ShellyPlug("127.0.0.1", port, TIMEOUT, {"channel": 3}))
        assert isinstance(failure, ProtocolError)
        assert str(failure) == "Switch.GetStatus failed: -105 Argument 'id', value 3 not found!"

    run(lambda: with_shelly(2, test))


def test_replies_that_stop_making_sense_make_it_identify_again() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT)
        await driver.read()
        assert driver.identity is not None and driver.identity.gen == 1
        device.gen = 2  # a firmware update: now an RPC device at the same address
        failure = await outcome(driver)
        assert isinstance(failure, ProtocolError)
        assert str(failure) == "no meter 0 on this plug (HTTP 404)"
        assert (await driver.read()).power_mw == 1_500_000
        assert driver.identity is not None and driver.identity.gen == 2
        assert driver.identifications == 2

    run(lambda: with_shelly(1, test))


async def with_tasmota(
    test: Callable[[TasmotaDevice, int], Awaitable[None]], **options: Any
) -> None:
    server = await start_tasmota("127.0.0.1", 0, SettablePower(2_150_000), **options)
    try:
        await test(server.device, server.port)  # type: ignore[attr-defined]
    finally:
        await server.close()


def test_tasmota_reads_power_with_and_without_a_password() -> None:
    async def test(device: TasmotaDevice, port: int) -> None:
        reading = await TasmotaPlug("127.0.0.1", port, TIMEOUT, {"password": "jo ker&"}).read()
        assert reading.power_mw == 2_150_000 and reading.current_ma is not None
        assert device.requests == 1 and device.refused == 0
        for options in ({}, {"password": "joker"}, {"username": "root", "password": "jo ker&"}):
            failure = await outcome(TasmotaPlug("127.0.0.1", port, TIMEOUT, options))
            assert isinstance(failure, AuthError), options
            assert str(failure) == (
                "plug refused the credentials (Need user=<username>&password=<password>)"
            )
        assert device.requests == 4 and device.refused == 3

    run(lambda: with_tasmota(test, password="jo ker&"))

    async def open_plug(device: TasmotaDevice, port: int) -> None:
        assert (await TasmotaPlug("127.0.0.1", port, TIMEOUT).read()).power_mw == 2_150_000

    run(lambda: with_tasmota(open_plug))


def test_tasmota_channel_out_of_range() -> None:
    async def test(device: TasmotaDevice, port: int) -> None:
        failure = await outcome(TasmotaPlug("127.0.0.1", port, TIMEOUT, {"channel": 1}))
        assert isinstance(failure, ProtocolError)
        assert str(failure) == "Power is a single value: the plug has one channel"

    run(lambda: with_tasmota(test))


@pytest.mark.parametrize("gen", [1, 2])
def test_channel_picks_an_output_of_a_multi_channel_shelly(gen: int) -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        for channel, watts in ((0, 1_500_000), (1, 7_000), (2, 2_200_000)):
            driver = ShellyPlug("127.0.0.1", port, TIMEOUT, {"channel": channel})
            assert (await driver.read()).power_mw == watts

    others = (SettablePower(7_000), SettablePower(2_200_000))
    run(lambda: with_shelly(gen, test, others=others))


def test_channel_picks_an_element_of_tasmota_arrays() -> None:
    async def test(device: TasmotaDevice, port: int) -> None:
        first = await TasmotaPlug("127.0.0.1", port, TIMEOUT).read()
        second = await TasmotaPlug("127.0.0.1", port, TIMEOUT, {"channel": 1}).read()
        assert (first.power_mw, second.power_mw) == (2_150_000, 40_000)
        # Total is one sum for both channels: no channel's own, so not given.
        assert first.total_wh is None and second.total_wh is None
        failure = await outcome(TasmotaPlug("127.0.0.1", port, TIMEOUT, {"channel": 2}))
        assert str(failure) == "no channel 2: Power has 2"

    run(lambda: with_tasmota(test, others=(SettablePower(40_000),)))


def test_notes_say_what_was_learned_once() -> None:
    async def test(device: ShellyDevice, port: int) -> None:
        driver = ShellyPlug("127.0.0.1", port, TIMEOUT, {"password": "pw"})
        await driver.read()
        assert driver.notes() == [
            "Shelly Gen2 S3PM-001PCEU16, firmware 20231107-164738/1.0.8-g8c7bb8d, password set",
            f"new digest nonce (SHA-256, realm {device.device_id})",
            "read with PM1.GetStatus",
        ]
        await driver.read()
        assert driver.notes() == []

    run(lambda: with_shelly(2, test, password="pw", component="pm1"))
