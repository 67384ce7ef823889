"""``whitegoodsd emulate --driver tapo|kasa-klap``: the plug it serves and the INI it prints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import monitor
from whitegoodsd.drivers._klap import TPAP_REFUSAL
from whitegoodsd.errors import PlugError

from conftest import ROOT, WAIT


def emulate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "emulate", "--listen", "127.0.0.1:0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )


def read_ini(process: subprocess.Popen[str], tmp_path: Path) -> configuration.Config:
    """The printed INI, up to the password line of its one plug, loaded."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("password ="):
            break
    text = "".join(lines).replace(
        "[whitegoodsd]\n", f"[whitegoodsd]\nsyslog_address = {tmp_path}/x\n"
    )
    ini = tmp_path / "plug.ini"
    ini.write_text(text)
    ini.chmod(0o600)
    config = configuration.load(str(ini))
    assert config.warnings == ()
    return config


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    return err


@pytest.mark.parametrize(
    ("driver", "version"), [("kasa-klap", "1"), ("kasa-klap", "2"), ("tapo", "2")]
)
def test_the_printed_ini_reads_the_served_plug(driver: str, version: str, tmp_path: Path) -> None:
    process = emulate("--driver", driver, "--klap", version, "--watts", "42.5",
                      "--username", "me@example.com", "--password", "pass word")  # fmt: skip
    try:
        config = read_ini(process, tmp_path)
        (appliance,) = config.appliances
        options = dict(appliance.plug.options)
        assert options["username"] == "me@example.com" and options["password"] == "pass word"
        assert appliance.plug.driver == ("tapo" if driver == "tapo" else "kasa")
        if driver == "kasa-klap":
            assert options["protocol"] == "klap"
        driver_object = monitor.make_driver(appliance, 5)
        assert asyncio.run(driver_object.read()).power_mw == 42_500
        notes = driver_object.notes()
        assert notes == [f"KLAP v{version} session with the configured credentials"]
    finally:
        stop(process)


def test_python_kasa_reads_a_kasa_klap_plug_served_by_the_command(tmp_path: Path) -> None:
    from kasa import Credentials, Device, DeviceConfig, DeviceConnectionParameters, Module

    process = emulate("--driver", "kasa-klap", "--klap", "2", "--watts", "61.753")
    try:
        (appliance,) = read_ini(process, tmp_path).appliances
        port = appliance.plug.port

        async def power() -> float | None:
            device = await Device.connect(config=DeviceConfig(
                host="127.0.0.1", port_override=port,
                credentials=Credentials("user@example.com", "secret"),
                connection_type=DeviceConnectionParameters.from_values(
                    "IOT.SMARTPLUGSWITCH", "KLAP", login_version=2),
            ))  # fmt: skip
            try:
                return device.modules[Module.Energy].current_consumption
            finally:
                await device.disconnect()

        assert asyncio.run(power()) == pytest.approx(61.753)
    finally:
        stop(process)


def test_tpap_mode_is_refused_with_its_line(tmp_path: Path) -> None:
    process = emulate("--driver", "tapo", "--tpap")
    try:
        (appliance,) = read_ini(process, tmp_path).appliances
        with pytest.raises(PlugError) as caught:
            asyncio.run(monitor.make_driver(appliance, 5).read())
        assert str(caught.value) == TPAP_REFUSAL
    finally:
        stop(process)
