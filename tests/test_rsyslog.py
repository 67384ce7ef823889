"""End to end: daemon lines through a private rsyslogd and the sample rules to the sample hook.

rsyslogd runs on its own socket in a temporary directory
(imuxsock with the system socket off), with the three sample fragments as
shipped, except that each one's hook path points to a wrapper that sets its
own marker file and then runs the sample hook unchanged.  rsyslog gives no
signal when it has acted, so the tests wait for marker lines to appear.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT, WAIT, Daemon, KasaSimulator, need_program, write_ini

SAMPLE = ROOT / "sample"
HOOK = SAMPLE / "hooks" / "whitegoodsd-hook"
INSTALLED_HOOK = "/opt/whitegoodsd/whitegoodsd-hook"
FRAGMENTS = ("legacy", "anchored", "omprog")


def wait_lines(path: Path, predicate: Callable[[list[str]], bool], what: str) -> list[str]:
    """Poll ``path`` until its lines satisfy ``predicate`` (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if predicate(lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {path} has {lines!r} after {WAIT} s")
        time.sleep(0.02)


def events(lines: list[str]) -> list[str]:
    """Marker lines without the cycle figures that may follow ``NAME is FINISHED.``"""
    return [line.split(". ", 1)[0].removesuffix(".") + "." for line in lines]


class Rsyslog:
    """A private rsyslogd with the sample fragments."""

    def __init__(self, base: Path) -> None:
        self.rsyslogd = need_program("rsyslogd", "apt-get install rsyslog")
        self.dir = base / "rsyslog"
        self.dir.mkdir()
        self.socket = self.dir / "log.sock"
        self.seen = self.dir / "whitegoodsd.log"  # every whitegoodsd line, for waiting on
        self.conf = self.dir / "rsyslog.conf"
        parts = [
            f'global(workDirectory="{self.dir}")',
            'module(load="imuxsock" SysSock.Use="off")',
            f'input(type="imuxsock" Socket="{self.socket}" CreatePath="on")',
            'template(name="text" type="string" string="%programname%:%msg%\\n")',
            f'if $programname startswith "whitegoodsd" then action(type="omfile" '
            f'file="{self.seen}" template="text")',
        ]
        for name in FRAGMENTS:
            text = (SAMPLE / "rsyslog" / f"whitegoodsd-{name}.conf").read_text()
            assert INSTALLED_HOOK in text
            parts.append(text.replace(INSTALLED_HOOK, str(self.wrapper(name))))
        self.conf.write_text("\n".join(parts) + "\n")
        check = subprocess.run(
            [self.rsyslogd, "-N1", "-f", str(self.conf)],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert check.returncode == 0, check.stderr
        assert "error" not in check.stderr.lower(), check.stderr
        self.process: subprocess.Popen[bytes] | None = None

    def marker(self, name: str) -> Path:
        return self.dir / f"{name}.marker"

    def wrapper(self, name: str) -> Path:
        """The sample hook, with its own marker file."""
        path = self.dir / f"hook-{name}"
        path.write_text(f'#!/bin/sh\nHOOK_LOG={self.marker(name)} exec {HOOK} "$@"\n')
        path.chmod(0o755)
        return path

    def start(self) -> None:
        env = {
            **os.environ,
            # The hook's settings: no quiet hours, no mail or push, its own
            # lines to this rsyslogd rather than the system's.
            "WHITEGOODSD_HOOK_CONFIG": os.devnull,
            "HOOK_QUIET_FROM": "0",
            "HOOK_QUIET_UNTIL": "0",
            "HOOK_MIN_INTERVAL": "0",
            "HOOK_LOCK_DIR": str(self.dir),
            "HOOK_SYSLOG_SOCKET": str(self.socket),
        }
        self.process = subprocess.Popen(
            [self.rsyslogd, "-n", "-f", str(self.conf), "-i", str(self.dir / "pid")],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT
        while not self.socket.exists():
            assert self.process.poll() is None, "rsyslogd exited"
            assert time.monotonic() < deadline, "rsyslogd made no socket"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path)
    yield server
    server.stop()


def test_finished_lines_run_the_hook_through_each_sample_rule(
    tmp_path: Path,
    rsyslog: Rsyslog,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
) -> None:
    names = ("WASHER", "DRYER", "TUMBLEDRYER")
    plugs = {name: kasa_simulator("hs110v2") for name in names}
    for plug in plugs.values():
        plug.set(power=500.0)
    sections = "".join(
        f"[{name}]\nsmartplug = 127.0.0.1:{plug.port}\nthreshold_running_mw = 4000\n"
        "minsamples = 1\n"
        for name, plug in plugs.items()
    )
    ini = write_ini(
        tmp_path / "whitegoodsd.ini",
        f"[whitegoodsd]\nappliances = {', '.join(names)}\nmonitor_interval = 0.1\n"
        f"monitor_interval_nothing_running = 0.1\nsyslog_address = {rsyslog.socket}\n"
        f"{sections}",
    )
    rsyslog.start()
    process = daemon("-f", "-c", str(ini))
    running = {f"whitegoodsd: {name} is RUNNING." for name in names}
    wait_lines(rsyslog.seen, lambda lines: running <= set(lines), "all three running")

    legacy, anchored, omprog = (rsyslog.marker(name) for name in FRAGMENTS)
    # TUMBLEDRYER first: once the omprog hook (the last rule) has it, the
    # anchored DRYER rule before it has had its chance, and must not have fired.
    plugs["TUMBLEDRYER"].set(power=1.0)
    wait_lines(omprog, lambda lines: "TUMBLEDRYER is FINISHED." in events(lines), "omprog hook")
    assert not anchored.exists()
    assert not legacy.exists()

    plugs["DRYER"].set(power=1.0)
    plugs["WASHER"].set(power=1.0)
    wait_lines(
        legacy, lambda lines: "WASHER is FINISHED." in events(lines), "^ hook, contains rule"
    )
    both = {"WASHER is FINISHED.", "DRYER is FINISHED."}
    wait_lines(anchored, lambda lines: both <= set(events(lines)), "^ hook, anchored rules")
    wait_lines(omprog, lambda lines: len(lines) == 3, "omprog hook")
    said = "whitegoodsd-hook: TUMBLEDRYER FINISHED handled: log"
    wait_lines(rsyslog.seen, lambda lines: said in lines, "the hook's own line")
    assert process.stop() == 0
    rsyslog.stop()

    assert events(legacy.read_text().splitlines()) == ["WASHER is FINISHED."]
    assert sorted(events(anchored.read_text().splitlines())) == sorted(both)
    assert sorted(events(omprog.read_text().splitlines())) == sorted(
        f"{name} is FINISHED." for name in names
    )
    # The hook said what it did through the same rsyslogd, without ever
    # repeating a line that its own rules would match.
    hook_lines = [
        line
        for line in rsyslog.seen.read_text().splitlines()
        if line.startswith("whitegoodsd-hook:")
    ]
    assert not any("is FINISHED" in line for line in hook_lines)
