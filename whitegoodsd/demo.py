"""Watch whitegoodsd see a washer, a dryer and a dishwasher through a cycle each.

No hardware and no setup: emulated plugs on free loopback ports replay the
built-in profiles hundreds of times faster than real time, the daemon runs
against them in the foreground (python -m whitegoodsd -f) with detection
settings in readings (emulator.profiles.SETTINGS) and the intervals divided
by the speed, and its syslog lines arrive on a private socket and are shown here.  Each
FINISHED runs a small ``on_finished`` command (``--on-finished`` sets
another), whose output comes back as a line of its own.  The demo ends once
every appliance is FINISHED, with a summary, and removes what it made (a
temporary directory with the INI file and the socket).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import whitegoodsd
from whitegoodsd import exits
from whitegoodsd.cycle import duration_text
from whitegoodsd.emulator.profiles import SETTINGS, Replay, builtin
from whitegoodsd.emulator.serve import PlugServer, Watched, families, ini_text, seconds

DEFAULT_SPEED = 600.0  # ten hours a minute: all three cycles in about 15 s
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = (
    exits.OK,
    exits.FAILURE,
    exits.USAGE,
    exits.INTERRUPTED,
)
STOP_TIMEOUT = 10.0
# Run by /bin/sh on each FINISHED, with the event in its environment.
ON_FINISHED = (
    'echo "$WHITEGOODSD_APPLIANCE $WHITEGOODSD_EVENT at $WHITEGOODSD_AT, '
    'peak $WHITEGOODSD_PEAK_W W"'
)

_TEXTFILE_SHOWN = ("whitegoodsd_appliance_cycles_total", "whitegoodsd_appliance_running")
_LINE = re.compile(r"<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+\[\d+\]:) (.*)", re.DOTALL)


@dataclass
class Appliance:
    """One emulated appliance of the demo and what the daemon said about it."""

    name: str
    family: str
    profile: str
    replay: Replay | None = None
    server: PlugServer | None = None
    running_at: float | None = None  # appliance time, seconds into the cycle
    finished_at: float | None = None
    command_done: bool = False  # its on_finished command's line has come


def appliances() -> list[Appliance]:
    """A washer on a Kasa v2 plug, a dryer on a Tapo P110 (KLAP) or else a Kasa v1,
    a dishwasher on an INPLUG if there is one."""
    dishwasher_plug = "inplug" if "inplug" in families() else "kasa-v2"
    dryer_plug = "tapo" if "tapo" in families() else "kasa-v1"
    return [
        Appliance("WASHER", "kasa-v2", "washer"),
        Appliance("DRYER", dryer_plug, "dryer"),
        Appliance("DISHWASHER", dishwasher_plug, "dishwasher"),
    ]


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 5000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 5000: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--speed",
        type=_speed,
        default=DEFAULT_SPEED,
        metavar="X",
        help=f"replay X times faster than real time (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--on-finished",
        metavar="COMMAND",
        default=ON_FINISHED,
        help="run COMMAND with /bin/sh on each FINISHED, as on_finished in the INI file "
        "(default: an echo of the event's environment; '' for none)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the daemon's debug lines too"
    )


clock = duration_text


class Demo:
    """The running demo: plugs, syslog socket, daemon process."""

    def __init__(
        self, workdir: Path, speed: float, verbose: bool, out: TextIO, on_finished: str = ""
    ) -> None:
        self.workdir = workdir
        self.speed = speed
        self.verbose = verbose
        self.on_finished = on_finished
        self.out = out
        self.appliances = appliances()
        self.started = time.monotonic()
        self.cycle_started: float | None = None
        self.textfile: Path | None = None
        self.daemon: asyncio.subprocess.Process | None = None
        self.daemon_stderr = workdir / "daemon.stderr"
        self._log_socket: socket.socket | None = None
        self._all_finished = asyncio.Event()
        self._starting = asyncio.Event()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def appliance_time(self) -> float:
        if self.cycle_started is None:
            return 0.0
        return (time.monotonic() - self.cycle_started) * self.speed

    # -- setting up -----------------------------------------------------------

    async def start_plugs(self) -> list[Watched]:
        kinds = families()
        watched = []
        for index, appliance in enumerate(self.appliances):
            replay = Replay(builtin(appliance.profile), speed=self.speed)
            family = kinds[appliance.family]
            server = await family.start("127.0.0.1", 0, replay, appliance.name, index, False, None)
            appliance.replay, appliance.server = replay, server
            watched.append(
                Watched(
                    appliance.name, "127.0.0.1", server.port, family.driver,
                    SETTINGS[appliance.profile], tuple(family.ini_options(None)),
                )
            )  # fmt: skip
        return watched

    def open_syslog(self) -> Path:
        path = self.workdir / "log.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        self._log_socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_syslog)
        return path

    def write_ini(self, watched: Sequence[Watched], log_path: Path) -> Path:
        extra = [
            ("syslog_address", str(log_path)),
            ("log_debug", "1" if self.verbose else "0"),
            ("timeout", "2"),
        ]
        if self.on_finished:
            extra.append(("on_finished", self.on_finished))
        if importlib.util.find_spec("whitegoodsd.outputs.textfile") is not None:
            self.textfile = self.workdir / "whitegoodsd.prom"
            extra.append(("textfile", str(self.textfile)))
        ini = self.workdir / "whitegoodsd.ini"
        ini.write_text(ini_text(watched, speed=self.speed, extra=extra))
        ini.chmod(0o600)  # it may hold an emulated plug's password
        return ini

    def _daemon_env(self) -> dict[str, str]:
        # The daemon is run from the same installation as this demo.
        root = str(Path(whitegoodsd.__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "PYTHONPATH": root + (os.pathsep + path if path else ""),
            # It measures on the plugs' clock: its figures in appliance time.
            "WHITEGOODSD_DEMO_SPEED": f"{self.speed:g}",
        }

    async def start_daemon(self, ini: Path) -> None:
        stderr = os.open(self.daemon_stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "whitegoodsd", "-f", "-c", str(ini),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr, env=self._daemon_env(),
            )  # fmt: skip
        finally:
            os.close(stderr)

    # -- running --------------------------------------------------------------

    def _on_syslog(self) -> None:
        assert self._log_socket is not None
        while True:
            try:
                data = self._log_socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._syslog_line(data.decode(errors="replace"))

    def _syslog_line(self, raw: str) -> None:
        match = _LINE.fullmatch(raw.rstrip("\n"))
        if match is None:
            self.say(raw)
            return
        stamp, tag, text = match.group(2), match.group(3), match.group(4)
        if text == "Starting." and self.cycle_started is None:
            # The cycles start with the daemon, so its first pass sees them begin.
            for appliance in self.appliances:
                if appliance.replay is not None:
                    appliance.replay.restart()
            self.cycle_started = time.monotonic()
            self._starting.set()
        self.say(f"  {clock(self.appliance_time()):>8}  {stamp} {tag} {text}")
        for appliance in self.appliances:
            if text == f"{appliance.name} is RUNNING.":
                appliance.running_at = self.appliance_time()
            elif text.startswith(f"{appliance.name} is FINISHED."):
                appliance.finished_at = self.appliance_time()
            elif text.startswith(f"on_finished for {appliance.name}: "):
                appliance.command_done = True
        if all(
            a.finished_at is not None and (a.command_done or not self.on_finished)
            for a in self.appliances
        ):
            self._all_finished.set()

    def expected_wall_seconds(self) -> float:
        """How long the cycles take at this speed, with room for the finish delays."""
        longest = max(builtin(a.profile).duration for a in self.appliances)
        return longest / self.speed

    async def wait_until_finished(self) -> bool:
        assert self.daemon is not None
        finished = asyncio.create_task(self._all_finished.wait())
        exited = asyncio.create_task(self.daemon.wait())
        limit = 30 + 3 * self.expected_wall_seconds()
        try:
            done, _ = await asyncio.wait(
                {finished, exited}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (finished, exited):
                task.cancel()
        if finished in done:
            return True
        if exited in done:
            self.say(f"whitegoodsd demo: the daemon exited early (status {self.daemon.returncode})")
        else:
            self.say(f"whitegoodsd demo: not every appliance FINISHED within {limit:.0f} s")
        return False

    # -- tearing down ---------------------------------------------------------

    async def stop_daemon(self) -> int | None:
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return None
        if daemon.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                daemon.terminate()
            try:
                await asyncio.wait_for(daemon.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    daemon.kill()
                await daemon.wait()
        return daemon.returncode

    async def close(self) -> None:
        await self.stop_daemon()
        if self._log_socket is not None:
            asyncio.get_running_loop().remove_reader(self._log_socket.fileno())
            self._log_socket.close()
            self._log_socket = None
        for appliance in self.appliances:
            if appliance.server is not None:
                await appliance.server.close()
                appliance.server = None

    # -- reporting -----------------------------------------------------------

    def header(self, watched: Sequence[Watched]) -> None:
        self.say(f"whitegoodsd demo: three emulated appliances, played {self.speed:g}x.")
        for appliance, plug in zip(self.appliances, watched, strict=True):
            self.say(
                f"  {appliance.name:<10}  {appliance.profile:<10}  on an emulated "
                f"{appliance.family} plug at {plug.plug}"
            )
        self.say(
            f"The daemon polls them every {seconds(60 / self.speed)} s (a minute of "
            "appliance time)\nwith settings in readings, which keep pace."
        )
        if self.on_finished:
            self.say(f"On each FINISHED it runs: on_finished = {self.on_finished}")
        self.say("Its syslog lines:")

    def summary(self, seconds_taken: float) -> None:
        self.say()
        self.say(f"Summary: every appliance FINISHED, in {seconds_taken:.1f} s. Appliance time:")
        self.say(f"  {'':<10}  {'RUNNING':>8}  {'FINISHED':>8}  {'its run':>8}  {'energy':>8}")
        for a in self.appliances:
            assert a.running_at is not None and a.finished_at is not None
            profile = builtin(a.profile)
            threshold = SETTINGS[a.profile].threshold_running_mw / 1000
            ran = clock(profile.programme_end(threshold))
            energy = f"{profile.cycle_wh / 1000:.2f} kWh"
            self.say(
                f"  {a.name:<10}  {clock(a.running_at):>8}  {clock(a.finished_at):>8}  "
                f"{ran:>8}  {energy:>8}"
            )
        if self.textfile is not None and self.textfile.exists():
            self.say(f"The Prometheus textfile ({self.textfile.name}) said at the end:")
            for line in self.textfile.read_text().splitlines():
                if line.startswith(_TEXTFILE_SHOWN):
                    self.say(f"  {line}")
        self.say("Next: whitegoodsd emulate --profile washer --speed 60 (see --help)")

    def failure_details(self) -> None:
        if self.daemon_stderr.exists():
            text = self.daemon_stderr.read_text(errors="replace").strip()
            if text:
                self.say("The daemon's stderr:")
                for line in text.splitlines()[-20:]:
                    self.say(f"  {line}")


async def run(demo: Demo) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    began = time.monotonic()
    try:
        watched = await demo.start_plugs()
        ini = demo.write_ini(watched, demo.open_syslog())
        demo.header(watched)
        await demo.start_daemon(ini)
        if not await demo.wait_until_finished():
            demo.failure_details()
            return EXIT_FAILURE
        status = await demo.stop_daemon()
        if status != 0:
            demo.say(f"whitegoodsd demo: the daemon exited with status {status}")
            demo.failure_details()
            return EXIT_FAILURE
        demo.summary(time.monotonic() - began)
        return EXIT_OK
    except asyncio.CancelledError:
        if not interrupted:
            raise
        demo.say("whitegoodsd demo: interrupted; cleaning up")
        return EXIT_INTERRUPTED
    finally:
        await demo.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="whitegoodsd-demo-"))
    try:
        demo = Demo(workdir, args.speed, args.verbose, sys.stdout, args.on_finished)
        try:
            return asyncio.run(run(demo))
        except OSError as exc:
            print(f"whitegoodsd demo: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
