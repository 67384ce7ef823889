"""Resource limits: polls in flight stay well below the open-file limit.

Each poll holds one socket.  The monitor (and ``--once``) open at most
``max_in_flight()`` at a time, so a config with more plugs than file
descriptors still completes every pass instead of failing with EMFILE.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import monitor as monitor_module
from whitegoodsd.conversation import Conversation
from whitegoodsd.drivers.base import Driver, Reading
from whitegoodsd.emulator import SettablePower
from whitegoodsd.engine import max_in_flight
from whitegoodsd.monitor import Monitor

from conftest import ROOT, SyslogListener, write_ini
from hostile import Gauge, HostilePlug, Mode, PlugThread, plug_thread
from kit import plugs_ini


def ini(plugs: list[HostilePlug], timeout: float = 2.0, **extra: str) -> str:
    return plugs_ini(
        {f"P{i}": plug.address for i, plug in enumerate(plugs)},
        interval=0.05,
        main={"timeout": timeout, **extra},
    )


@pytest.mark.parametrize("soft", [66, 100, 256, 1024, 4096, 20000, 1 << 20])
def test_the_cap_is_well_below_the_open_file_limit(
    soft: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, resource.RLIM_INFINITY))
    cap = max_in_flight()
    assert 1 <= cap <= 512
    # Room for both ends of a socket pair (a local emulator) and the daemon's own files.
    assert 2 * cap + 64 <= soft


def test_an_unlimited_soft_limit_still_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    monkeypatch.setattr(resource, "getrlimit", lambda _: limit)
    assert max_in_flight() == 512


def test_a_tiny_limit_still_allows_one_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (16, 16))
    assert max_in_flight() == 1


async def passes(
    plugs: list[HostilePlug], count: int, *, in_flight: int | None = None, poll_timeout: float = 2.0
) -> list[list[str]]:
    """Run ``count`` passes over ``plugs``; the failed names of each."""
    for plug in plugs:
        await plug.start()
    config = configuration.parse(ini(plugs, poll_timeout), "limits.ini")
    monitor = Monitor(config, in_flight=in_flight)
    try:
        return [(await monitor.poll_pass()).failed for _ in range(count)]
    finally:
        await monitor.close()
        for plug in plugs:
            await plug.close()


def overlapping_plugs(count: int, gauge: Gauge, delay: float = 0.05) -> list[HostilePlug]:
    # Each reply is held a little, so that polls left uncapped would overlap.
    return [
        HostilePlug(Mode.HEALTHY, power=SettablePower(5000), delay=delay, gauge=gauge)
        for _ in range(count)
    ]


def test_more_plugs_than_the_cap_complete_every_pass() -> None:
    gauge = Gauge()
    plugs = overlapping_plugs(20, gauge)
    assert asyncio.run(passes(plugs, 3, in_flight=3)) == [[], [], []]
    assert [p.requests for p in plugs] == [3] * 20
    assert gauge.most <= 3


def test_without_a_low_cap_the_same_polls_overlap() -> None:
    # The control for the test above: the gauge does see concurrency.
    gauge = Gauge()
    plugs = overlapping_plugs(20, gauge)
    assert asyncio.run(passes(plugs, 1)) == [[]]
    assert gauge.most > 3


def test_the_cap_comes_from_max_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor_module, "max_in_flight", lambda: 2)
    gauge = Gauge()
    plugs = overlapping_plugs(8, gauge)
    assert asyncio.run(passes(plugs, 1)) == [[]]
    assert gauge.most <= 2


def test_a_poll_waiting_for_a_slot_is_not_charged_for_the_wait() -> None:
    # Two slots, eight plugs each holding its reply 0.2 s: the pass takes
    # 0.8 s, longer than the 0.5 s timeout, and still no poll times out.
    gauge = Gauge()
    plugs = overlapping_plugs(8, gauge, delay=0.2)
    assert asyncio.run(passes(plugs, 1, in_flight=2, poll_timeout=0.5)) == [[]]
    assert gauge.most <= 2


class Crashing(Driver):
    """A driver with a bug: raises what no driver should."""

    NAME = "crashing"
    DEFAULT_PORT = 1

    def poll(self) -> Conversation[Reading]:
        raise KeyError("power_mw")


def test_a_drivers_bug_is_one_failed_poll_not_a_dead_loop() -> None:
    async def scenario() -> list[str]:
        plug = await HostilePlug(Mode.HEALTHY).start()
        monitor = Monitor(configuration.parse(ini([plug, plug]), "bug.ini"))
        monitor.appliances[0].driver = Crashing("127.0.0.1", 1, 1.0)
        result = await monitor.poll_pass()
        statuses = monitor.statuses()
        await monitor.close()
        await plug.close()
        assert statuses[0].error == "KeyError: 'power_mw'"
        assert statuses[1].up
        return result.failed

    assert asyncio.run(scenario()) == ["P0"]


# -- a real process under a low RLIMIT_NOFILE -----------------------------------

SOFT = 256  # max_in_flight() = 96: fewer than the plugs, far fewer than the files
PLUGS = 300


def low_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, hard))


@pytest.fixture(scope="module")
def many_plugs() -> Iterator[PlugThread]:
    gauge = Gauge()  # one for all: counts every poll of every plug
    with plug_thread() as thread:
        for _ in range(PLUGS):
            thread.start(Mode.HEALTHY, power=SettablePower(5000), gauge=gauge)
        yield thread


def test_once_reads_more_plugs_than_file_descriptors(
    tmp_path: Path, many_plugs: PlugThread
) -> None:
    path = write_ini(tmp_path / "many.ini", ini(many_plugs.plugs))
    done = subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "--once", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=low_nofile,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == PLUGS
    assert all("5.000 W" in line for line in lines)


def test_the_daemon_polls_more_plugs_than_file_descriptors(
    tmp_path: Path,
    syslog: SyslogListener,
    many_plugs: PlugThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_ini(
        tmp_path / "many.ini",
        ini(many_plugs.plugs, syslog_address=str(syslog.path), unreachable_after="1"),
    )
    gauge = many_plugs.plugs[0].gauge
    before = [p.requests for p in many_plugs.plugs]
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    with open(tmp_path / "daemon.stderr", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "whitegoodsd", "-f", "-c", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=low_nofile,
        )
        try:
            # The fourth pass has begun: three whole passes are done.
            gauge.wait_accepted(gauge.accepted + 3 * PLUGS + 1)
            process.terminate()
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # Every plug answered every poll: no failure was logged (stderr has every line).
    lines = (tmp_path / "daemon.stderr").read_text().splitlines()
    assert not [line for line in lines if "Error" in line or "UNREACHABLE" in line], lines[:10]
    assert any(line.endswith("Exiting on signal.") for line in lines)
    polled = [p.requests - b for p, b in zip(many_plugs.plugs, before, strict=True)]
    assert min(polled) >= 3
