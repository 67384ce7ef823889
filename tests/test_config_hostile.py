"""Configuration files that must not mislead: odd line breaks, bad bytes, clashing names,
addresses a driver cannot use, relative paths, readings --once must not trust.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_daemon import ENV, launch, started, wait_exit

from whitegoodsd import config as configuration
from whitegoodsd import ini
from whitegoodsd.config import ConfigError
from whitegoodsd.emulator import SettablePower

from conftest import ROOT, WAIT, SyslogListener, write_ini
from kasa_plug import KasaTestPlug

GOOD = """\
[whitegoodsd]
appliances = WASHER
{extra}
[WASHER]
smartplug = {plug}
threshold_running_mw = 4000
minsamples = {minsamples}
driver = {driver}
"""


def problems(text: str | bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "w.ini"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as caught:
        configuration.load(str(path))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("separator", ["\f", "\v", "\x1c", "\x85", "\u2028", "\u2029"])
def test_only_lf_and_cr_end_a_line(tmp_path: Path, separator: str) -> None:
    text = GOOD.format(
        extra=f"; a comment{separator}with more", plug="10.0.0.1", minsamples="x", driver="kasa"
    )
    path = tmp_path / "w.ini"
    assert problems(text, tmp_path) == [
        f"{path}:7: [WASHER] minsamples: expected a whole number, got 'x'"
    ]
    # Inside a value it stays part of the value.
    parsed = ini.parse(f"[A]\nkey = one{separator}two\nnext = 3\n", "x")
    section = parsed.section("A")
    assert section is not None
    assert section.entries["key"].value == f"one{separator}two"
    assert section.entries["next"].line == 3


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_lf_crlf_and_cr_each_end_a_line(tmp_path: Path, newline: str) -> None:
    text = GOOD.format(extra="", plug="10.0.0.1", minsamples="x", driver="kasa")
    path = tmp_path / "w.ini"
    assert problems(text.replace("\n", newline), tmp_path) == [
        f"{path}:7: [WASHER] minsamples: expected a whole number, got 'x'"
    ]


def test_a_byte_that_is_not_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    text = GOOD.format(extra="; caf\xe9", plug="10.0.0.1", minsamples="2", driver="kasa")
    path = tmp_path / "w.ini"
    assert problems(text.encode("latin-1"), tmp_path) == [
        f"{path}:3: not UTF-8: byte 0xe9 at column 6"
    ]
    with_bom = b"\xef\xbb\xbf" + text.encode("latin-1").replace(b"\n", b"\r\n")
    assert problems(with_bom, tmp_path) == [f"{path}:3: not UTF-8: byte 0xe9 at column 6"]


def test_an_appliance_named_whitegoodsd_is_refused(tmp_path: Path) -> None:
    text = "[whitegoodsd]\nappliances = WASHER, WhiteGoodsD\nthreshold_running_mw = 1\n" + (
        "[WASHER]\nsmartplug = 10.0.0.1\nthreshold_running_mw = 4000\nminsamples = 2\n"
    )
    path = tmp_path / "w.ini"
    assert problems(text, tmp_path) == [
        f"{path}:2: [whitegoodsd] appliances: 'WhiteGoodsD' cannot name an appliance: "
        "[whitegoodsd] is the main section"
    ]


def test_an_ipv6_address_and_port_without_brackets_gets_a_hint(tmp_path: Path) -> None:
    text = GOOD.format(extra="", plug="::1:43603", minsamples="2", driver="kasa")
    path = tmp_path / "w.ini"
    assert problems(text, tmp_path) == [
        f"{path}:5: [WASHER] smartplug: '::1:43603' is not an IPv6 address; "
        "for a port, write [::1]:43603"
    ]
    # A bare address is still fine, and so is one in brackets with a port.
    for plug in ("fd00::10", "[::1]:43603", "::1"):
        path.write_text(GOOD.format(extra="", plug=plug, minsamples="2", driver="kasa"))
        (washer,) = configuration.load(str(path)).appliances
        assert ":" in washer.plug.host


def test_check_config_refuses_an_ipv6_inplug(tmp_path: Path) -> None:
    path = write_ini(
        tmp_path / "w.ini", GOOD.format(extra="", plug="[::1]:80", minsamples="2", driver="inplug")
    )
    checked = launch("--check-config", "-c", str(path), cwd=tmp_path)
    assert checked.returncode == 2
    assert checked.stderr.splitlines() == [
        f"{path}:5: [WASHER] smartplug: the inplug driver speaks IPv4 only "
        "(Broadlink plugs have no IPv6); '::1' is an IPv6 address"
    ]


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "w.ini"
    path.write_text(
        GOOD.format(
            extra="state_file = state.json\ntextfile = ../prom/w.prom\npidfile = run/w.pid",
            plug="10.0.0.1",
            minsamples="2",
            driver="kasa",
        )
    )
    elsewhere = os.getcwd()
    loaded = configuration.load(os.path.relpath(path, elsewhere))
    assert loaded.state_file == str(tmp_path / "etc" / "state.json")
    assert loaded.textfile == str(tmp_path / "prom" / "w.prom")
    assert loaded.pidfile == str(tmp_path / "etc" / "run" / "w.pid")


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        wait_exit(pid)


def test_relative_paths_stay_put_across_a_reload_in_daemon_mode(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug], daemons: list[int]
) -> None:
    plugs.append(plug := KasaTestPlug(SettablePower(500), "v2"))
    write_ini(
        tmp_path / "w.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.1
        monitor_interval_nothing_running = 0.1
        syslog_address = {syslog.path}
        textfile = w.prom
        state_file = w.state
        [WASHER]
        smartplug = 127.0.0.1:{plug.port}
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )
    pidfile = tmp_path / "w.pid"
    assert launch("-c", "w.ini", "-p", str(pidfile), cwd=tmp_path).returncode == 0
    pid = started(syslog, pidfile, daemons)
    textfile = tmp_path / "w.prom"
    wait_for(textfile.exists, "the textfile")
    os.kill(pid, signal.SIGHUP)
    syslog.wait_for(lambda m: m.text.startswith("Reloaded "))
    textfile.unlink()
    wait_for(textfile.exists, "the textfile after the reload")
    assert (tmp_path / "w.state").exists()
    assert not Path("/w.prom").exists() and not Path("/w.state").exists()
    os.kill(pid, signal.SIGTERM)
    wait_exit(pid)


def wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {WAIT} s"
        time.sleep(0.02)


def test_once_marks_an_implausible_reading_and_fails(
    tmp_path: Path, plugs: list[KasaTestPlug]
) -> None:
    plugs.append(spiking := KasaTestPlug(SettablePower(40_000_000_000), "v2"))
    plugs.append(fine := KasaTestPlug(SettablePower(500_000), "v2"))
    path = write_ini(
        tmp_path / "w.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER, DRYER
        [WASHER]
        smartplug = 127.0.0.1:{spiking.port}
        threshold_running_mw = 4000
        minsamples = 2
        [DRYER]
        smartplug = 127.0.0.1:{fine.port}
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )
    once = subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "--once", "-c", str(path)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert once.returncode == 1, once.stdout
    washer, dryer = once.stdout.splitlines()
    assert washer.startswith("WASHER") and washer.endswith(
        "implausible: above max_plausible_mw (4,000,000 mW), discarded"
    )
    assert "implausible" not in dryer
