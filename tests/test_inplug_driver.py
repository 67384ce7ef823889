"""The INPLUG driver against the emulated INPLUG, honest and hostile, in one process."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import drivers
from whitegoodsd.drivers.inplug import InplugPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import InplugServer, is_broadcast, start_inplug
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.monitor import Monitor
from whitegoodsd.protocols import broadlink

from conftest import ROOT, write_ini
from hostile import HostileInplug, InplugMode

Scenario = Callable[[InplugServer, SettablePower], Awaitable[None]]


def run(scenario: Scenario, **options: object) -> None:
    """Run ``scenario`` with an emulated INPLUG on 127.0.0.1."""

    async def main() -> None:
        power = SettablePower(1500)
        server = await start_inplug("127.0.0.1", 0, power, **options)  # type: ignore[arg-type]
        try:
            await scenario(server, power)
        finally:
            await server.close()

    asyncio.run(main())


def test_registered_as_inplug_on_port_80() -> None:
    assert drivers.get("inplug") is InplugPlug
    assert InplugPlug("10.0.0.9", None, 5).address == "10.0.0.9:80"


def test_the_example_inplug_section_loads() -> None:
    """whitegoodsd.ini.example's INPLUG section (the dishwasher) is valid."""
    config = configuration.load(str(ROOT / "whitegoodsd.ini.example"))
    dishwasher = config.appliances[-1]
    assert (dishwasher.name, dishwasher.plug.driver, dishwasher.plug.port) == (
        "DISHWASHER",
        "inplug",
        None,
    )
    assert (
        drivers.get(dishwasher.plug.driver)(dishwasher.plug.host, None, 5).address
        == "192.0.2.12:80"
    )


def test_reads_power_once_authenticated() -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        plug = InplugPlug("127.0.0.1", server.port, 2)
        assert await plug.read() == Reading(power_mw=1500)
        power.set(2_150_000)
        assert await plug.read() == Reading(power_mw=2_150_000)
        assert plug.info is not None and plug.info.name == "Emulated INPLUG"
        assert plug.authentications == 1
        assert (server.stats.hellos, server.stats.auths, server.stats.controls) == (1, 1, 2)

    run(scenario)


def test_duplicate_replies_are_dropped() -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        plug = InplugPlug("127.0.0.1", server.port, 2)
        for watts in (5, 6, 7):
            power.set(watts * 1000)
            assert await plug.read() == Reading(power_mw=watts * 1000)
        assert plug.authentications == 1

    run(scenario, duplicate=True)


@pytest.mark.parametrize("stale", ["error", "key"])
def test_a_restarted_plug_is_authenticated_again_within_the_poll(stale: str) -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        plug = InplugPlug("127.0.0.1", server.port, 2)
        await plug.read()
        server.restart()
        power.set(3000)
        assert await plug.read() == Reading(power_mw=3000)
        assert plug.authentications == 2
        assert server.stats.rejected == 1 and server.stats.auths == 2

    run(scenario, stale=stale, duplicate=True)


def test_a_neo_cannot_measure_power() -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        plug = InplugPlug("127.0.0.1", server.port, 2)
        for _ in range(2):
            with pytest.raises(PlugError, match=r"NEO, type 0x2717 cannot measure power"):
                await plug.read()
        assert server.stats.auths == 0 and server.stats.hellos == 1

    run(scenario, devtype=broadlink.NEO)


def test_a_locked_plug_answers_the_driver() -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        plug = InplugPlug("127.0.0.1", server.port, 2)
        assert await plug.read() == Reading(power_mw=1500)
        assert plug.info is not None and plug.info.locked

    run(scenario, locked=True)


def test_broadcast_is_told_from_unicast() -> None:
    assert not is_broadcast("127.0.0.1", "127.0.0.1")
    assert is_broadcast("192.168.1.5", "255.255.255.255")
    assert is_broadcast("192.168.1.5", "192.168.1.255")
    assert is_broadcast("192.168.1.5", "224.0.0.1")


def test_a_locked_plug_ignores_broadcast_hellos() -> None:
    async def scenario(server: InplugServer, power: SettablePower) -> None:
        hello = broadlink.hello_request(broadlink.Hello(dt.datetime.now().astimezone()))
        assert server.respond(hello, broadcast=True) == []
        (reply,) = server.respond(hello, broadcast=False)
        assert broadlink.parse_hello_reply(reply).locked

    run(scenario, locked=True)


def test_silence_is_a_timeout() -> None:
    async def main() -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            plug = InplugPlug("127.0.0.1", silent.getsockname()[1], 0.3)
            with pytest.raises(PlugError, match=r"^no answer within 0.3 s$"):
                await plug.read()
        finally:
            silent.close()

    asyncio.run(main())


def test_nobody_listening_is_refused() -> None:
    async def main() -> None:
        server = await start_inplug("127.0.0.1", 0, SettablePower())
        port = server.port
        await server.close()
        with pytest.raises(PlugError, match="connection refused"):
            await InplugPlug("127.0.0.1", port, 2).read()

    asyncio.run(main())


# -- hostile replies ----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            InplugMode.BAD_CHECKSUM,
            r"^no answer within 0.5 s; ignored \d+ datagram\(s\), the last: bad chec",
        ),
        (
            InplugMode.SHORT,
            r"ignored \d+ datagram\(s\), the last: short packet: 32 bytes, a command",
        ),
        (
            InplugMode.WRONG_COUNTER,
            r"the last: reply to packet 0x[0-9A-F]{4}, expected 0x[0-9A-F]{4}",
        ),
        (InplugMode.DUPLICATES, r"the last: duplicate of reply 0x[0-9A-F]{4}$"),
        (
            InplugMode.UNDECRYPTABLE,
            r"^payload does not decrypt with the key in use \(the plug may have restarted\), "
            r"even after a new authentication$",
        ),
        (InplugMode.ERROR_CODE, r"^plug answered error -4 \(not supported\)$"),
    ],
)
def test_hostile_replies_fail_the_poll_with_a_reason(mode: InplugMode, message: str) -> None:
    async def main() -> None:
        server = HostileInplug(mode, SettablePower(1000))
        try:
            plug = InplugPlug("127.0.0.1", server.port, 0.5)
            with pytest.raises(PlugError, match=message):
                await plug.read()
        finally:
            await server.close()

    asyncio.run(main())


class Impostor(asyncio.DatagramProtocol):
    """Answers every hello honestly, but from another socket than the one asked."""

    def __init__(self, other: socket.socket) -> None:
        self.other = other
        self.answered = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        info = broadlink.DeviceInfo(broadlink.INPLUG, bytes(6))
        self.other.sendto(broadlink.hello_reply(data, info), addr)
        self.answered += 1


def test_replies_from_another_address_are_not_taken() -> None:
    async def main() -> None:
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        transport, impostor = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: Impostor(other), local_addr=("127.0.0.1", 0)
        )
        try:
            plug = InplugPlug("127.0.0.1", transport.get_extra_info("sockname")[1], 0.5)
            with pytest.raises(PlugError, match=r"^no answer within 0.5 s$"):
                await plug.read()
        finally:
            transport.close()
            other.close()
        assert impostor.answered >= 1 and plug.info is None

    asyncio.run(main())


def test_a_hostile_plug_never_stops_a_pass(tmp_path: Path) -> None:
    async def main() -> None:
        good = await start_inplug("127.0.0.1", 0, SettablePower(9000))
        bad = HostileInplug(InplugMode.UNDECRYPTABLE, SettablePower(9000))
        ini = write_ini(
            tmp_path / "w.ini",
            f"""
            [whitegoodsd]
            appliances = GOOD, BAD
            monitor_interval = 1
            monitor_interval_nothing_running = 1
            timeout = 1
            [GOOD]
            smartplug = 127.0.0.1:{good.port}
            driver = inplug
            threshold_running_mw = 4000
            minsamples = 1
            [BAD]
            smartplug = 127.0.0.1:{bad.port}
            driver = inplug
            threshold_running_mw = 4000
            minsamples = 1
            """,
        )
        monitor = Monitor(configuration.load(str(ini)))
        try:
            result = await monitor.poll_pass()
        finally:
            await monitor.close()
            await good.close()
            await bad.close()
        assert result.failed == ["BAD"]
        assert [(name, event.kind.value) for name, event in result.events] == [("GOOD", "RUNNING")]
        statuses = {s.name: s for s in monitor.statuses()}
        assert statuses["BAD"].error is not None and "does not decrypt" in statuses["BAD"].error

    asyncio.run(main())


def test_a_kasa_only_daemon_does_not_load_cryptography() -> None:
    code = (
        "import sys, asyncio\n"
        "from whitegoodsd import drivers, cli\n"
        "drivers.registry(); cli.build_parser()\n"
        "from whitegoodsd.drivers.inplug import InplugPlug\n"
        "assert 'cryptography' not in sys.modules, 'loaded at import'\n"
        "from whitegoodsd.protocols import broadlink\n"
        "broadlink.encrypt(broadlink.INITIAL_KEY, b'x')\n"
        "assert 'cryptography' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
