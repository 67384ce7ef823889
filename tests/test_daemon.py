"""Daemon mode for real: fork, pidfile, refusals, SIGHUP and SIGTERM, and -p in the foreground.

The daemon is a grandchild (python-daemon forks twice), so its exit is
awaited through a pidfd rather than waitpid.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import daemon

from conftest import ROOT, WAIT, Daemon, KasaSimulator, SyslogListener, write_ini

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def launch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``whitegoodsd ARGS`` as a terminal user runs it: returns when the parent exits."""
    return subprocess.run(
        [sys.executable, "-m", "whitegoodsd", *args],
        cwd=cwd,
        env=ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def wait_exit(pid: int) -> None:
    """Wait for a process that is not our child to end."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], WAIT)
        assert ready, f"pid {pid} still running after {WAIT} s"
    finally:
        os.close(fd)


def idle(*, whitegoodsd: bool) -> subprocess.Popen[str]:
    """A process that waits for its stdin to close: a program named whitegoodsd
    (cat as argv[0] ``whitegoodsd``), or one that only has the word among its
    arguments.  Returns once it runs (after exec)."""
    if whitegoodsd:
        argv, program = ["whitegoodsd"], "/bin/cat"
    else:
        argv, program = ["sh", "-c", "cat", "whitegoodsd"], "/bin/sh"
    process = subprocess.Popen(
        argv, executable=program, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.stdout.readline() == "\n"
    return process


def finish(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    process.wait(WAIT)
    process.stdout.close()


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """Pids of daemons a test started: stopped at the end whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            wait_exit(pid)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connections are refused (bound, not listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def ini_text(syslog: SyslogListener, port: int, *, threshold: str = "4000", extra: str = "") -> str:
    return f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.1
        monitor_interval_nothing_running = 0.1
        syslog_address = {syslog.path}
        log_debug = 1
        {extra}
        [WASHER]
        smartplug = 127.0.0.1:{port}
        threshold_running_mw = {threshold}
        minsamples = 2
        """


def started(syslog: SyslogListener, pidfile: Path, daemons: list[int]) -> int:
    """The pid of a daemon that has just logged Starting. (after taking its pidfile)."""
    line = syslog.wait_for(lambda m: m.text == "Starting.", new=True)
    pid = int(line.tag.removeprefix("whitegoodsd[").removesuffix("]:"))
    daemons.append(pid)
    return pid


# -- the pidfile checks, in this process ----------------------------------------


def test_pidfile_path_prefers_the_option_then_the_ini_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bare = configuration.Config(path="/x.ini", appliances=())
    with_key = configuration.Config(path="/x.ini", appliances=(), pidfile="/var/run/w.pid")
    assert daemon.pidfile_path("rel.pid", with_key) == str(tmp_path / "rel.pid")
    assert daemon.pidfile_path(None, with_key) == "/var/run/w.pid"
    assert daemon.pidfile_path(None, bare) == "/run/whitegoodsd.pid"


def test_read_pid(tmp_path: Path) -> None:
    path = tmp_path / "p.pid"
    assert daemon.read_pid(str(path)) is None
    path.write_text("1234\n")
    assert daemon.read_pid(str(path)) == 1234
    for junk in ("", "12ab", "-5", "99999999999"):
        path.write_text(junk)
        assert daemon.read_pid(str(path)) == 0


def test_is_running_knows_a_whitegoodsd_from_a_reused_pid() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ours = idle(whitegoodsd=True)
    foreign = idle(whitegoodsd=False)
    try:
        assert daemon.is_running(ours.pid)
        assert not daemon.is_running(foreign.pid)  # alive, but not a whitegoodsd
        assert not daemon.is_running(dead.pid)
        assert not daemon.is_running(os.getpid())  # a pidfile naming ourselves is stale
        assert not daemon.is_running(0)
    finally:
        finish(ours)
        finish(foreign)


def test_claim_pidfile(tmp_path: Path) -> None:
    path = tmp_path / "w.pid"
    assert daemon.claim_pidfile(str(path)) is None
    path.write_text("garbage")
    assert daemon.claim_pidfile(str(path)) == 0
    assert not path.exists()
    with pytest.raises(daemon.PidfileError, match="no directory"):
        daemon.claim_pidfile(str(tmp_path / "missing" / "w.pid"))
    live = idle(whitegoodsd=True)
    try:
        path.write_text(f"{live.pid}\n")
        with pytest.raises(daemon.AlreadyRunning, match=rf"already running \(pid {live.pid}\)"):
            daemon.claim_pidfile(str(path))
        assert path.exists()
    finally:
        finish(live)


def test_the_signal_map_keeps_sighup_from_killing_the_daemon() -> None:
    mapping = daemon.signal_map()
    assert mapping[signal.SIGHUP] is None  # SIG_IGN until the monitor's handler
    assert mapping[signal.SIGTERM] == "terminate"


# -- the real thing ---------------------------------------------------------------


def test_daemon_forks_holds_its_pidfile_refuses_a_second_start_and_cleans_up(
    tmp_path: Path, syslog: SyslogListener, refused_port: int, daemons: list[int]
) -> None:
    ini = write_ini(tmp_path / "w.ini", ini_text(syslog, refused_port))
    pidfile = tmp_path / "run" / "w.pid"
    pidfile.parent.mkdir()
    first = launch("-c", "w.ini", "-p", "run/w.pid", cwd=tmp_path)  # relative paths
    assert first.returncode == 0, first.stderr
    pid = started(syslog, pidfile, daemons)
    assert pid != os.getpid()
    # The pidfile holds the daemon's pid, 0644; the daemon is in / with umask 022,
    # detached, its stdio on /dev/null, and says nothing on the terminal.
    assert pidfile.read_text().strip() == str(pid)
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    status = Path(f"/proc/{pid}/status").read_text()
    assert "Umask:\t0022" in status
    assert os.getsid(pid) != os.getsid(0)  # detached: a session of its own
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    assert first.stdout == "" and first.stderr == ""
    syslog.wait_text("Error getting current usage for WASHER: connection refused")

    second = launch("-c", str(ini), "-p", str(pidfile), cwd=tmp_path)
    assert second.returncode == 1
    assert second.stderr == f"whitegoodsd: already running (pid {pid})\n"
    assert pidfile.read_text().strip() == str(pid)

    syslog.drain()  # room in the socket for what it says on its way out
    os.kill(pid, signal.SIGTERM)
    # Read while it stops: its last lines wait behind the debug lines it logged
    # while this test read nothing.
    syslog.wait_text("Exiting on signal.")
    wait_exit(pid)
    assert not pidfile.exists()


@pytest.mark.parametrize("holder", ["dead", "foreign", "garbage"])
def test_a_stale_pidfile_is_replaced_and_said_so(
    holder: str,
    tmp_path: Path,
    syslog: SyslogListener,
    refused_port: int,
    daemons: list[int],
) -> None:
    pidfile = tmp_path / "w.pid"
    # The INI key names the pidfile this time.
    ini = write_ini(
        tmp_path / "w.ini", ini_text(syslog, refused_port, extra=f"pidfile = {pidfile}")
    )
    other = idle(whitegoodsd=False)
    try:
        if holder == "dead":
            gone = subprocess.Popen(["true"])
            gone.wait()
            pidfile.write_text(f"{gone.pid}\n")
        elif holder == "foreign":  # the pid now belongs to another program
            pidfile.write_text(f"{other.pid}\n")
        else:
            pidfile.write_text("\n")
        result = launch("-c", str(ini), cwd=tmp_path)
        assert result.returncode == 0
        assert result.stderr.startswith(f"whitegoodsd: Removed stale pidfile {pidfile} (")
        pid = started(syslog, pidfile, daemons)
        warning = syslog.wait_for(lambda m: m.text.startswith("Removed stale pidfile"))
        assert warning.severity == 4
        assert pidfile.read_text().strip() == str(pid)
        assert other.poll() is None  # the foreign process was left alone
    finally:
        finish(other)


def test_a_missing_pidfile_directory_is_refused_before_forking(
    tmp_path: Path, syslog: SyslogListener, refused_port: int
) -> None:
    ini = write_ini(tmp_path / "w.ini", ini_text(syslog, refused_port))
    result = launch("-c", str(ini), "-p", str(tmp_path / "nowhere" / "w.pid"), cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot write pidfile" in result.stderr
    assert syslog.texts() == []


def test_sighup_reloads_in_daemon_mode_and_survives_a_broken_file(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemons: list[int],
) -> None:
    plug = kasa_simulator("hs110v2")
    plug.set(power=3.0)  # 3,000 mW: below 4,000, above 2,000
    ini = tmp_path / "w.ini"
    pidfile = tmp_path / "w.pid"
    write_ini(ini, ini_text(syslog, plug.port))
    assert launch("-c", str(ini), "-p", str(pidfile), cwd=tmp_path).returncode == 0
    pid = started(syslog, pidfile, daemons)
    syslog.wait_text("WASHER current usage is 3,000 mW; threshold is 4,000 mW")

    write_ini(ini, ini_text(syslog, plug.port, threshold="lots"))
    os.kill(pid, signal.SIGHUP)
    syslog.wait_for(lambda m: m.text.startswith("Reload of ") and "failed" in m.text)
    assert any("threshold_running_mw: expected a whole number" in t for t in syslog.texts())
    syslog.wait_text("WASHER current usage is 3,000 mW; threshold is 4,000 mW", new=True)
    assert pidfile.read_text().strip() == str(pid)

    write_ini(ini, ini_text(syslog, plug.port, threshold="2000"))
    os.kill(pid, signal.SIGHUP)
    syslog.wait_for(lambda m: m.text.startswith("Reloaded "))
    running = syslog.wait_text("WASHER is RUNNING.")
    assert running.tag == f"whitegoodsd[{pid}]:"

    os.kill(pid, signal.SIGTERM)
    wait_exit(pid)
    assert not pidfile.exists()


def test_an_error_after_the_fork_reaches_syslog(
    tmp_path: Path, syslog: SyslogListener, refused_port: int
) -> None:
    ini = write_ini(tmp_path / "w.ini", ini_text(syslog, refused_port))
    pidfile = tmp_path / "w.pid"
    script = (
        "import sys\n"
        "from whitegoodsd import config, daemon\n"
        "def serve() -> int:\n"
        "    raise RuntimeError('the plug registry is on fire')\n"
        "sys.exit(daemon.start(config.load(sys.argv[1]), sys.argv[2], serve))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(ini), str(pidfile), "whitegoodsd"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0  # the parent cannot know
    line = syslog.wait_for(lambda m: m.text.startswith("Stopped by an unexpected error"))
    assert "the plug registry is on fire" in line.text
    assert line.severity == 2
    wait_exit(int(line.tag.removeprefix("whitegoodsd[").removesuffix("]:")))
    assert not pidfile.exists()


# -- -p in the foreground ---------------------------------------------------------


def test_foreground_writes_a_pidfile_only_when_asked(
    tmp_path: Path,
    syslog: SyslogListener,
    refused_port: int,
    daemon: Callable[..., Daemon],
) -> None:
    ini_pidfile = tmp_path / "from-ini.pid"
    ini = write_ini(
        tmp_path / "w.ini", ini_text(syslog, refused_port, extra=f"pidfile = {ini_pidfile}")
    )
    plain = daemon("-f", "-c", str(ini))
    syslog.wait_text("Starting.")
    assert not ini_pidfile.exists()
    assert plain.stop() == 0

    pidfile = tmp_path / "fg.pid"
    held = daemon("-f", "-c", str(ini), "-p", str(pidfile))
    syslog.wait_for(lambda m: m.text == "Starting.", new=True)
    assert pidfile.read_text().strip() == str(held.process.pid)
    refused = launch("-f", "-c", str(ini), "-p", str(pidfile), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == f"whitegoodsd: already running (pid {held.process.pid})\n"
    assert held.stop() == 0
    assert not pidfile.exists()
    assert not ini_pidfile.exists()


def test_python_daemon_and_lockfile_load_only_for_daemon_mode() -> None:
    probe = (
        "import sys\n"
        "import whitegoodsd.cli, whitegoodsd.daemon, whitegoodsd.monitor\n"
        "print(sorted({'daemon', 'lockfile'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=ENV, capture_output=True, text=True, timeout=WAIT
    )
    assert result.stdout == "[]\n", result.stderr
