"""``whitegoodsd demo``: runs with no arguments, exits 0, and leaves nothing behind."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, WAIT

APPLIANCES = ("WASHER", "DRYER", "DISHWASHER")
# Generous: the demo takes some 20 s; this only bounds a hang.
DEMO_LIMIT = 180


def start_demo(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "demo", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)},
        text=True,
    )
    return process, scratch


def seconds(hms: tuple[str | None, ...]) -> int:
    hours, minutes, secs = (int(part or 0) for part in hms)
    return hours * 3600 + minutes * 60 + secs


def daemon_pids(output: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"whitegoodsd\[(\d+)\]: ", output)}


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_demo_runs_every_appliance_through_one_cycle(tmp_path: Path) -> None:
    process, scratch = start_demo(tmp_path)
    output, _ = process.communicate(timeout=DEMO_LIMIT)
    assert process.returncode == 0, output
    lines = output.splitlines()
    for name in APPLIANCES:
        assert sum(line.endswith(f"]: {name} is RUNNING.") for line in lines) == 1, output
        assert sum(f"]: {name} is FINISHED." in line for line in lines) == 1, output
        assert re.search(rf"^  {name} +\d:\d\d:\d\d +\d:\d\d:\d\d ", output, re.M), output
        # The on_finished command ran, with the event in its environment.
        command = rf"]: on_finished for {name}: exit status 0: {name} FINISHED at \S+, peak \d+ W$"
        assert len(re.findall(command, output, re.M)) == 1, output
    assert "Summary: every appliance FINISHED" in output
    # The daemon measures on the plugs' sped-up clock: its figures and the
    # summary's are in one time base (a second of it is not 600 s of theirs).
    for name in APPLIANCES:
        said = re.search(
            rf"]: {name} is FINISHED\. Ran (\d+):(\d\d):(\d\d), used ([\d.]+) kWh", output
        )
        row = re.search(rf"^  {name} +\S+ +\S+ +(\d+):(\d\d):(\d\d) +([\d.]+) kWh$", output, re.M)
        assert said is not None and row is not None, output
        ran, run = seconds(said.groups()[:3]), seconds(row.groups()[:3])
        assert 0.5 < ran / run < 2, (name, said.group(0), row.group(0))
        assert 0.5 < float(said[4]) / float(row[4]) < 2, (name, said.group(0), row.group(0))
    if importlib.util.find_spec("whitegoodsd.outputs.textfile") is not None:
        for name in APPLIANCES:
            metric = rf'^  whitegoodsd_appliance_cycles_total{{appliance="{name}".*}} 1\.0$'
            assert re.search(metric, output, re.M), output
    (pid,) = daemon_pids(output)
    assert pid != process.pid
    assert_gone(pid)
    assert list(scratch.iterdir()) == []  # the temporary directory is gone


def test_an_interrupted_demo_cleans_up(tmp_path: Path) -> None:
    process, scratch = start_demo(tmp_path)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.rstrip().endswith("is RUNNING."):
            break
    assert seen and "is RUNNING." in seen[-1], "".join(seen)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=WAIT)
    output = "".join(seen) + rest
    assert process.returncode == 130, output
    assert "interrupted" in output
    (pid,) = daemon_pids(output)
    assert_gone(pid)
    assert list(scratch.iterdir()) == []


def test_demo_refuses_a_bad_speed(tmp_path: Path) -> None:
    process, scratch = start_demo(tmp_path, "--speed", "0")
    output, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 2
    assert "--speed" in output
    assert list(scratch.iterdir()) == []
