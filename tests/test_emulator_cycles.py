"""Each built-in profile, served by ``whitegoodsd emulate``, through the real daemon.

The daemon runs with whitegoodsd.ini.example, its intervals divided by the
replay speed, and the settings in readings of emulator.profiles.SETTINGS in
place of its kind presets (seconds do not speed up with the replay; sample
counts polled faster mean what they mean in real time).  Each appliance must
be RUNNING once and FINISHED once: the washer's soak pauses, the dishwasher's
long pauses and the dryer's anti-crease bursts neither split nor reopen a
cycle.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whitegoodsd.emulator.profiles import BUILTIN, SETTINGS, builtin

from conftest import ROOT, Daemon, SyslogListener

SPEED = 1200.0
START_IN = 1.0  # wall seconds each emulated appliance rests before its cycle starts


class Emulator:
    """``whitegoodsd emulate`` in a subprocess, serving one plug."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr_path = tmp_path / f"emulate-{os.getpid()}-{id(self)}.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "whitegoodsd", "emulate", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                text=True,
            )
        self.started = time.monotonic()
        assert self.process.stdout is not None
        self.ini: list[str] = []
        for line in self.process.stdout:
            self.ini.append(line)
            if line.startswith("smartplug = "):
                break
        assert self.ini and self.ini[-1].startswith("smartplug"), self.stderr

    @property
    def plug(self) -> str:
        return self.ini[-1].split("=", 1)[1].strip()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.process.stdout:
                self.process.stdout.close()


@pytest.fixture
def emulate(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(*args: str) -> Emulator:
        emulator = Emulator(tmp_path, *args)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def example_for(plugs: dict[str, str], syslog: Path, speed: float) -> str:
    """whitegoodsd.ini.example with our plugs, our syslog socket, scaled intervals and SETTINGS."""
    out = []
    section = ""
    for line in (ROOT / "whitegoodsd.ini.example").read_text().splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line.strip())
        if header:
            section = header.group(1)
        key = line.split("=", 1)[0].strip()
        if key == "smartplug":
            line = f"smartplug = {plugs[section]}"
        elif key == "kind":
            s = SETTINGS[section.lower()]
            line = (
                f"threshold_running_mw = {s.threshold_running_mw}\nminsamples = {s.minsamples}\n"
                f"threshold_finished_mw = {s.threshold_finished_mw}\n"
                f"minsamples_finished = {s.minsamples_finished}"
            )
        elif key in ("monitor_interval", "monitor_interval_nothing_running"):
            seconds = float(line.split("=", 1)[1].split(";")[0])
            line = f"{key} = {seconds / speed:.6g}"
        elif key == "syslog_address":
            line = f"syslog_address = {syslog}"
        out.append(line)
    return "\n".join(out) + "\n"


def test_each_profile_through_the_daemon_is_one_cycle(
    tmp_path: Path,
    syslog: SyslogListener,
    emulate: Callable[..., Emulator],
    daemon: Callable[..., Daemon],
) -> None:
    sections = {"washer": "WASHER", "dryer": "DRYER", "dishwasher": "DISHWASHER"}
    drivers = {"washer": "kasa-v2", "dryer": "kasa-v1", "dishwasher": "inplug"}  # as the example
    assert set(sections) == set(BUILTIN)
    emulators = {
        sections[name]: emulate(
            "--profile", name, "--speed", f"{SPEED:g}", "--start-in", f"{START_IN:g}",
            "--listen", "127.0.0.1:0", "--driver", drivers[name],
        )
        for name in BUILTIN
    }  # fmt: skip
    ini = tmp_path / "whitegoodsd.ini"
    ini.write_text(example_for({s: e.plug for s, e in emulators.items()}, syslog.path, SPEED))
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text("Starting.")
    for section in emulators:
        prefix = f"{section} is FINISHED."
        syslog.wait_for(lambda m: m.text.startswith(prefix), 120)  # noqa: B023 - used at once
    # By now the dryer's anti-crease bursts are over too.
    dryer = builtin("dryer")
    last_burst = max(
        end for end, watts in zip(dryer.seconds[1:], dryer.watts, strict=False) if watts >= 10
    )
    replayed = (time.monotonic() - emulators["DRYER"].started - START_IN) * SPEED
    assert replayed > last_burst
    assert process.stop() == 0
    texts = syslog.texts()
    for section in emulators:
        assert texts.count(f"{section} is RUNNING.") == 1, texts
        finished = [i for i, t in enumerate(texts) if t.startswith(f"{section} is FINISHED.")]
        assert len(finished) == 1, texts
        assert texts.index(f"{section} is RUNNING.") < finished[0]
    assert not [t for t in texts if "Error" in t or "UNREACHABLE" in t], texts
    for emulator in emulators.values():
        assert emulator.stop() == 0
        assert "cycle starts" in emulator.stderr
