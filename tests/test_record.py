"""Recording readings: ``whitegoodsd record`` against a real Kasa plug, and ``record_dir``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from whitegoodsd import trace
from whitegoodsd.emulator import SettablePower
from whitegoodsd.errors import Reading
from whitegoodsd.outputs import record
from whitegoodsd.status import ApplianceStatus

from conftest import ROOT, WAIT
from kasa_plug import KasaTestPlug


def ini_for(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "w.ini"
    path.write_text(
        "[whitegoodsd]\nappliances = WASHER\ntimeout = 2\n"
        f"[WASHER]\nsmartplug = 127.0.0.1:{port}\nkind = washer\n"
    )
    return path


def run_record(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whitegoodsd", "record", *args],
        capture_output=True, text=True, timeout=WAIT, cwd=ROOT,
    )  # fmt: skip


def test_record_writes_a_trace_that_replay_reads(tmp_path: Path, plugs: list[KasaTestPlug]) -> None:
    plugs.append(KasaTestPlug(SettablePower(1_834_500)))
    ini = ini_for(tmp_path, plugs[0].port)
    done = run_record("-c", str(ini), "--interval", "0.1", "--duration", "1")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("# WASHER: kasa plug at 127.0.0.1:")
    recorded = trace.parse(done.stdout.splitlines(), "stdout")
    assert 3 <= len(recorded) <= 11
    assert set(recorded.watts) == {1834.5}
    assert recorded.seconds[0] == 0
    assert all(b - a > 0.05 for a, b in zip(recorded.seconds, recorded.seconds[1:], strict=False))


def test_record_stops_on_sigterm(tmp_path: Path, plugs: list[KasaTestPlug]) -> None:
    plugs.append(KasaTestPlug(SettablePower(5000)))
    ini = ini_for(tmp_path, plugs[0].port)
    process = subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "record", "-c", str(ini), "-a", "washer",
         "--interval", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(4)]  # comment, header, two rows
    assert lines[1] == "seconds,watts\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=WAIT)
    assert (process.returncode, err) == (0, "")
    assert trace.parse(lines + out.splitlines(keepends=True), "stdout").watts[0] == 5


def test_a_plug_that_never_answers_is_exit_status_1(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    done = run_record("-c", str(ini_for(tmp_path, port)), "--interval", "0.1", "--duration", "0.3")
    assert done.returncode == 1
    assert done.stdout.splitlines()[1:] == ["seconds,watts"]
    assert "whitegoodsd record: WASHER: " in done.stderr.splitlines()[0]


def test_record_usage_errors(tmp_path: Path) -> None:
    done = run_record("-c", str(ini_for(tmp_path, 9999)), "-a", "DRYER")
    assert done.returncode == 2
    assert done.stderr == f"whitegoodsd record: {tmp_path}/w.ini: no appliance 'DRYER' " \
        "(there are: WASHER)\n"  # fmt: skip


# -- record_dir ------------------------------------------------------------------


def status(name: str, at: float, watts: float | None) -> ApplianceStatus:
    reading = None if watts is None else Reading(round(watts * 1000))
    return ApplianceStatus(
        name=name, driver="kasa", plug="127.0.0.1", up=reading is not None, reading=reading,
        error=None, running=False, cycles=0, last_poll=at, last_cycle=None,
    )  # fmt: skip


def test_record_dir_keeps_a_trace_a_day(tmp_path: Path) -> None:
    noon = dt.datetime(2026, 12, 1, 12, 0, 0).timestamp()
    out = record.RecordOutput(str(tmp_path))
    out.write([status("WASHER", noon, 2.5), status("DRY/ER", noon, None)])
    out.write([status("WASHER", noon, 2.5)])  # not polled again: no second row
    out.write([status("WASHER", noon + 60, 1834.2), status("DRY/ER", noon + 60, 3)])
    washer = trace.load(tmp_path / "WASHER-2026-12-01.csv")
    assert (list(washer.seconds), list(washer.watts)) == ([0, 60], [2.5, 1834.2])
    text = (tmp_path / "WASHER-2026-12-01.csv").read_text().splitlines()
    assert text[1:] == ["seconds,watts", "43200,2.5", "43260,1834.2"]  # since midnight
    assert (tmp_path / "DRY_ER-2026-12-01.csv").read_text().endswith("\n43260,3\n")


def test_record_dir_forgets_old_days_and_bounds_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for old in ("2026-11-01", "2026-11-17", "2026-11-18"):
        (tmp_path / f"WASHER-{old}.csv").write_text("seconds,watts\n0,1\n")
    (tmp_path / "WASHER-2-2026-11-01.csv").write_text("seconds,watts\n0,1\n")
    out = record.RecordOutput(str(tmp_path))
    day = dt.datetime(2026, 12, 1, 0, 0, 1).timestamp()
    out.write([status("WASHER", day, 1)])
    # 14 days kept: 17 November is 14 days before 1 December; another appliance's file stays.
    assert sorted(os.listdir(tmp_path)) == [
        "WASHER-2-2026-11-01.csv", "WASHER-2026-11-17.csv", "WASHER-2026-11-18.csv",
        "WASHER-2026-12-01.csv",
    ]  # fmt: skip
    monkeypatch.setattr(record, "MAX_BYTES", 60)
    for n in range(2, 10):
        out.write([status("WASHER", day + n, 1000)])
    assert (tmp_path / "WASHER-2026-12-01.csv").stat().st_size < 60 + 10


def test_record_dir_that_cannot_be_written_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whitegoodsd")
    out = record.RecordOutput(str(tmp_path / "missing"))
    for n in range(3):
        out.write([status("WASHER", 1_764_590_400.0 + n, 1)])
    assert [r.getMessage() for r in caplog.records] == [
        f"Cannot record readings in {tmp_path}/missing: No such file or directory"
    ]
    (tmp_path / "missing").mkdir()
    out.write([status("WASHER", 1_764_590_500.0, 1)])
    assert caplog.records[-1].getMessage() == f"Recording readings in {tmp_path}/missing again."
