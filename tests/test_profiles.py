"""Power profiles: CSV files, the built-in shapes, replay, and one cycle each.

The detection check here is pure: each built-in profile sampled on the
monitor's schedule (every monitor_interval while active, else every
monitor_interval_nothing_running), from many starting phases and with uneven
intervals, through the detector with the settings the demo uses (SETTINGS).
The same through the real daemon is in test_emulator_cycles.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import presets
from whitegoodsd.detector import Detector, EventKind, Sample, Settings, State
from whitegoodsd.emulator.profiles import (
    BUILTIN,
    SETTINGS,
    Profile,
    ProfileError,
    Replay,
    builtin,
    load_csv,
    parse_csv,
    resolve,
)

from conftest import ROOT, FakeClock

EXAMPLE = ROOT / "whitegoodsd.ini.example"


def stretches(profile: Profile, threshold_w: float, *, high: bool) -> list[tuple[float, float]]:
    """(start, end) of each run of rows at or above (high) or below the threshold."""
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for at, watts in zip(profile.seconds, profile.watts, strict=True):
        inside = (watts >= threshold_w) == high
        if inside and start is None:
            start = at
        elif not inside and start is not None:
            runs.append((start, at))
            start = None
    return runs


def main_end(profile: Profile, threshold_w: float) -> float:
    """When the cycle proper ends: the last stretch above the threshold lasting a minute."""
    runs = stretches(profile, threshold_w, high=True)
    end = max(end for start, end in runs if end - start >= 60)
    assert profile.programme_end(threshold_w) == end
    return end


# -- CSV ----------------------------------------------------------------------------


def test_csv_with_header_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "kettle.csv"
    path.write_text("# a kettle\nseconds,watts\n\n10, 2000\n130,2000.5\n190,0\n")
    profile = load_csv(path)
    assert profile.name == "kettle"
    assert profile.seconds == (0.0, 10.0, 130.0, 190.0)
    assert profile.watts == (2000.0, 2000.0, 2000.5, 0.0)  # before the first row: its power
    assert profile.duration == 190
    assert profile.watts_at(129.9) == 2000.0
    assert profile.watts_at(130) == 2000.5
    assert profile.watts_at(10_000) == 0.0
    assert profile.watts_at(-5) == 0.0  # at rest before the cycle
    assert profile.cycle_wh == pytest.approx((130 * 2000 + 60 * 2000.5) / 3600)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no 'seconds,watts' rows"),
        ("0,1\nten,5\n", "f.csv:2: expected two numbers"),
        ("0,1\n5\n", "f.csv:2: expected 'seconds,watts'"),
        ("0,1\n5,2,3\n", "f.csv:2: expected 'seconds,watts'"),
        ("0,1\n10,2\n5,3\n", "f.csv:3: seconds go backwards"),
        ("-1,5\n", "f.csv:1: seconds must not be negative"),
        ("0,-5\n", "f.csv:1: watts must not be negative"),
        ("0,nan\n", "f.csv:1: numbers must be finite"),
        ("0,inf\n", "f.csv:1: numbers must be finite"),
    ],
)
def test_bad_csv_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_csv(text.splitlines(), "f.csv")


def test_programme_end_skips_short_bursts() -> None:
    profile = parse_csv(["0,2000", "600,1", "700,200", "720,1", "960,0.5"])
    assert profile.programme_end(10) == 600
    assert profile.programme_end(10, at_least=20) == 720
    assert profile.programme_end(5000) == 0
    assert parse_csv(["0,1", "60,500", "200,500"]).programme_end(10) == 200


def test_builtin_round_trips_through_csv(tmp_path: Path) -> None:
    washer = builtin("washer")
    path = tmp_path / "washer.csv"
    path.write_text(washer.to_csv())
    again = load_csv(path)
    assert again.seconds == pytest.approx(washer.seconds)
    assert again.watts == washer.watts


def test_resolve_names_files_and_nonsense(tmp_path: Path) -> None:
    assert resolve("WASHER") is builtin("washer")
    path = tmp_path / "p.csv"
    path.write_text("0,5\n60,1\n")
    assert resolve(str(path)).watts == (5.0, 1.0)
    with pytest.raises(ProfileError, match="not a built-in profile"):
        resolve("toaster")


# -- the built-in shapes ----------------------------------------------------------


def test_builtins_are_the_same_every_time() -> None:
    for name, make in BUILTIN.items():
        assert make() == make() == builtin(name)


def test_washer_shape() -> None:
    washer = builtin("washer")
    assert 1900 <= washer.peak_watts <= 2400  # heating near 2 kW
    end = main_end(washer, 4)
    pauses = [b - a for a, b in stretches(washer, 4, high=False) if b <= end]
    soaks = [p for p in pauses if p >= 3 * 60]
    assert len(soaks) >= 2, pauses  # soak pauses of several minutes near 0 W
    assert all(washer.watts_at(s) < 4 for s, _ in stretches(washer, 4, high=False))
    spin = [w for s, w in zip(washer.seconds, washer.watts, strict=True) if 400 <= w <= 600]
    assert len(spin) >= 30  # minutes of spinning
    assert washer.watts[-1] == pytest.approx(1.0, abs=0.2)  # standby afterwards
    assert 0.5 < washer.cycle_wh / 1000 < 2.0


def test_dryer_shape() -> None:
    dryer = builtin("dryer")
    assert 2400 <= dryer.peak_watts <= 2800
    end = main_end(dryer, 10)
    bursts = [(a, b) for a, b in stretches(dryer, 10, high=True) if a >= end]
    assert len(bursts) >= 8  # anti-crease tumbling after the end ...
    assert all(b - a < 30 for a, b in bursts)  # ... in short bursts
    assert dryer.duration - end >= 3600


def test_dishwasher_shape() -> None:
    dishwasher = builtin("dishwasher")
    assert 1900 <= dishwasher.peak_watts <= 2200
    end = main_end(dishwasher, 4)
    pauses = [b - a for a, b in stretches(dishwasher, 4, high=False) if b <= end]
    assert max(pauses) >= 15 * 60  # long pauses mid-cycle
    assert dishwasher.duration - end >= 20 * 60  # a long quiet drying phase


# -- replay -------------------------------------------------------------------------


def test_replay_plays_faster_and_integrates_energy() -> None:
    clock = FakeClock(500.0)
    profile = parse_csv(["0,1000", "60,0", "120,0"])
    replay = Replay(profile, speed=60, clock=clock)
    assert replay.power_mw() == 1_000_000
    clock.now += 0.5  # 30 s of profile time
    assert replay.power_mw() == 1_000_000
    assert replay.total_wh() == pytest.approx(1000 * 30 / 3600)
    clock.now += 1.0
    assert replay.power_mw() == 0
    assert replay.total_wh() == pytest.approx(1000 * 60 / 3600)
    clock.now += 100
    assert replay.finished
    assert replay.power_mw() == 0


def test_replay_loops_and_keeps_counting() -> None:
    clock = FakeClock(500.0)
    profile = parse_csv(["0,1000", "60,0", "120,0"])
    replay = Replay(profile, loop=True, total_wh=100, clock=clock)
    clock.now += 120 * 3 + 30  # three cycles and half a minute of the fourth
    assert replay.power_mw() == 1_000_000
    assert not replay.finished
    assert replay.total_wh() == pytest.approx(100 + (3 * 60 + 30) * 1000 / 3600)


def test_replay_rests_before_a_delayed_start_and_restarts() -> None:
    clock = FakeClock(500.0)
    profile = parse_csv(["0,1000", "60,2"])
    replay = Replay(profile, offset=-30, clock=clock)
    assert replay.power_mw() == 2000  # at rest
    clock.now += 30
    assert replay.power_mw() == 1_000_000
    clock.now += 60
    assert replay.power_mw() == 2000
    used = replay.total_wh()
    replay.restart()
    assert replay.power_mw() == 2000  # resting again for 30 s
    assert replay.total_wh() == pytest.approx(used)


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf")])
def test_replay_refuses_a_bad_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        Replay(builtin("washer"), speed=speed)


# -- one cycle each, with the shipped settings -------------------------------------------


def test_example_ini_ships_the_presets() -> None:
    config = configuration.load(str(EXAMPLE))
    for appliance in config.appliances:
        assert appliance.kind == appliance.name.lower()
        assert appliance.settings == presets.settings(appliance.name.lower())
    assert {a.name.lower() for a in config.appliances} == set(SETTINGS)
    assert (config.monitor_interval, config.monitor_interval_nothing_running) == (60, 60)


def replay_through_detector(
    profile: Profile, settings: Settings, start: float, rng: random.Random | None
) -> list[tuple[EventKind, float]]:
    """Sample ``profile`` on the monitor's schedule, the cycle starting at second 0."""
    detector = Detector(settings)
    events = []
    at = start
    while at < profile.duration + 4 * 3600:
        power = round(profile.watts_at(at) * 1000)
        event = detector.sample(Sample(power, at))
        if event is not None:
            events.append((event.kind, at))
        active = detector.is_high(power) or detector.state is State.RUNNING
        step = 60.0 if active else 900.0
        if rng is not None:
            step *= rng.uniform(1.0, 1.25)  # late passes: a loaded machine
        at += step
    return events


@pytest.mark.parametrize("name", list(BUILTIN))
def test_each_profile_is_one_cycle_with_the_demo_settings(name: str) -> None:
    profile = builtin(name)
    settings = SETTINGS[name]
    end = main_end(profile, settings.threshold_running_mw / 1000)
    rng = random.Random(name)
    starts = [-900.0 + phase for phase in range(0, 900, 7)]
    runs: list[tuple[float, random.Random | None]] = [(s, None) for s in starts]
    runs += [(rng.uniform(-900, 0), rng) for _ in range(100)]
    for start, jitter in runs:
        events = replay_through_detector(profile, settings, start, jitter)
        kinds = [kind for kind, _ in events]
        assert kinds == [EventKind.RUNNING, EventKind.FINISHED], (start, events)
        finished_at = events[1][1]
        assert end < finished_at < end + 40 * 60, (start, events)
