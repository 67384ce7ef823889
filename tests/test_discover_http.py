"""``whitegoodsd discover --target`` finds emulated Shelly and Tasmota plugs (loopback only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from whitegoodsd import cli
from whitegoodsd import config as configuration
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.httpserver import HttpServer
from whitegoodsd.emulator.shelly import start_shelly
from whitegoodsd.emulator.tasmota import start_tasmota
from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import tasmota

from conftest import LoopThread, write_ini


@pytest.fixture
def serve(loop_thread: LoopThread) -> Iterator[Callable[..., HttpServer]]:
    started: list[HttpServer] = []

    def start(starter: Any, **options: Any) -> HttpServer:
        server: HttpServer = loop_thread.run(starter("127.0.0.1", 0, SettablePower(), **options))
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


def discover(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    status = cli.main(["discover", "--timeout", "5", "--json", *args])
    out, _ = capsys.readouterr()
    return status, json.loads(out)


@pytest.mark.parametrize("gen", [1, 2])
def test_finds_a_shelly_of_either_generation(
    gen: int, serve: Callable[..., HttpServer], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    server = serve(start_shelly, gen=gen, alias="Washer", password="pw")
    status, records = discover(capsys, "--driver", "shelly", "--target", f"127.0.0.1:{server.port}")
    assert status == 0
    (record,) = records
    model = "SHPLG-S (Gen1)" if gen == 1 else "SNPL-00112EU (Gen2)"
    assert (record["family"], record["model"], record["meters_power"]) == ("shelly", model, True)
    assert record["mac"] == ("c4:5b:be:a1:00:00" if gen == 1 else "80:64:6f:a1:00:00")
    # The section, pasted with its password filled in, is a working configuration.
    assert "password = CHANGE-ME\n" in record["ini"]
    text = record["ini"].replace("CHANGE-ME", "pw")
    ini = write_ini(tmp_path / "w.ini", f"[whitegoodsd]\nappliances = {record['section']}\n")
    ini.write_text(ini.read_text() + text)
    (appliance,) = configuration.load(str(ini)).appliances
    assert appliance.plug.driver == "shelly" and appliance.plug.option("password") == "pw"


def test_finds_a_tasmota_plug(
    serve: Callable[..., HttpServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(start_tasmota, alias="Dryer")
    status, records = discover(
        capsys, "--driver", "tasmota", "--target", f"127.0.0.1:{server.port}"
    )
    assert status == 0
    (record,) = records
    assert record["model"] == "Tasmota 14.3.0(release-tasmota)"
    assert (record["name"], record["meters_power"], record["section"]) == ("Dryer", True, "DRYER")
    assert record["mac"] == "a4:cf:12:b2:00:00"


def test_a_tasmota_plug_with_a_password_is_listed_with_a_password_line(
    serve: Callable[..., HttpServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(start_tasmota, password="pw")
    status, records = discover(
        capsys, "--driver", "tasmota", "--target", f"127.0.0.1:{server.port}"
    )
    assert status == 0
    (record,) = records
    assert record["model"] == "Tasmota (web password set)"
    assert "password = CHANGE-ME\n" in record["ini"]


def test_other_http_servers_are_not_plugs(
    serve: Callable[..., HttpServer], capsys: pytest.CaptureFixture[str]
) -> None:
    # A Tasmota plug is not a Shelly, and a Shelly is not a Tasmota plug.
    shelly_server = serve(start_shelly, gen=2)
    tasmota_server = serve(start_tasmota)
    for family, port in (("tasmota", shelly_server.port), ("shelly", tasmota_server.port)):
        status = cli.main(
            ["discover", "--timeout", "1", "--driver", family, "--target", f"127.0.0.1:{port}"]
        )
        _, err = capsys.readouterr()
        assert status == 1 and "No plug answered" in err


def test_status_0_without_names_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not Tasmota"):
        tasmota.parse_device(b'{"Command":"Unknown"}')
