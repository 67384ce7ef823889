"""``whitegoodsd emulate``: its options, the INI it prints, and many plugs at once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from whitegoodsd import cli
from whitegoodsd import config as configuration
from whitegoodsd.drivers.kasa import KasaPlug
from whitegoodsd.emulator.command import listen_address
from whitegoodsd.emulator.profiles import builtin, parse_csv

from conftest import ROOT, WAIT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:9999", ("0.0.0.0", 9999)),
        ("[::1]:0", ("::1", 0)),
        ("[::1]:10000", ("::1", 10000)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int | None]) -> None:
    assert listen_address(text) == expected


def test_print_profile_writes_csv_that_reads_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["emulate", "--profile", "dryer", "--print-profile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# dryer: 2:")
    assert parse_csv(out.splitlines()).watts == builtin("dryer").watts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "toaster"], "not a built-in profile"),
        (["--watts", "-3"], "--watts must be a number >= 0"),
        (["--listen", "127.0.0.1:99999"], "--listen"),
        (["--listen", "127.0.0.1:65535", "--count", "2"], "run past 65535"),
    ],
)
def test_bad_options_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["emulate", *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_csv_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("seconds,watts\n0,5\n10,five\n")
    assert cli.main(["emulate", "--profile", str(path)]) == 2
    assert f"{path}:3: expected two numbers" in capsys.readouterr().err


def emulate(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "emulate", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )


def read_ini(process: subprocess.Popen[str], sections: int) -> str:
    """The INI text printed on stdout, up to its last section's last line."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if (
            line.startswith("minsamples_finished")
            and sum(x.startswith("[") for x in lines) == sections + 1
        ):
            break
    return "".join(lines)


def test_many_plugs_with_an_ini_that_watches_them(tmp_path: Path) -> None:
    process = emulate("--count", "5", "--listen", "127.0.0.1:0", "--watts", "7.5", "--speed", "10")
    try:
        text = read_ini(process, 5)
        ini = tmp_path / "plugs.ini"
        ini.write_text(
            text.replace("[whitegoodsd]\n", f"[whitegoodsd]\nsyslog_address = {tmp_path}/x\n")
        )
        config = configuration.load(str(ini))
        assert [a.name for a in config.appliances] == [f"PLUG{i}" for i in range(1, 6)]
        assert config.monitor_interval == 6 and config.monitor_interval_nothing_running == 90
        ports = {a.plug.port for a in config.appliances}
        assert len(ports) == 5

        async def read_all() -> list[int]:
            readings = await asyncio.gather(
                *(KasaPlug(a.plug.host, a.plug.port, 5).read() for a in config.appliances)
            )
            return [r.power_mw for r in readings]

        assert asyncio.run(read_all()) == [7500] * 5
    finally:
        process.terminate()
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert "serving 5 plugs" in err


def test_a_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = emulate("--listen", f"127.0.0.1:{port}")
        out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 1
    assert out == ""
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
