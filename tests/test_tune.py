"""Tuning: the shortest finish_delay that sees each recorded cycle once, and its margin."""

from __future__ import annotations

from pathlib import Path

import pytest

from whitegoodsd import cli, presets, trace, tune


def steps(*spans: tuple[float, float]) -> list[str]:
    """Rows every 5 s: (seconds, watts) spans one after the other."""
    lines, at = ["seconds,watts"], 0.0
    for seconds, watts in spans:
        end = at + seconds
        while at < end:
            lines.append(f"{at:g},{watts:g}")
            at += 5
    return lines


# Idle, heating, a 3-minute soak near 2 W, washing, idle; twice, 15 minutes apart.
WASH = [(600, 0.5), (600, 2000), (180, 2), (1200, 200)]
TWO_WASHES = steps(*WASH, (900, 0.5), *WASH[1:], (1800, 0.5))


def test_the_shortest_finish_delay_outlasts_the_longest_pause() -> None:
    recorded = trace.parse(TWO_WASHES, "w.csv")
    found = tune.suggest([recorded], presets.settings("washer"))
    assert [(c.start, c.end) for c in found.cycles] == [(600, 2580), (3480, 5460)]
    assert found.pause is not None and found.pause.seconds == 180
    assert found.settings is not None
    # 180 s of lows at 5 s polls last 175 s: 180 rides it out; 150 would split.
    assert found.settings.finish_delay == 180
    assert found.changed == ("finish_delay",)
    assert len(found.finished_after) == 2 * 3  # two cycles, three intervals
    assert all(0 <= after <= 180 + 60 + 60 for after in found.finished_after)
    shorter = tune.check(
        [recorded], found.cycles, presets.settings("washer").__class__(
            **{**found.settings.__dict__, "finish_delay": 150.0}
        ), tune.INTERVALS, 60.0,
    )  # fmt: skip
    assert shorter is None


def test_a_standby_above_the_finished_threshold_raises_it() -> None:
    recorded = trace.parse(steps((600, 9), *WASH[1:], (1800, 9)), "w.csv")
    found = tune.suggest([recorded], presets.settings("washer"))
    assert found.standby_mw == 9000
    assert found.settings is not None
    assert found.settings.threshold_finished_mw == 11_000
    assert found.changed[:1] == ("threshold_finished_mw",)


def test_cycles_closer_than_the_gap_are_one() -> None:
    recorded = trace.parse(TWO_WASHES, "w.csv")
    found = tune.suggest([recorded], presets.settings("washer"), gap=1200)
    assert len(found.cycles) == 1  # so the 15 minutes between them is a pause inside it
    assert found.pause is not None and (found.pause.at, found.pause.seconds) == (2580, 900)
    assert found.settings is not None and found.settings.finish_delay == 900
    apart = tune.suggest([recorded], presets.settings("washer"), gap=900)
    assert len(apart.cycles) == 2  # 900 s apart is not closer than a 900 s gap


def test_the_command_prints_the_margin_and_a_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.csv"
    path.write_text("\n".join(TWO_WASHES) + "\n")
    assert cli.main(["tune", str(path), "--kind", "washer", "--name", "WASHER"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: cycle from 600 s to 2,580 s (0:33:00)" in out
    assert "longest pause inside a cycle: 180 s below 7 W" in out
    assert "margin: finish_delay 180 s is 0 s longer" in out
    assert out.endswith("\n[WASHER]\nkind = washer\nfinish_delay = 180\n")


def test_the_command_without_a_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "idle.csv"
    path.write_text("\n".join(steps((3600, 1))) + "\n")
    assert cli.main(["tune", str(path)]) == 1
    assert capsys.readouterr().err == (
        "whitegoodsd tune: no cycle found: no reading of 15 W or more held for 60 s\n"
    )
