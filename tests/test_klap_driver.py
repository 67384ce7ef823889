"""The tapo driver and the kasa driver's KLAP path against the emulated plugs, poll by poll."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from whitegoodsd.drivers import _klap
from whitegoodsd.drivers.kasa import KasaPlug
from whitegoodsd.drivers.tapo import TapoPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaDevice, start_kasa
from whitegoodsd.emulator.klap import Answer, KlapServer, start_klap
from whitegoodsd.emulator.smart import SmartDevice
from whitegoodsd.errors import AuthError, PlugError
from whitegoodsd.protocols import tapo

USER, PASSWORD = "owner@example.com", "Correct Horse"
CREDENTIALS = {"username": USER, "password": PASSWORD}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def tapo_plug(**options: Any) -> tuple[KlapServer, SmartDevice, SettablePower]:
    power = SettablePower(1_234_567)
    device = SmartDevice(power, emeter_data=options.pop("emeter_data", True))
    options.setdefault("username", USER)
    options.setdefault("password", PASSWORD)
    return await start_klap("127.0.0.1", 0, device, **options), device, power


def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("version", [1, 2])
def test_tapo_reads_power_voltage_and_current_and_keeps_the_session(version: int) -> None:
    async def scenario() -> None:
        server, _, power = await tapo_plug(version=version)
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        first = await driver.read()
        assert first.power_mw == 1_234_567
        assert first.voltage_mv is not None and 228_000 < first.voltage_mv < 232_000
        assert first.current_ma == round(1_234_567 / first.voltage_mv * 1000)
        assert driver.method == tapo.GET_EMETER_DATA
        assert driver.notes() == [f"KLAP v{version} session with the configured credentials"]
        power.set(5)
        assert (await driver.read()).power_mw == 5
        assert (await driver.read()).power_mw == 5
        assert server.handshakes == 1 and driver.klap.handshakes == 1
        assert driver.notes() == []
        await server.close()

    run(scenario)


def test_tapo_without_get_emeter_data_asks_get_energy_usage_and_remembers() -> None:
    async def scenario() -> None:
        server, device, _ = await tapo_plug(emeter_data=False)
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        reading = await driver.read()
        assert reading.power_mw == 1_234_567 and reading.voltage_mv is None
        assert driver.method == tapo.GET_ENERGY_USAGE
        asked = device.requests
        await driver.read()
        assert device.requests == asked + 1  # straight to the method that answered
        await server.close()

    run(scenario)


def test_one_connection_per_poll_with_keep_alive() -> None:
    async def scenario() -> None:
        server, _, _ = await tapo_plug()
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        await driver.read()  # handshake1, handshake2 and the request: one connection
        assert server.accepted == 1
        await driver.read()
        assert server.accepted == 2
        await server.close()

    run(scenario)


@pytest.mark.parametrize("how", ["restart", "clock"])
def test_a_session_the_plug_forgot_is_made_again_in_the_same_poll(how: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        # The plug advertises a day but forgets after 60 s (its clock runs ahead).
        server, _, _ = await tapo_plug(lifetime=60, advertised=86_400, clock=clock)
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        await driver.read()
        if how == "restart":
            server.forget()
        else:
            clock.now += 61
        assert (await driver.read()).power_mw == 1_234_567  # no failed poll
        assert server.handshakes == 2
        await server.close()

    run(scenario)


def test_the_session_is_renewed_before_the_plugs_timeout() -> None:
    async def scenario() -> None:
        plug_clock, our_clock = Clock(), Clock()
        server, _, _ = await tapo_plug(lifetime=3600, clock=plug_clock)
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        driver.klap.clock = our_clock
        await driver.read()
        our_clock.now += 3600 * 3 / 4 - 1  # the margin is a quarter of a short lifetime
        await driver.read()
        assert server.handshakes == 1
        our_clock.now += 2
        await driver.read()
        assert server.handshakes == 2
        await server.close()

    run(scenario)


@pytest.mark.parametrize("version", [1, 2])
def test_the_default_credentials_are_tried_when_the_users_fail(version: int) -> None:
    async def scenario() -> None:
        server, _, _ = await tapo_plug(version=version, username="test@tp-link.net",
                                       password="test")  # fmt: skip
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        assert (await driver.read()).power_mw == 1_234_567
        assert driver.notes() == [f"KLAP v{version} session with the default TAPO credentials"]
        unset = TapoPlug("127.0.0.1", server.port, 5, {})
        await unset.read()
        await server.close()

    run(scenario)


def test_the_wrong_password_is_one_clear_line_and_nothing_is_sent_after_handshake1() -> None:
    async def scenario() -> None:
        server, device, _ = await tapo_plug()
        driver = TapoPlug("127.0.0.1", server.port, 5, {"username": USER, "password": "nope"})
        for _ in range(2):
            with pytest.raises(AuthError) as caught:
                await driver.read()
            assert str(caught.value) == (
                "the plug refused the username and password (and every default credential)"
            )
        bare = TapoPlug("127.0.0.1", server.port, 5, {})
        with pytest.raises(AuthError, match="set username and password"):
            await bare.read()
        assert server.handshakes == 0 and device.requests == 0
        await server.close()

    run(scenario)


def test_tpap_firmware_is_said_in_one_line_once_per_poll() -> None:
    async def scenario() -> None:
        server, _, _ = await tapo_plug(tpap=True)
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        for polls in (1, 2):
            with pytest.raises(PlugError) as caught:
                await driver.read()
            assert str(caught.value) == _klap.TPAP_REFUSAL
            assert "Third-Party Compatibility" in str(caught.value)
            assert server.refused == polls  # one handshake1 per poll, no retry loop
        await server.close()

    run(scenario)


@pytest.mark.parametrize("version", [1, 2])
def test_kasa_over_klap(version: int) -> None:
    async def scenario() -> None:
        power = SettablePower(61_753)
        server = await start_klap("127.0.0.1", 0, KasaDevice(power), version=version,
                                  username=USER, password=PASSWORD)  # fmt: skip
        driver = KasaPlug("127.0.0.1", server.port, 5, {"protocol": "klap", **CREDENTIALS})
        reading = await driver.read()
        assert reading.power_mw == 61_753 and reading.total_wh is not None
        await driver.read()
        assert server.handshakes == 1
        await server.close()

    run(scenario)


def test_kasa_auto_falls_back_to_klap_when_the_legacy_port_refuses() -> None:
    async def scenario() -> None:
        server = await start_klap("127.0.0.1", 0, KasaDevice(SettablePower(2_000_000)),
                                  version=1, username=USER, password=PASSWORD)  # fmt: skip
        options = {"http_port": server.port, **CREDENTIALS}
        driver = KasaPlug("127.0.0.1", closed_port(), 5, options)
        assert (await driver.read()).power_mw == 2_000_000
        assert driver.protocol == "klap"
        assert driver.notes()[0] == "KLAP v1 session with the configured credentials"
        await driver.read()
        assert server.handshakes == 1
        # without credentials the refusal is the error, as before
        bare = KasaPlug("127.0.0.1", closed_port(), 5, {"http_port": server.port})
        with pytest.raises(PlugError, match="connection refused"):
            await bare.read()
        await server.close()

    run(scenario)


def test_kasa_auto_keeps_to_the_legacy_protocol_when_it_answers() -> None:
    async def scenario() -> None:
        legacy = await start_kasa("127.0.0.1", 0, SettablePower(7_000))
        driver = KasaPlug("127.0.0.1", legacy.port, 5, {"http_port": closed_port(), **CREDENTIALS})
        assert (await driver.read()).power_mw == 7_000
        assert driver.protocol == "xor" and driver.notes() == []
        await legacy.close()

    run(scenario)


def test_a_plug_without_klap_is_told_apart() -> None:
    async def scenario() -> None:
        server, _, _ = await tapo_plug()
        original = server.answer

        def old_firmware(method: str, target: str, cookie: str | None, body: bytes) -> Any:
            if target == "/app/handshake1":
                return Answer(404)
            return original(method, target, cookie, body)

        server.answer = old_firmware  # type: ignore[method-assign]
        driver = TapoPlug("127.0.0.1", server.port, 5, CREDENTIALS)
        with pytest.raises(PlugError) as caught:
            await driver.read()
        assert str(caught.value) == _klap.NO_KLAP
        await server.close()

    run(scenario)
