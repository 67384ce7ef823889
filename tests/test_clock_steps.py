"""Clock steps: intervals come from the monotonic clock, whatever NTP or ``date -s`` does.

In process the monitor gets a wall clock and a monotonic clock of the
test's own and the wall clock is stepped an hour either way in the middle of
a soak, a short burst and a cycle.  As a process the daemon runs under
libfaketime (Debian ``faketime``), its wall clock stepped through the
timestamp file while the monotonic clock goes on untouched.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cycles_end_to_end import load_config

from whitegoodsd import state
from whitegoodsd.cycle import OpenCycle
from whitegoodsd.emulator import SettablePower
from whitegoodsd.monitor import Monitor

from conftest import WAIT, Daemon, FakeClock, SyslogListener, need, write_ini
from kasa_plug import KasaTestPlug

LIBFAKETIME = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/faketime/libfaketime.so.1"),
)
HOUR = 3600.0
RAN = re.compile(r"is FINISHED\. Ran (\d+):(\d\d):(\d\d)")


class Clocks:
    """A wall clock and a monotonic clock; the test steps the wall clock alone."""

    def __init__(self) -> None:
        self.wall = FakeClock()
        self.monotonic = FakeClock(1000.0)

    def advance(self, seconds: float) -> None:
        self.wall.now += seconds
        self.monotonic.now += seconds


async def passes(monitor: Monitor, clocks: Clocks, count: int, interval: float = 60) -> None:
    for _ in range(count):
        await monitor.poll_pass()
        clocks.advance(interval)


def monitor_for(
    tmp_path: Path, syslog: SyslogListener, plug: KasaTestPlug, appliance: str
) -> tuple[Monitor, Clocks]:
    config = load_config(
        tmp_path, syslog, {"WASHER": plug.port}, interval=60, idle_interval=60, appliance=appliance
    )
    clocks = Clocks()
    return Monitor(config, wallclock=clocks.wall, monotonic=clocks.monotonic), clocks


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["+1h", "-1h"])
def test_a_step_during_the_soak_neither_finishes_nor_delays_the_cycle(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug], step: float
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    monitor, clocks = monitor_for(tmp_path, syslog, plug, "finish_delay = 600")

    async def run() -> None:
        await passes(monitor, clocks, 3)
        power.set(1000)  # the soak: low, for less than finish_delay
        await passes(monitor, clocks, 3)
        clocks.wall.now += step
        await passes(monitor, clocks, 3)
        assert not any("FINISHED" in t for t in syslog.texts())
        await passes(monitor, clocks, 10)  # 600 s of low on the monotonic clock

    asyncio.run(run())
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    (finished,) = [t for t in texts if "FINISHED" in t]
    match = RAN.search(finished)
    assert match is not None and match.groups() == ("0", "03", "00"), finished


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["+1h", "-1h"])
def test_a_step_during_a_short_burst_does_not_start_a_cycle(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug], step: float
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    monitor, clocks = monitor_for(tmp_path, syslog, plug, "start_delay = 600")

    async def run() -> None:
        await passes(monitor, clocks, 2)
        clocks.wall.now += step
        await passes(monitor, clocks, 2)
        power.set(1000)
        await passes(monitor, clocks, 3)

    asyncio.run(run())
    assert not any(" is " in t for t in syslog.texts())


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["+1h", "-1h"])
def test_a_step_changes_neither_duration_nor_integrated_energy(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug], step: float
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "no-total"))  # energy from the samples
    monitor, clocks = monitor_for(tmp_path, syslog, plug, "")

    async def run() -> None:
        await passes(monitor, clocks, 3)  # samples at 0, 60, 120 s
        clocks.wall.now += step
        await passes(monitor, clocks, 2)  # 180, 240 s
        power.set(0)
        await passes(monitor, clocks, 3)  # 300 s: the first low sample ends the cycle

    asyncio.run(run())
    (finished,) = [t for t in syslog.texts() if "FINISHED" in t]
    # 2,000 W for 240 s, then a ramp to 0 W over 60 s: 0.15 kWh in 5 minutes.
    assert finished == "WASHER is FINISHED. Ran 0:05:00, used 0.150 kWh, peak 2,000 W."
    (status,) = monitor.statuses()
    assert status.last_cycle is not None
    assert status.last_cycle.started == pytest.approx(clocks.wall.now - 8 * 60)


# -- the daemon under libfaketime ---------------------------------------------


class SteppedDaemon:
    """The daemon with its wall clock offset by the contents of a file."""

    def __init__(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemon: Callable[..., Daemon]
    ) -> None:
        need(LIBFAKETIME.exists(), "libfaketime not installed (apt-get install faketime)")
        self.offset = tmp_path / "faketime"
        self.offset.write_text("+0\n")
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.start_daemon = daemon

    def start(self, plug: KasaTestPlug, syslog: SyslogListener, appliance: str) -> Daemon:
        ini = write_ini(
            self.tmp_path / "whitegoodsd.ini",
            f"""
            [whitegoodsd]
            appliances = WASHER
            monitor_interval = 0.1
            monitor_interval_nothing_running = 0.1
            syslog_address = {syslog.path}
            [WASHER]
            smartplug = 127.0.0.1:{plug.port}
            threshold_running_mw = 4000
            minsamples = 1
            {appliance}
            """,
        )
        with self.monkeypatch.context() as env:
            env.setenv("LD_PRELOAD", str(LIBFAKETIME))
            env.setenv("FAKETIME_TIMESTAMP_FILE", str(self.offset))
            env.setenv("FAKETIME_NO_CACHE", "1")
            env.setenv("DONT_FAKE_MONOTONIC", "1")
            return self.start_daemon("-f", "-c", str(ini))

    def step(self, offset: str) -> None:
        self.offset.write_text(f"{offset}\n")


def polls(plug: KasaTestPlug, count: int) -> None:
    """Wait until the plug has answered ``count`` more polls."""
    until = plug.served + count
    deadline = time.monotonic() + WAIT
    while plug.served < until:
        assert time.monotonic() < deadline, f"the plug was not polled {count} times"
        time.sleep(0.02)


@pytest.fixture
def stepped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemon: Callable[..., Daemon]
) -> SteppedDaemon:
    return SteppedDaemon(tmp_path, monkeypatch, daemon)


@pytest.mark.parametrize("offset", ["+1h", "-1h"])
def test_the_daemon_rides_out_a_step_in_the_soak(
    syslog: SyslogListener, plugs: list[KasaTestPlug], stepped: SteppedDaemon, offset: str
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    process = stepped.start(plug, syslog, "finish_delay = 600")
    syslog.wait_text("WASHER is RUNNING.")
    power.set(1000)
    polls(plug, 3)
    stepped.step(offset)
    polls(plug, 10)
    power.set(2_000_000)
    polls(plug, 5)
    assert process.stop() == 0
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert not any("FINISHED" in t for t in texts)


@pytest.mark.parametrize("offset", ["+1h", "-1h"])
def test_the_daemon_ignores_a_step_in_a_short_burst(
    syslog: SyslogListener, plugs: list[KasaTestPlug], stepped: SteppedDaemon, offset: str
) -> None:
    power = SettablePower(1000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    process = stepped.start(plug, syslog, "start_delay = 600")
    syslog.wait_text("Starting.")
    power.set(2_000_000)
    polls(plug, 3)
    stepped.step(offset)
    polls(plug, 5)
    power.set(1000)
    polls(plug, 3)
    assert process.stop() == 0
    assert not any(" is " in t for t in syslog.texts())


@pytest.mark.parametrize("offset", ["+1h", "-1h"])
def test_the_daemon_times_a_cycle_across_a_step(
    syslog: SyslogListener, plugs: list[KasaTestPlug], stepped: SteppedDaemon, offset: str
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    process = stepped.start(plug, syslog, "")
    running = syslog.wait_text("WASHER is RUNNING.")
    polls(plug, 8)
    stepped.step(offset)
    polls(plug, 8)  # 15 intervals of 0.1 s at least since RUNNING
    power.set(1000)
    finished = syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
    assert process.stop() == 0
    match = RAN.search(finished.text)
    assert match is not None, finished.text
    hours, minutes, seconds = (int(g) for g in match.groups())
    assert (hours, minutes) == (0, 0) and seconds >= 1, finished.text
    # The timestamps people read follow the wall clock, stepped.
    assert running.raw[5:20] != finished.raw[5:20]


# -- a restart: the state file between two runs -------------------------------

OPEN = OpenCycle.begin(2_000_000, 5000.0, None).add(2_000_000, 5600.0, None, low=False)
SAVED = {"WASHER": state.ApplianceState("10.0.0.1:9999", True, OPEN, 0, None)}


@pytest.mark.parametrize(
    ("wall_moved", "boot", "gap"),
    [
        pytest.param(120.0, "same", 120.0, id="same-boot: exactly the time between"),
        pytest.param(HOUR + 120, "same", 120.0, id="same-boot, clock stepped +1h"),
        pytest.param(-HOUR + 120, "same", 120.0, id="same-boot, clock stepped -1h"),
        pytest.param(120.0, "other", 120.0, id="reboot"),
        pytest.param(-HOUR, "other", 0.0, id="reboot, clock set back: nothing"),
        pytest.param(
            HOUR, "other", state.RESTART_GAP_LIMIT, id="reboot, clock set forward: bounded"
        ),
    ],
)
def test_a_restart_adds_no_negative_or_hour_long_gap(
    wall_moved: float, boot: str, gap: float
) -> None:
    # Saved by a run whose monotonic clock read 5600 at wall clock 1,763,000,000.
    origin = state.Clocks(1_763_000_000.0, 5600.0, "boot-1")
    text = state.dumps(SAVED, (), origin)
    real = 120.0  # what really passed; on the same boot the monotonic clock knows it
    now = state.Clocks(
        origin.wall + wall_moved,
        origin.monotonic + real if boot == "same" else 30.0,
        "boot-1" if boot == "same" else "boot-2",
    )
    cycle = state.loads(text, None, now).appliances["WASHER"].cycle
    assert cycle is not None
    assert now.monotonic - cycle.last_at == pytest.approx(gap)
    assert cycle.last_at - cycle.started == pytest.approx(600.0)  # the cycle itself unchanged


def test_a_file_without_clocks_is_taken_as_after_a_reboot() -> None:
    text = state.dumps(SAVED)  # wall-clock times, as an older daemon wrote them
    now = state.Clocks(5600.0 + 2 * HOUR, 10.0, "boot-1")
    cycle = state.loads(text, None, now).appliances["WASHER"].cycle
    assert cycle is not None
    assert now.monotonic - cycle.last_at == pytest.approx(state.RESTART_GAP_LIMIT)
