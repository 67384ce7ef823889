"""The emulated KLAP plugs against real third-party clients: python-kasa 0.12 and tapo.

Two independent client code bases read the power of the emulated Tapo P110
(SMART over KLAP v2) and Kasa KP115 (IOT over KLAP v1, and v2 as new Kasa
firmware does): that is what shows the emulator speaks the real protocol,
and so that the driver, tested against the emulator, does too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaDevice
from whitegoodsd.emulator.klap import KlapServer, start_klap
from whitegoodsd.emulator.smart import SmartDevice

from conftest import need

USER, PASSWORD = "owner@example.com", "Correct Horse"
POWER_MW = 61_753


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def python_kasa_power(
    port: int, family: str, version: int, password: str = PASSWORD
) -> float | None:
    from kasa import Credentials, Device, DeviceConfig, DeviceConnectionParameters, Module

    config = DeviceConfig(
        host="127.0.0.1",
        port_override=port,
        credentials=Credentials(USER, password),
        connection_type=DeviceConnectionParameters.from_values(
            family, "KLAP", login_version=version
        ),
    )
    device = await Device.connect(config=config)
    try:
        energy = device.modules[Module.Energy]
        return energy.current_consumption
    finally:
        await device.disconnect()


@pytest.mark.parametrize("version", [1, 2])
def test_python_kasa_reads_the_emulated_kasa_plug_over_klap(version: int) -> None:
    async def scenario() -> None:
        device = KasaDevice(SettablePower(POWER_MW))
        server = await start_klap("127.0.0.1", 0, device, version=version,
                                  username=USER, password=PASSWORD)  # fmt: skip
        try:
            watts = await python_kasa_power(server.port, "IOT.SMARTPLUGSWITCH", version)
            assert watts == pytest.approx(61.753)
            assert server.handshakes == 1 and device.requests > 0
        finally:
            await server.close()

    run(scenario)


def test_python_kasa_reads_the_emulated_tapo_plug() -> None:
    async def scenario() -> None:
        device = SmartDevice(SettablePower(POWER_MW))
        server = await start_klap("127.0.0.1", 0, device, version=2,
                                  username=USER, password=PASSWORD)  # fmt: skip
        try:
            watts = await python_kasa_power(server.port, "SMART.TAPOPLUG", 2)
            assert watts == pytest.approx(61.753)
            assert server.handshakes == 1
        finally:
            await server.close()

    run(scenario)


def test_python_kasa_reads_older_tapo_firmware_without_get_emeter_data() -> None:
    async def scenario() -> None:
        device = SmartDevice(SettablePower(POWER_MW), emeter_data=False)
        server = await start_klap("127.0.0.1", 0, device, username=USER, password=PASSWORD)
        try:
            assert await python_kasa_power(server.port, "SMART.TAPOPLUG", 2) == pytest.approx(
                61.753
            )
        finally:
            await server.close()

    run(scenario)


def test_python_kasa_is_refused_with_the_wrong_password() -> None:
    from kasa.exceptions import AuthenticationError

    async def scenario() -> None:
        server = await start_klap("127.0.0.1", 0, SmartDevice(SettablePower(0)),
                                  username=USER, password=PASSWORD)  # fmt: skip
        try:
            with pytest.raises(AuthenticationError):
                await python_kasa_power(server.port, "SMART.TAPOPLUG", 2, password="wrong")
            assert server.handshakes == 0
        finally:
            await server.close()

    run(scenario)


def _tapo_client() -> object:
    try:
        import tapo  # type: ignore[import-untyped]
    except ImportError:
        need(False, "the tapo client package is not installed (pip install tapo)")
    return tapo


@pytest.mark.parametrize("emeter_data", [True, False])
def test_the_tapo_client_reads_the_emulated_p110(emeter_data: bool) -> None:
    tapo: object = _tapo_client()

    async def scenario() -> None:
        device = SmartDevice(SettablePower(POWER_MW), emeter_data=emeter_data)
        server: KlapServer = await start_klap("127.0.0.1", 0, device,
                                              username=USER, password=PASSWORD)  # fmt: skip
        try:
            client = tapo.ApiClient(USER, PASSWORD, timeout_s=5)  # type: ignore[attr-defined]
            plug = await client.p110(f"127.0.0.1:{server.port}")
            usage = (await plug.get_energy_usage()).to_dict()
            assert usage["current_power"] == POWER_MW  # mW
            power = (await plug.get_current_power()).to_dict()
            assert power["current_power"] == 61  # whole W
            assert server.handshakes == 1
        finally:
            await server.close()

    run(scenario)
