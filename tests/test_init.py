"""init/ and sample/ scripts: systemd-analyze, shellcheck, the LSB script driving a real daemon."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_daemon import wait_exit

from conftest import ROOT, WAIT, SyslogListener, need, need_program, write_ini

INIT = ROOT / "init"
UNIT = INIT / "whitegoodsd.service"
INSTALLED = "/usr/local/bin/whitegoodsd"
SHELL_SCRIPTS = [
    INIT / "whitegoodsd.init",
    INIT / "whitegoodsd.openrc",
    ROOT / "sample" / "hooks" / "whitegoodsd-hook",
]


CREDENTIAL = "${CREDENTIALS_DIRECTORY}/whitegoodsd.ini"


def unit_copy(tmp_path: Path) -> Path:
    """The unit, its ExecStart pointed at a program that exists here (verify checks)."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED} --foreground -c {CREDENTIAL}\n" in text
    path = tmp_path / "whitegoodsd.service"
    path.write_text(text.replace(INSTALLED, sys.executable))
    return path


def test_the_unit_runs_the_daemon_in_the_foreground_on_a_private_copy_of_the_file() -> None:
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text().splitlines() if re.match(r"^\w+=", line)
    )
    assert settings["Type"] == "exec"
    # A root-owned 0600 file (it may hold passwords) reaches the dynamic user
    # as a credential; a reload would re-read the copy made at start, so none.
    assert settings["LoadCredential"] == "whitegoodsd.ini:/etc/whitegoodsd.ini"
    assert settings["ExecStart"].endswith(f" -c {CREDENTIAL}")
    assert "ExecReload" not in settings
    assert settings["Restart"] == "on-failure"
    assert settings["RestartPreventExitStatus"] == "2"
    assert settings["PrivateDevices"] == "yes"  # keeps /dev/log
    assert settings["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert settings["ReadWritePaths"] == "-/var/lib/prometheus/node-exporter"
    assert settings["StateDirectory"] == "whitegoodsd"
    assert settings["CapabilityBoundingSet"] == ""


def test_systemd_analyze_verify_says_nothing(tmp_path: Path) -> None:
    analyze = need_program("systemd-analyze", "apt-get install systemd")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    # verify exits 0 even on unknown keys: only silence means clean.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_systemd_analyze_security_rates_the_unit_ok_or_better(tmp_path: Path) -> None:
    analyze = need_program("systemd-analyze", "apt-get install systemd")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    match = re.search(
        r"Overall exposure level for whitegoodsd\.service: ([\d.]+) (\w+)", result.stdout
    )
    assert match, result.stdout + result.stderr
    assert match.group(2) in {"SAFE", "OK"}, result.stdout
    assert float(match.group(1)) < 2.0


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_sh_n_and_shellcheck(script: Path) -> None:
    shellcheck = need_program("shellcheck", "apt-get install shellcheck")
    assert os.access(script, os.X_OK)
    interpreter = "bash" if script.read_text().startswith("#!/bin/bash") else "sh"
    subprocess.run([interpreter, "-n", str(script)], check=True, timeout=WAIT)
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 0, result.stdout


# -- the LSB script, for real ------------------------------------------------------


class Service:
    """init/whitegoodsd.init with its settings in a private defaults file."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        need_program("start-stop-daemon", "apt-get install dpkg")
        need(Path("/lib/lsb/init-functions").exists(), "no /lib/lsb/init-functions")
        # The console script: its process name is "whitegoodsd", which --name matches.
        program = shutil.which("whitegoodsd", path=str(Path(sys.executable).parent))
        need(program is not None, "no whitegoodsd console script next to the interpreter")
        self.pidfile = tmp_path / "run" / "whitegoodsd.pid"  # the directory is made by start
        defaults = tmp_path / "defaults"
        defaults.write_text(f"DAEMON={program}\nCONFIG={config}\nPIDFILE={self.pidfile}\n")
        self.env = {
            **os.environ,
            "WHITEGOODSD_DEFAULTS": str(defaults),
            "_SYSTEMCTL_SKIP_REDIRECT": "1",  # run the script itself, even under systemd
        }

    def __call__(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(INIT / "whitegoodsd.init"), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )

    def pid(self) -> int:
        return int(self.pidfile.read_text())


@pytest.fixture
def service_config(tmp_path: Path, syslog: SyslogListener) -> Iterator[Path]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # connections refused: no plug needed here
    yield write_ini(
        tmp_path / "whitegoodsd.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.2
        monitor_interval_nothing_running = 0.2
        syslog_address = {syslog.path}
        [WASHER]
        smartplug = 127.0.0.1:{sock.getsockname()[1]}
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )
    sock.close()


def test_the_lsb_script_starts_reloads_and_stops_the_daemon(
    tmp_path: Path, syslog: SyslogListener, service_config: Path
) -> None:
    service = Service(tmp_path, service_config)
    assert service("status").returncode == 3
    started = service("start")
    assert started.returncode == 0, started.stdout + started.stderr
    syslog.wait_text("Starting.")
    pid = service.pid()
    try:
        assert Path(f"/proc/{pid}/comm").read_text() == "whitegoodsd\n"
        assert service("start").returncode == 0  # already running: nothing to do
        status = service("status")
        assert status.returncode == 0 and "is running" in status.stdout
        assert service.pid() == pid

        text = service_config.read_text()
        service_config.write_text(text.replace("minsamples = 2", "minsamples = 0"))
        refused = service("reload")
        assert refused.returncode == 6
        assert "minsamples: must be at least 1" in refused.stderr
        service_config.write_text(text)
        assert service("force-reload").returncode == 0
        syslog.wait_for(lambda m: m.text.startswith("Reloaded "))

        stopped = service("stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        wait_exit(pid)
        assert not service.pidfile.exists()
        assert service("status").returncode == 3
        assert service("stop").returncode == 0  # not running: still a success

        assert service("restart").returncode == 0
        syslog.wait_for(lambda m: m.text == "Starting." and f"[{pid}]" not in m.tag, new=True)
        second = service.pid()
        assert service("stop").returncode == 0
        wait_exit(second)
    finally:
        for leftover in (pid, *([service.pid()] if service.pidfile.exists() else [])):
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass
