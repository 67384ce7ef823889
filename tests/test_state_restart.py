"""A restart in the middle of a cycle: one RUNNING, one FINISHED, the whole cycle's figures.

In process, on a fake clock, a restarted monitor is compared with one that
ran straight through; as processes, the daemon is killed (SIGTERM and
``kill -9``) while the washer runs and started again on the same state file.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cycles_end_to_end import FINISHED, finished_lines, load_config, replay

from whitegoodsd.emulator import SettablePower
from whitegoodsd.monitor import Monitor

from conftest import Daemon, FakeClock, SyslogListener, write_ini
from kasa_plug import WASHER, KasaTestPlug, ProfilePower


def straight_through(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> tuple[str, float]:
    """The FINISHED line of a washer cycle with no restart, and when it came."""
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(WASHER, clock, start=clock.now + 600)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    (tmp_path / "straight").mkdir()
    config = load_config(
        tmp_path / "straight", syslog, {"WASHER": plug.port}, appliance="finish_delay = 600"
    )
    asyncio.run(replay(Monitor(config, wallclock=clock), clock, profile.end + 3600))
    (line,) = finished_lines(syslog)
    syslog.messages.clear()
    return line.group(0), clock.now


@pytest.mark.parametrize(
    ("restart_at", "down_for"),
    [
        pytest.param(1, 0, id="in-the-start-debounce"),
        pytest.param(900, 0, id="while-heating"),
        pytest.param(2700, 300, id="in-the-soak-pause-down-5-minutes"),
        pytest.param(5525 + 200, 120, id="while-confirming-the-end"),
    ],
)
def test_a_restarted_monitor_finishes_the_same_cycle(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    restart_at: float,
    down_for: float,
) -> None:
    expected, _ = straight_through(tmp_path, syslog, plugs)

    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(WASHER, clock, start=clock.now + 600)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    state_file = tmp_path / "state.json"
    config = load_config(
        tmp_path,
        syslog,
        {"WASHER": plug.port},
        appliance="finish_delay = 600",
        main=f"state_file = {state_file}",
    )
    first = Monitor(config, wallclock=clock)
    asyncio.run(replay(first, clock, profile.start + restart_at))
    saved = json.loads(state_file.read_text())["appliances"]["WASHER"]
    assert saved["cycle"] is not None and saved["running"] is (restart_at > 1)
    # Abandoned without a word, as kill -9 would leave it.
    clock.now += down_for
    second = Monitor(config, wallclock=clock)
    asyncio.run(replay(second, clock, profile.end + 3600))

    texts = syslog.texts()
    if saved["running"]:
        assert "Resuming WASHER: running, as the state file says." in texts
    assert texts.count("WASHER is RUNNING.") == 1
    (line,) = finished_lines(syslog)
    assert line.group(0) == expected
    (status,) = second.statuses()
    assert status.cycles == 1 and not status.running

    # And a third start, after the cycle, remembers it and says nothing.
    syslog.messages.clear()
    third = Monitor(config, wallclock=clock)
    asyncio.run(replay(third, clock, clock.now + 1800))
    (status,) = third.statuses()
    assert status.cycles == 1 and status.last_cycle is not None
    assert not any(" is " in t for t in syslog.texts())


def test_a_bad_state_file_is_a_warning_and_the_cycle_starts_afresh(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(WASHER, clock, start=clock.now)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    state_file = tmp_path / "state.json"
    state_file.write_text('{"version": 1, "appliances": {"WASHER": {"running": "maybe"}}}')
    config = load_config(tmp_path, syslog, {"WASHER": plug.port}, main=f"state_file = {state_file}")
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, profile.start + 600))
    syslog.drain()
    warning = next(m for m in syslog.messages if m.text.startswith("State file"))
    assert warning.severity == 4
    assert warning.text == (
        f"State file {state_file} is unreadable ('running' is not true or false); ignored."
    )
    assert syslog.texts().count("WASHER is RUNNING.") == 1
    assert json.loads(state_file.read_text())["appliances"]["WASHER"]["running"] is True


def test_an_unwritable_state_file_is_one_error_and_polling_goes_on(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(WASHER, clock, start=clock.now)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    state_file = tmp_path / "missing-directory" / "state.json"
    config = load_config(tmp_path, syslog, {"WASHER": plug.port}, main=f"state_file = {state_file}")
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, profile.start + 1200))
    texts = syslog.texts()
    errors = [t for t in texts if t.startswith("Cannot write the state file")]
    assert errors == [f"Cannot write the state file {state_file}: No such file or directory"]
    assert texts.count("WASHER is RUNNING.") == 1
    (tmp_path / "missing-directory").mkdir()
    asyncio.run(replay(monitor, clock, clock.now + 120))
    assert f"State file {state_file} written again." in syslog.texts()
    assert json.loads(state_file.read_text())["appliances"]["WASHER"]["running"] is True


# -- the daemon as a process, killed mid-cycle --------------------------------


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_daemon_killed_mid_cycle_says_running_and_finished_once(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    daemon: Callable[..., Daemon],
    how: signal.Signals,
) -> None:
    power = SettablePower(500)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    state_file = tmp_path / "state.json"
    ini = write_ini(
        tmp_path / "whitegoodsd.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.1
        monitor_interval_nothing_running = 0.1
        syslog_address = {syslog.path}
        log_debug = 1
        state_file = {state_file}
        [WASHER]
        smartplug = 127.0.0.1:{plug.port}
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )

    def polled(state: str, pid: int) -> Callable[..., bool]:
        return lambda m: (
            m.tag == f"whitegoodsd[{pid}]:"
            and m.text == (f"WASHER polling. Current state: {state}.")
        )

    first = daemon("-f", "-c", str(ini))
    syslog.wait_for(polled("Stopped", first.process.pid))
    power.set(2_150_000)
    syslog.wait_text("WASHER is RUNNING.")
    running_seen = time.monotonic()
    # A pass that starts Running means the pass that said RUNNING, and its
    # save of the state file, are over.
    syslog.wait_for(polled("Running", first.process.pid), new=True)
    first.process.send_signal(how)
    first.process.wait(30)
    assert json.loads(state_file.read_text())["appliances"]["WASHER"]["running"] is True

    second = daemon("-f", "-c", str(ini))
    syslog.wait_text("Resuming WASHER: running, as the state file says.")
    # Let the cycle run on for a while under the second daemon.
    while time.monotonic() - running_seen < 2.5:
        syslog.wait_for(polled("Running", second.process.pid), new=True)
    power.set(1000)
    low_set = time.monotonic()
    finished = syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
    assert finished.tag == f"whitegoodsd[{second.process.pid}]:"
    seen = len(syslog.messages)
    for _ in range(3):
        syslog.wait_for(polled("Stopped", second.process.pid), new=True)
    assert len(syslog.messages) > seen
    assert second.stop() == 0

    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert sum(t.startswith("WASHER is FINISHED.") for t in texts) == 1
    # The figures cover the whole cycle, both daemons' parts of it.
    match = FINISHED.match(finished.text)
    assert match is not None, finished.text
    shown = int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"])
    assert shown >= int(low_set - running_seen)
    assert match["w"] == "2,150"
    assert json.loads(state_file.read_text())["appliances"]["WASHER"] == {
        **json.loads(state_file.read_text())["appliances"]["WASHER"],
        "running": False,
        "cycle": None,
        "cycles": 1,
    }
