"""``whitegoodsd discover``, unicast on loopback only: never a broadcast in tests.

Peers: the emulated INPLUG, a Kasa UDP responder built on the codec, and
tplink-smarthome-simulator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from whitegoodsd import cli
from whitegoodsd import config as configuration
from whitegoodsd.discover import render_text, section_names
from whitegoodsd.discovery import FoundPlug
from whitegoodsd.discovery.kasa import parse_kasa
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import InplugServer, start_inplug
from whitegoodsd.protocols import broadlink, kasa

from conftest import KasaSimulator, LoopThread, write_ini

HS110_SYSINFO: dict[str, Any] = {
    "alias": "Washing machine",
    "model": "HS110(EU)",
    "hw_ver": "4.0",
    "mac": "50:C7:BF:12:34:56",
    "type": "IOT.SMARTPLUGSWITCH",
    "feature": "TIM:ENE",
}


class KasaResponder(asyncio.DatagramProtocol):
    """Answers Kasa discovery datagrams with a fixed sysinfo, through the codec."""

    def __init__(self, sysinfo: dict[str, Any]) -> None:
        self.sysinfo = sysinfo
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if kasa.loads(kasa.decrypt(data)) == kasa.GET_SYSINFO:
            assert self.transport is not None
            reply = {"system": {"get_sysinfo": {**self.sysinfo, "err_code": 0}}}
            self.transport.sendto(kasa.datagram(reply), addr)


@pytest.fixture
def kasa_responder(loop_thread: LoopThread) -> Iterator[Callable[[dict[str, Any]], int]]:
    transports: list[asyncio.BaseTransport] = []

    def start(sysinfo: dict[str, Any]) -> int:
        async def serve() -> int:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: KasaResponder(sysinfo), local_addr=("127.0.0.1", 0)
            )
            transports.append(transport)
            port: int = transport.get_extra_info("sockname")[1]
            return port

        return loop_thread.run(serve())

    yield start
    for transport in transports:
        loop_thread.loop.call_soon_threadsafe(transport.close)


@pytest.fixture
def inplug(loop_thread: LoopThread) -> Iterator[Callable[..., InplugServer]]:
    started: list[InplugServer] = []

    def start(**options: Any) -> InplugServer:
        server = loop_thread.run(start_inplug("127.0.0.1", 0, SettablePower(), **options))
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


def discover(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["discover", "--timeout", "5", *args])
    out, err = capsys.readouterr()
    return status, out, err


def paste_into_ini(tmp_path: Path, text: str) -> configuration.Config:
    """Load the printed sections behind a [whitegoodsd] section, as a user would."""
    appliances = next(line.split("=", 1)[1] for line in text.splitlines() if "appliances =" in line)
    ini = write_ini(tmp_path / "pasted.ini", f"[whitegoodsd]\nappliances = {appliances}\n")
    with ini.open("a") as f:
        f.write(text)
    return configuration.load(str(ini))


def test_finds_the_emulated_inplug(
    inplug: Callable[..., InplugServer], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = inplug(name="Dish washer")
    status, out, _ = discover(capsys, "--driver", "inplug", "--target", server.address)
    assert status == 0
    assert (
        f"; 127.0.0.1:{server.port}  inplug  NEO PRO (INPLUG), type 0x2716  "
        '"Dish washer"  34:ea:34:00:00:01  meters power\n' in out
    )
    config = paste_into_ini(tmp_path, out)
    (appliance,) = config.appliances
    assert (appliance.name, appliance.plug.driver) == ("DISH_WASHER", "inplug")
    assert (appliance.plug.host, appliance.plug.port) == ("127.0.0.1", server.port)


def test_json_for_a_locked_inplug(
    inplug: Callable[..., InplugServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = inplug(locked=True, name="")
    status, out, _ = discover(capsys, "--target", server.address, "--driver", "inplug", "--json")
    assert status == 0
    (record,) = json.loads(out)
    assert record["family"] == "inplug" and record["locked"] is True
    assert record["meters_power"] is True and record["mac"] == "34:ea:34:00:00:01"
    assert record["section"] == "INPLUG_000001"  # no name: the end of the MAC
    assert record["smartplug"] == f"127.0.0.1:{server.port}"
    assert "[INPLUG_000001]\n" in record["ini"] and "driver = inplug\n" in record["ini"]


def test_a_neo_is_listed_without_a_section(
    inplug: Callable[..., InplugServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = inplug(devtype=broadlink.NEO, name="Lamp")
    status, out, _ = discover(capsys, "--target", server.address, "--driver", "inplug")
    assert status == 0
    assert "no power meter" in out and "cannot measure power" in out
    assert "[" not in out and "appliances" not in out


def test_finds_a_kasa_plug(
    kasa_responder: Callable[[dict[str, Any]], int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    port = kasa_responder(HS110_SYSINFO)
    status, out, _ = discover(capsys, "--driver", "kasa", "--target", f"127.0.0.1:{port}")
    assert status == 0
    assert (
        f'; 127.0.0.1:{port}  kasa  HS110(EU) hw 4.0  "Washing machine"  50:c7:bf:12:34:56  '
        "meters power\n" in out
    )
    (appliance,) = paste_into_ini(tmp_path, out).appliances
    assert (appliance.name, appliance.plug.driver, appliance.plug.port) == (
        "WASHING_MACHINE",
        "kasa",
        port,
    )


def test_all_families_on_one_target(
    inplug: Callable[..., InplugServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """The INPLUG ignores the Kasa probe; only it is found, after the timeout."""
    server = inplug()
    status, out, _ = discover(capsys, "--target", server.address, "--json", "--timeout", "0.5")
    assert status == 0
    assert [r["family"] for r in json.loads(out)] == ["inplug"]


def test_finds_tplink_smarthome_simulator(
    kasa_simulator: Callable[[str], KasaSimulator], capsys: pytest.CaptureFixture[str]
) -> None:
    for model in ("hs110", "hs100"):
        sim = kasa_simulator(model)
        status, out, _ = discover(
            capsys, "--driver", "kasa", "--target", f"127.0.0.1:{sim.port}", "--json"
        )
        assert status == 0
        (record,) = json.loads(out)
        assert record["name"] == f"Test {model}" and record["mac"] == "50:c7:bf:00:00:01"
        assert record["model"].startswith(model.upper())
        # The HS100 has no energy meter: no section for it.
        assert record["meters_power"] is (model == "hs110")
        assert ("[TEST_" in record["ini"]) is (model == "hs110")


def test_nothing_answering_is_exit_1(
    inplug: Callable[..., InplugServer],
    loop_thread: LoopThread,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = inplug()
    address = server.address
    loop_thread.run(server.close())
    status, out, err = discover(capsys, "--target", address, "--timeout", "0.3")
    assert status == 1 and out == ""
    assert err == f"No plug answered on {address} within 0.3 s.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "127.0.0.1:99999"], "--target: expected a port from 1 to 65535"),
        (
            ["--target", "127.0.0.1", "--timeout", "0"],
            "--timeout must be above 0 and at most 3600 s",
        ),
    ],
)
def test_usage_errors_are_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = discover(capsys, *args)
    assert status == 2 and message in err


def test_section_names_are_distinct_ini_names() -> None:
    def plug(name: str, mac: str = "aa:bb:cc:dd:ee:ff") -> FoundPlug:
        return FoundPlug("kasa", "10.0.0.1", 9999, "HS110", name, mac, True)

    plugs = [plug("Washer"), plug("washer!"), plug(""), plug("Wäsche trockner  2")]
    assert section_names(plugs) == ["WASHER", "WASHER_2", "KASA_DDEEFF", "W_SCHE_TROCKNER_2"]
    assert plugs[0].smartplug == "10.0.0.1"  # the default port is left out
    assert "appliances = WASHER, WASHER_2, KASA_DDEEFF, W_SCHE_TROCKNER_2" in render_text(plugs)


def test_kasa_replies_that_are_not_sysinfo_are_refused() -> None:
    from whitegoodsd.errors import ProtocolError

    for reply in (b"", kasa.datagram([1]), kasa.datagram({"system": {"get_sysinfo": 3}})):
        with pytest.raises(ProtocolError):
            parse_kasa(reply, ("10.0.0.1", 9999))
    strip = {**HS110_SYSINFO, "model": "HS300(EU)", "children": [{}, {}, {}]}
    found = parse_kasa(kasa.datagram({"system": {"get_sysinfo": strip}}), ("10.0.0.1", 9999))
    assert found.model == "HS300(EU) hw 4.0, 3 outlets"
