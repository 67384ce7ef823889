"""Signals from the first instant, and a pidfile that names only a real whitegoodsd.

The daemon holds SIGHUP, SIGTERM and SIGINT before it imports anything, so
a ``systemctl reload`` or stop right after a start is acted on once the loop
runs instead of killing it.  The tests send the signal as soon as the kernel
shows the process holding it (``SigBlk`` in /proc/PID/status), long before
its loop exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from whitegoodsd import daemon
from whitegoodsd.emulator import SettablePower

from conftest import ROOT, WAIT, Daemon, SyslogListener, write_ini
from kasa_plug import KasaTestPlug


def held(pid: int, signum: int) -> bool:
    """Whether process ``pid`` blocks ``signum`` (its main thread, as /proc shows it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    mask = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(mask.split()[1], 16) & (1 << (signum - 1)))


def wait_held(process: Daemon, signum: int) -> None:
    deadline = time.monotonic() + WAIT
    while not held(process.process.pid, signum):
        assert process.process.poll() is None, process.stderr
        assert time.monotonic() < deadline, f"signal {signum} never held at start"
        time.sleep(0.001)


def ini(tmp_path: Path, syslog: SyslogListener, plug: KasaTestPlug) -> Path:
    return write_ini(
        tmp_path / "whitegoodsd.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.1
        monitor_interval_nothing_running = 0.1
        syslog_address = {syslog.path}
        [WASHER]
        smartplug = 127.0.0.1:{plug.port}
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )


def test_a_sighup_right_after_start_is_a_reload(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    daemon: Callable[..., Daemon],
) -> None:
    plugs.append(plug := KasaTestPlug(SettablePower(500), "v2"))
    process = daemon("-f", "-c", str(ini(tmp_path, syslog, plug)))
    wait_held(process, signal.SIGHUP)
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_text("Starting.")
    syslog.wait_for(lambda m: m.text.startswith("Reloaded "))
    served = plug.served
    while plug.served < served + 2:  # still polling after the reload
        assert process.process.poll() is None
        time.sleep(0.02)
    assert process.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_right_after_start_is_a_clean_stop(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    daemon: Callable[..., Daemon],
    signum: int,
) -> None:
    plugs.append(plug := KasaTestPlug(SettablePower(500), "v2"))
    pidfile = tmp_path / "w.pid"
    process = daemon("-f", "-c", str(ini(tmp_path, syslog, plug)), "-p", str(pidfile))
    wait_held(process, signum)
    process.process.send_signal(signum)
    assert process.process.wait(WAIT) == 0, process.stderr
    assert "Exiting on signal." in process.stderr
    assert not pidfile.exists()


def test_other_commands_do_not_hold_signals(tmp_path: Path) -> None:
    # An emulator stops on SIGTERM at once, as it always did.
    emulator = subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "emulate", "--listen", "127.0.0.1:0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        assert emulator.stdout.readline()  # listening
        assert not held(emulator.pid, signal.SIGTERM)
        emulator.terminate()
        assert emulator.wait(WAIT) in (0, -signal.SIGTERM)
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.wait()
        for stream in (emulator.stdout, emulator.stderr):
            if stream:
                stream.close()


# -- is the pid in the pidfile a whitegoodsd? --------------------------------------


@pytest.mark.parametrize(
    ("argv", "exe", "ours"),
    [
        ([b"/usr/local/bin/whitegoodsd", b"-f"], None, True),
        ([b"whitegoodsd"], "/usr/bin/cat", True),
        ([b"/usr/bin/python3", b"/usr/local/bin/whitegoodsd", b"-f"], None, True),
        ([b"/opt/venv/bin/python3.11", b"-u", b"/opt/venv/bin/whitegoodsd"], None, True),
        ([b"python3", b"-m", b"whitegoodsd", b"-c", b"w.ini"], None, True),
        ([b"python3", b"-X", b"dev", b"-mwhitegoodsd"], None, True),
        ([b"python3", b"/src/whitegoodsd/__main__.py"], None, True),
        ([b"/usr/bin/python3", b"-", b"whitegoodsd"], None, False),
        ([b"python3", b"-c", b"import time", b"whitegoodsd"], None, False),
        ([b"python3", b"-m", b"http.server", b"--directory", b"/whitegoodsd"], None, False),
        ([b"vi", b"/etc/whitegoodsd.ini"], "/usr/bin/vim.basic", False),
        ([b"tail", b"-f", b"/var/log/whitegoodsd"], "/usr/bin/tail", False),
        ([b"sh", b"-c", b"whitegoodsd --once"], "/usr/bin/dash", False),
        ([], None, False),
    ],
)  # fmt: skip
def test_only_a_whitegoodsd_counts(argv: list[bytes], exe: str | None, ours: bool) -> None:
    assert daemon.is_whitegoodsd(argv, exe) is ours


def test_a_process_that_only_mentions_whitegoodsd_is_not_running(tmp_path: Path) -> None:
    log = tmp_path / "whitegoodsd.log"
    log.write_text("ready\n")
    editor = subprocess.Popen(["tail", "-f", str(log)], stdout=subprocess.PIPE, text=True)
    named = subprocess.Popen(
        ["whitegoodsd"], executable="/bin/cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        # Each has said something: it runs its own command line (exec is over).
        assert editor.stdout is not None and editor.stdout.readline() == "ready\n"
        assert named.stdin is not None and named.stdout is not None
        named.stdin.write(b"ready\n")
        named.stdin.flush()
        assert named.stdout.readline() == b"ready\n"
        assert not daemon.is_running(editor.pid)
        assert daemon.is_running(named.pid)
        pidfile = tmp_path / "w.pid"
        pidfile.write_text(f"{editor.pid}\n")
        assert daemon.claim_pidfile(str(pidfile)) == editor.pid
        assert not pidfile.exists()
    finally:
        editor.kill()
        editor.wait()
        assert named.stdin is not None
        named.stdin.close()
        named.wait()
        for stream in (editor.stdout, named.stdout):
            if stream:
                stream.close()
