"""Replay: a trace polled by the monitor's rule through the detector, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whitegoodsd import cli, trace
from whitegoodsd.detector import EventKind, Settings
from whitegoodsd.replay import replay

R, F = EventKind.RUNNING, EventKind.FINISHED
SETTINGS = Settings(10_000, 1, 10_000, 1, finish_delay=120, max_plausible_mw=4_000_000)


def steps(*spans: tuple[float, float, float | None]) -> trace.Trace:
    """Rows every 5 s: (from, to, watts) spans; watts None leaves a gap."""
    lines = ["seconds,watts"]
    for start, stop, watts in spans:
        if watts is not None:
            lines += [f"{t},{watts}" for t in range(int(start), int(stop), 5)]
    return trace.parse(lines, "steps")


def timed(result: object) -> list[tuple[float, EventKind]]:
    return [(e.at, e.kind) for e in result.events]  # type: ignore[attr-defined]


def test_idle_polls_are_sparse_and_active_ones_dense() -> None:
    recorded = steps((0, 600, 1), (600, 1200, 2000), (1200, 1800, 1))
    result = replay(recorded, SETTINGS, interval=10, idle_interval=100)
    # Idle polls at 0, 100 ... 600 (high: RUNNING), then every 10 s until the
    # low run from 1200 has lasted 120 s, then idle again from 1420.
    assert timed(result) == [(600, R), (1320, F)]
    assert result.polls == 7 + 72 + 4
    assert (result.failed, result.discarded, result.running_at_end) == (0, 0, False)
    finished = result.events[1].cycle
    assert finished is not None
    assert (finished.started, finished.duration, finished.peak_mw) == (600, 600, 2_000_000)


def test_a_gap_fails_the_polls_and_does_not_count_as_time_below() -> None:
    recorded = steps((0, 300, 2000), (300, 340, 1), (340, 2000, None), (2000, 2400, 1))
    result = replay(recorded, SETTINGS, interval=60, idle_interval=60)
    # Low from 300: 60 s of it before the gap (at 360); polls fail from 420
    # (no row for 60 s), and the low run goes on at 2040: 120 s at 2100.
    assert timed(result) == [(0, R), (2100, F)]
    assert result.failed == len(range(420, 2040, 60))


def test_a_spike_is_discarded_as_the_monitor_discards_it() -> None:
    recorded = steps((0, 120, 1), (120, 125, 25_000), (125, 600, 1))
    result = replay(recorded, SETTINGS, interval=5, idle_interval=5)
    assert (timed(result), result.discarded) == ([], 1)
    unfiltered = Settings(10_000, 1, 10_000, 1)
    assert timed(replay(recorded, unfiltered, 5, 5)) == [(120, R), (125, F)]


def test_still_running_at_the_end() -> None:
    result = replay(steps((0, 600, 2000)), SETTINGS, 60, 60)
    assert (timed(result), result.running_at_end) == ([(0, R)], True)


def test_intervals_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        replay(steps((0, 10, 1)), SETTINGS, 0, 60)


# -- the command ---------------------------------------------------------------


@pytest.fixture
def cycle_csv(tmp_path: Path) -> Path:
    path = tmp_path / "cycle.csv"
    rows = [(t, 1.0) for t in range(0, 600, 5)] + [(t, 1500.0) for t in range(600, 4200, 5)]
    rows += [(t, 1.0) for t in range(4200, 6000, 5)]
    path.write_text("seconds,watts\n" + "".join(f"{t},{w}\n" for t, w in rows))
    return path


def test_replay_prints_events_with_cycle_figures(
    cycle_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", str(cycle_csv), "--kind", "generic", "--interval", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "kind generic; polled every 30 s while active, 60 s idle" in lines[0]
    events = [line.split() for line in lines[1:]]
    assert [e[3] for e in events] == ["RUNNING", "FINISHED"]
    # The energy comes from the counter the replay gives each sample; that
    # counter still shows the load at the first 1 W reading, so the cycle ends
    # one poll (30 s) later.
    assert lines[2].endswith("Ran 1:00:30, used 1.500 kWh, peak 1,500 W.")


def test_replay_json(cycle_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", str(cycle_csv), "--kind", "washer", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    events = document["events"]
    assert [e["event"] for e in events] == ["RUNNING", "FINISHED"]
    assert 600 <= events[0]["at"] <= 600 + 60 + 60
    assert events[1]["duration_s"] == pytest.approx(3600, abs=60)
    assert events[1]["energy_wh"] == pytest.approx(1500, rel=0.03)
    assert events[1]["peak_w"] == 1500
    assert (document["interval"], document["idle_interval"]) == (60, 60)


def test_replay_with_an_appliance_of_an_ini_file(
    cycle_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = tmp_path / "w.ini"
    ini.write_text(
        "[whitegoodsd]\nappliances = A, B\nmonitor_interval = 20\n"
        "monitor_interval_nothing_running = 300\n"
        "[A]\nsmartplug = 127.0.0.1\nthreshold_running_mw = 4000\nminsamples = 2\n"
        "[B]\nsmartplug = 127.0.0.1\nthreshold_running_mw = 4000\nminsamples = 1\n"
    )
    assert cli.main(["replay", str(cycle_csv), "-c", str(ini), "-a", "a", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["interval"], document["idle_interval"]) == (20, 300)
    assert [e["at"] for e in document["events"]] == [620, 4220]
    assert cli.main(["replay", str(cycle_csv), "-c", str(ini)]) == 2
    assert "more than one appliance (A, B); choose one with -a" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kind", "dryer", "-c", "x.ini"], "--kind and -c/-a are alternatives"),
        (["-c", "/nonexistent.ini"], "cannot read"),
    ],
)
def test_replay_usage_errors(
    cycle_csv: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", str(cycle_csv), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1


def test_replay_of_a_broken_trace_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("seconds,watts\n0,1\n10,x\n")
    assert cli.main(["replay", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"whitegoodsd replay: {path}:3: expected two numbers, got '10,x'\n"
    )
