"""The Debian package: built, linted, installed, run, upgraded and purged for real.

``./run deb`` builds the package once for this module, from a copy of the
tree.  Building and linting need Debian's packaging tools; installing needs
root, and holds a machine-wide lock from installation to purge, so that two
test runs on one machine never install over each other.  The installed
program is only ever run by its path (/usr/bin/whitegoodsd, on Debian's
python3); every other test runs the source tree's.  The package is purged
when this module ends, whatever happened in it.

The systemd unit is checked as a file (its paths, ``systemd-analyze
verify``).  The service is restarted and stopped through systemctl where
systemd runs, and through the installed SysV script elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from test_daemon import wait_exit

import whitegoodsd
from whitegoodsd import config as configuration

from conftest import ROOT, WAIT, SyslogListener, need, need_program

PACKAGE = "whitegoodsd"
PROGRAM = Path("/usr/bin/whitegoodsd")
CONFIG = Path("/etc/whitegoodsd.ini")
DEFAULTS = Path("/etc/default/whitegoodsd")
SCRIPT = Path("/etc/init.d/whitegoodsd")
UNIT = Path("/lib/systemd/system/whitegoodsd.service")
STATE_DIR = Path("/var/lib/whitegoodsd")
STATE_FILE = STATE_DIR / "state.json"
PIDFILE = Path("/run/whitegoodsd/whitegoodsd.pid")
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
# At least these (dh_python3 adds those of setup.cfg's install_requires).
DEPENDS = ["adduser", "python3-cryptography", "python3-daemon", "python3-lockfile"]
TOOLS = "apt-get install dpkg-dev debhelper dh-python (./run test installs them as root)"
# Debian's tools and python3 for the packaging commands, whatever venv runs the tests.
SYSTEM = {
    **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
}
# Waits on another run's dpkg or apt-get rather than failing at once.
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]


def run(
    *args: str | Path, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A command with Debian's PATH; with ``check``, its success is asserted."""
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=SYSTEM, cwd=cwd
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


def status(package: str) -> str:
    """dpkg's status of ``package``: "install ok installed", or "" if it has none."""
    result = run("dpkg-query", "-W", "-f=${Status}", package, check=False)
    return result.stdout if result.returncode == 0 else ""


# -- the build ------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    deb: Path
    changes: Path
    tree_before: str  # ``git status`` of the source tree before and after
    tree_after: str


def tree_status() -> str:
    if shutil.which("git") is None:
        return ""
    return run("git", "-C", ROOT, "status", "--porcelain", "--ignored", check=False).stdout


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    need_program("dpkg-buildpackage", TOOLS)
    need_program("dpkg-checkbuilddeps", TOOLS)
    unmet = run("dpkg-checkbuilddeps", cwd=ROOT, check=False)
    need(unmet.returncode == 0, f"{unmet.stderr.strip()} ({TOOLS})")
    out = tmp_path_factory.mktemp("deb")
    before = tree_status()
    result = run(ROOT / "run", "deb", out, check=False)
    log = out / "build.log"
    assert result.returncode == 0, result.stderr + (log.read_text() if log.exists() else "")
    (deb,) = out.glob("whitegoodsd_*_all.deb")
    (changes,) = out.glob("whitegoodsd_*.changes")
    return Build(deb, changes, before, tree_status())


def contents(deb: Path) -> dict[str, str]:
    """Every path in the package ("/etc/..."), with its mode string."""
    listing = run("dpkg-deb", "--contents", deb).stdout
    return {
        fields[5].removeprefix(".").rstrip("/") or "/": fields[0]
        for fields in (line.split(maxsplit=5) for line in listing.splitlines())
    }


def test_the_package_is_built_in_a_copy_leaving_the_tree_as_it_was(build: Build) -> None:
    assert build.tree_after == build.tree_before
    assert build.deb.name == f"whitegoodsd_{whitegoodsd.__version__}_all.deb"
    version = run("dpkg-parsechangelog", "-l", ROOT / "debian" / "changelog", "-S", "Version")
    assert version.stdout.strip() == whitegoodsd.__version__


def test_lintian_finds_no_error_and_no_warning(build: Build) -> None:
    lintian = need_program("lintian", "apt-get install lintian")
    result = run(lintian, "--pedantic", "--display-info", build.changes, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == [], result.stdout


def test_the_package_holds_the_daemon_its_pages_and_its_service_files(build: Build) -> None:
    paths = contents(build.deb)
    for path in [
        "/usr/bin/whitegoodsd",
        "/usr/lib/python3/dist-packages/whitegoodsd/monitor.py",
        "/usr/share/man/man8/whitegoodsd.8.gz",
        "/usr/share/man/man5/whitegoodsd.ini.5.gz",
        "/etc/whitegoodsd.ini",
        "/etc/default/whitegoodsd",
        "/etc/init.d/whitegoodsd",
        "/lib/systemd/system/whitegoodsd.service",
        "/usr/share/doc/whitegoodsd/README.Debian",
        "/usr/share/doc/whitegoodsd/copyright",
        "/usr/share/doc/whitegoodsd/examples/whitegoodsd.ini.example",
        "/usr/share/doc/whitegoodsd/examples/rsyslog/whitegoodsd-anchored.conf",
        "/usr/share/doc/whitegoodsd/examples/hooks/whitegoodsd-hook",
        "/usr/share/doc/whitegoodsd/examples/prometheus/alerts.yml",
    ]:
        assert path in paths, path
    assert paths["/usr/bin/whitegoodsd"] == "-rwxr-xr-x"
    assert paths["/etc/init.d/whitegoodsd"] == "-rwxr-xr-x"
    # pip's data_files are installed the Debian way instead, not twice.
    assert not [p for p in paths if p.startswith(("/usr/share/doc/whitegoodsd/init", "/usr/local"))]
    # The user's files, kept by upgrades; the state directory is made by postinst.
    conffiles = run("dpkg-deb", "--info", build.deb, "conffiles").stdout.split()
    assert sorted(conffiles) == ["/etc/default/whitegoodsd", "/etc/init.d/whitegoodsd",
                                 "/etc/whitegoodsd.ini"]  # fmt: skip
    assert not [p for p in paths if p.startswith("/var")]
    names = depends(build.deb)
    assert set(DEPENDS) <= names, names
    assert "python3:any" in names


def depends(deb: Path) -> set[str]:
    """The names in the package's Depends."""
    field = run("dpkg-deb", "--field", deb, "Depends").stdout
    return {re.sub(r"[\s(].*", "", d.strip()) for d in field.split(",")}


def directives(text: str) -> list[str]:
    """A unit's sections and settings, in order, without comments."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_packaged_service_files_are_the_sources_run_on_the_packaged_paths(
    build: Build, tmp_path: Path
) -> None:
    run("dpkg-deb", "--extract", build.deb, tmp_path)
    source_unit = (ROOT / "init" / "whitegoodsd.service").read_text()
    unit = (tmp_path / UNIT.relative_to("/")).read_text()
    # The only differences: the program's path, and the package's static user
    # (also the SysV script's) instead of a dynamic one.
    expected = [
        line.replace("/usr/local/bin/whitegoodsd", str(PROGRAM))
        for line in directives(source_unit)
        if line != "DynamicUser=yes"
    ]
    expected.insert(expected.index("User=whitegoodsd") + 1, "Group=whitegoodsd")
    assert directives(unit) == expected, "debian/whitegoodsd.service: keep it in step"
    (exec_start,) = [line for line in expected if line.startswith("ExecStart=")]
    assert (
        exec_start
        == f"ExecStart={PROGRAM} --foreground -c ${{CREDENTIALS_DIRECTORY}}/{CONFIG.name}"
    )
    assert f"LoadCredential={CONFIG.name}:{CONFIG}" in expected

    source_script = (ROOT / "init" / "whitegoodsd.init").read_text()
    script = (tmp_path / SCRIPT.relative_to("/")).read_text()
    assert script == source_script.replace(
        "\nDAEMON=/usr/local/bin/whitegoodsd\n", f"\nDAEMON={PROGRAM}\n"
    )
    assert script != source_script
    defaults = (tmp_path / DEFAULTS.relative_to("/")).read_text()
    assert [line for line in directives(defaults)] == ["RUN_AS=whitegoodsd"]


# -- the installed configuration file (no package needed) ----------------------


def idle_config() -> str:
    return run("sh", ROOT / "debian" / "idle-config", ROOT / "whitegoodsd.ini.example").stdout


def test_the_installed_configuration_is_the_example_watching_nothing(tmp_path: Path) -> None:
    text = idle_config()
    path = tmp_path / "whitegoodsd.ini"
    path.write_text(text)
    idle = configuration.load(str(path))
    assert idle.appliances == ()
    assert [w.message for w in idle.warnings] == [
        "names no appliance: nothing is watched until one is added"
    ]
    assert idle.state_file == str(STATE_FILE)
    # What its first lines say to do: take the '#' off, name the appliances.
    enabled = re.sub(r"(?m)^#", "", text).replace(
        "\nappliances =\n", "\nappliances = WASHER, DRYER, DISHWASHER\n"
    )
    watched = configuration.parse(enabled, str(path))
    example = configuration.load(str(ROOT / "whitegoodsd.ini.example"))
    assert replace(watched, path=example.path, state_file=None) == example
    assert [w.message for w in watched.warnings] == [w.message for w in example.warnings]


# -- installed -------------------------------------------------------------------


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Held from installation to purge: one test run at a time installs the package."""
    directory = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    with open(directory / "whitegoodsd-test-debian.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass(frozen=True)
class Installed:
    deb: Path
    files: tuple[str, ...]  # dpkg -L


def purge() -> None:
    if status(PACKAGE):
        run(*APT, "purge", PACKAGE)


@pytest.fixture(scope="module")
def installed(build: Build) -> Iterator[Installed]:
    need(os.geteuid() == 0, "installing the package needs root")
    need_program("apt-get", "a Debian machine")
    # Installed beforehand by ./run, so that installing needs no download.
    wanted = sorted(depends(build.deb) - {"python3:any"})
    missing = [p for p in wanted if status(p) != "install ok installed"]
    need(not missing, f"not installed: {', '.join(missing)} (./run peers installs them as root)")
    with machine_lock():
        need(
            not status(PACKAGE),
            "a whitegoodsd package is installed on this machine: this test installs and "
            "purges its own (dpkg --purge whitegoodsd to let it)",
        )
        try:
            run(*APT, "install", "--no-install-recommends", build.deb)
            files = run("dpkg-query", "--listfiles", PACKAGE).stdout.split()
            yield Installed(build.deb, tuple(files))
        finally:
            purge()


def test_the_program_the_user_and_the_service_links_are_installed(installed: Installed) -> None:
    assert PROGRAM.read_text().startswith("#!/usr/bin/python3\n")
    version = run(PROGRAM, "--version")
    assert version.stdout == f"whitegoodsd {whitegoodsd.__version__}\n"
    where = run(
        "/usr/bin/python3", "-c", "import whitegoodsd; print(whitegoodsd.__file__)", cwd=Path("/")
    )
    assert where.stdout == f"{DIST_PACKAGES}/whitegoodsd/__init__.py\n"
    # ... and the tests still import the source tree's.
    assert Path(whitegoodsd.__file__).is_relative_to(ROOT)

    user = pwd.getpwnam("whitegoodsd")
    assert user.pw_uid < 1000
    assert (user.pw_dir, user.pw_shell) == (str(STATE_DIR), "/usr/sbin/nologin")
    assert grp.getgrgid(user.pw_gid).gr_name == "whitegoodsd"
    state_dir = STATE_DIR.stat()
    assert (state_dir.st_uid, state_dir.st_gid, state_dir.st_mode & 0o7777) == (
        user.pw_uid, user.pw_gid, 0o755,
    )  # fmt: skip

    # Enabled for systemd (whether or not it runs here) and for SysV.
    wants = Path("/etc/systemd/system/multi-user.target.wants/whitegoodsd.service")
    assert os.readlink(wants) == str(UNIT)
    assert list(Path("/etc").glob("rc2.d/S*whitegoodsd"))
    assert list(Path("/etc").glob("rc0.d/K*whitegoodsd"))

    if shutil.which("man", path=SYSTEM["PATH"]):
        assert run("man", "-w", "8", "whitegoodsd").stdout.strip().endswith("whitegoodsd.8.gz")
        assert (
            run("man", "-w", "5", "whitegoodsd.ini").stdout.strip().endswith("whitegoodsd.ini.5.gz")
        )


def test_the_installed_program_finds_nothing_to_watch_in_the_installed_file(
    installed: Installed,
) -> None:
    check = run(PROGRAM, "--check-config")
    assert check.stdout.startswith(f"{CONFIG}: OK, 0 appliance(s)\n")
    assert f"state file {STATE_FILE}" in check.stdout
    assert "names no appliance" in check.stderr
    once = run(PROGRAM, "--once")
    assert once.stdout == ""


def test_systemd_analyze_verify_finds_the_installed_unit_sound(installed: Installed) -> None:
    analyze = need_program("systemd-analyze", "apt-get install systemd")
    # Checks that ExecStart's program exists, among the rest.
    result = run(analyze, "verify", "--man=no", UNIT, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    security = run(analyze, "security", "--offline=yes", "--no-pager", UNIT, check=False)
    match = re.search(r"Overall exposure level for whitegoodsd\.service: ([\d.]+) (\w+)",
                      security.stdout)  # fmt: skip
    assert match and match.group(2) in {"SAFE", "OK"}, security.stdout + security.stderr


# -- a configured appliance, through the service, across an upgrade -------------


class Emulator:
    """``whitegoodsd emulate`` from the source tree: one Kasa plug at a constant power."""

    def __init__(self, watts: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "whitegoodsd", "emulate", "--listen", "127.0.0.1:0",
             "--watts", str(watts), "--name", "WASHER", "--quiet"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("smartplug = "):
                self.address = line.split("=", 1)[1].strip()
                break
        else:
            raise AssertionError("the emulator printed no smartplug line")

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=WAIT)


def configure(text: str, plug: str, syslog_address: str) -> str:
    """The installed file, edited as its first lines say: the WASHER section back."""
    lines = []
    section = ""
    for line in text.splitlines():
        if line.startswith(("[", "#[")):
            section = line.lstrip("#")
        if section == "[WASHER]":
            line = line.removeprefix("#")
        lines.append(line)
    edited = "\n".join(lines) + "\n"
    for old, new in [
        ("\nappliances =\n", "\nappliances = WASHER\n"),
        ("\nsmartplug = 192.0.2.10\n", f"\nsmartplug = {plug}\n"),
        ("\nmonitor_interval = 60\n", "\nmonitor_interval = 0.2\n"),
        (
            "\nmonitor_interval_nothing_running = 60\n",
            "\nmonitor_interval_nothing_running = 0.2\n",
        ),
        ("\nsyslog_address = /dev/log\n", f"\nsyslog_address = {syslog_address}\n"),
        ("\nlog_debug = 0\n", "\nlog_debug = 1\n"),
        ("\nkind = washer\n", "\nkind = washer\nminsamples = 2\nstart_delay = 0\n"),
    ]:
        assert old in edited, old
        edited = edited.replace(old, new, 1)
    return edited


class SysV:
    """The installed SysV script; syslog lines through a socket the daemon's user can reach."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="whitegoodsd-deb-", dir="/tmp"))
        self.directory.chmod(0o755)
        self.syslog = SyslogListener(self.directory / "log.sock")
        self.syslog.path.chmod(0o666)
        self.syslog_address = str(self.syslog.path)

    def restart(self) -> None:
        run(SCRIPT, "restart")

    def wait_text(self, text: str) -> None:
        self.syslog.wait_text(text, new=False)

    def wait_pass(self) -> None:
        """Until a pass has ended after this call (its state file written)."""
        self.syslog.wait_for(lambda m: m.text.startswith("Sleeping "), new=True)

    def pid(self) -> int:
        return int(PIDFILE.read_text())

    def stop(self) -> None:
        run(SCRIPT, "stop")
        assert run(SCRIPT, "status", check=False).returncode == 3

    def close(self) -> None:
        self.syslog.close()
        shutil.rmtree(self.directory)


class Systemd:
    """systemctl; syslog lines through journald (the unit has PrivateTmp=)."""

    syslog_address = "/dev/log"

    def __init__(self) -> None:
        self.journal: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def restart(self) -> None:
        since = f"@{int(time.time())}"
        self.journal = subprocess.Popen(
            ["journalctl", "--follow", "--output=cat", f"--since={since}",
             "--unit=whitegoodsd.service"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=SYSTEM,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.journal,), daemon=True).start()
        run("systemctl", "restart", "whitegoodsd")

    def _read(self, journal: subprocess.Popen[str]) -> None:
        assert journal.stdout is not None
        for line in journal.stdout:
            self.lines.put(line.rstrip("\n"))

    def _wait(self, match: Callable[[str], bool], *, new: bool) -> None:
        """The service's journal lines until one matches (with ``new``, one not yet seen)."""
        seen = [] if new else list(self.seen)
        deadline = time.monotonic() + WAIT
        while not any(match(line) for line in seen):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                lines = "\n".join(self.seen)
                raise AssertionError(f"no matching journal line in {WAIT} s:\n{lines}") from None
            self.seen.append(line)
            seen.append(line)

    def wait_text(self, text: str) -> None:
        self._wait(lambda line: line == text, new=False)

    def wait_pass(self) -> None:
        self._wait(lambda line: line.startswith("Sleeping "), new=True)

    def pid(self) -> int:
        return int(run("systemctl", "show", "--property=MainPID", "--value", "whitegoodsd").stdout)

    def stop(self) -> None:
        run("systemctl", "stop", "whitegoodsd")
        assert run("systemctl", "is-active", "whitegoodsd", check=False).returncode != 0

    def close(self) -> None:
        if self.journal is not None:
            self.journal.terminate()
            self.journal.wait(WAIT)


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


def test_an_appliance_named_by_hand_is_read_watched_and_kept_across_an_upgrade(
    installed: Installed,
) -> None:
    plug = Emulator(watts=42.5)
    service: SysV | Systemd = Systemd() if Path("/run/systemd/system").is_dir() else SysV()
    try:
        CONFIG.write_text(configure(CONFIG.read_text(), plug.address, service.syslog_address))
        check = run(PROGRAM, "--check-config")
        assert check.stdout.startswith(f"{CONFIG}: OK, 1 appliance(s)\n")
        assert (
            f"WASHER: kasa plug at {plug.address}, kind washer, RUNNING after 2 sample(s)"
            in check.stdout
        )
        once = run(PROGRAM, "--once")
        assert re.fullmatch(rf"WASHER  {re.escape(plug.address)}  42\.500 W  .*\n", once.stdout)

        service.restart()
        service.wait_text("WASHER is RUNNING.")
        service.wait_pass()
        pid = service.pid()
        assert uid_of(pid) == pwd.getpwnam("whitegoodsd").pw_uid
        assert STATE_FILE.stat().st_uid == pwd.getpwnam("whitegoodsd").pw_uid
        state = json.loads(STATE_FILE.read_text())
        assert state["appliances"]["WASHER"]["running"] is True
        service.stop()
        wait_exit(pid)

        # An upgrade (the same version again: the maintainer scripts run as
        # for any upgrade) keeps the edited file and the state.
        edited = CONFIG.read_bytes()
        user = pwd.getpwnam("whitegoodsd")
        run(*APT, "install", "--reinstall", "--no-install-recommends", installed.deb)
        assert CONFIG.read_bytes() == edited
        assert pwd.getpwnam("whitegoodsd") == user
        assert json.loads(STATE_FILE.read_text())["appliances"]["WASHER"]["running"] is True
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            service.stop()
        service.close()
        plug.close()


def test_purge_leaves_nothing_behind(installed: Installed) -> None:
    uid = pwd.getpwnam("whitegoodsd").pw_uid
    purge()
    assert status(PACKAGE) == ""
    left = [f for f in installed.files if "whitegoodsd" in f and os.path.lexists(f)]
    assert left == []
    for path in [
        CONFIG,
        DEFAULTS,
        STATE_DIR,
        PIDFILE.parent,
        DIST_PACKAGES / "whitegoodsd",
        Path("/etc/systemd/system/multi-user.target.wants/whitegoodsd.service"),
    ]:
        assert not os.path.lexists(path), path
    assert not list(Path("/etc").glob("rc?.d/*whitegoodsd"))
    assert not list(Path("/var/lib/systemd").glob("deb-systemd-helper-*/**/whitegoodsd*"))
    with pytest.raises(KeyError):
        pwd.getpwnam("whitegoodsd")
    with pytest.raises(KeyError):
        grp.getgrnam("whitegoodsd")
    # No daemon left running as the user that is gone.
    running = [p for p in Path("/proc").glob("[0-9]*") if _uid_or_none(p) == uid]
    assert running == []


def _uid_or_none(process: Path) -> int | None:
    try:
        return uid_of(int(process.name))
    except (FileNotFoundError, ProcessLookupError):
        return None
