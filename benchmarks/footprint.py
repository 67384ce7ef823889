"""What a running daemon costs: memory, start-up time, CPU per pass and per idle hour.

A foreground ``whitegoodsd -f`` watches 10 Kasa plugs of a farm
(:mod:`benchmarks.plugs`), and again with an INPLUG and the textfile output
as well.  Its resident memory is read from /proc after the first pass and
then every 1,000 passes up to ``passes`` (driven fast with a 1 ms interval);
the time to the first poll is from the fork to the farm's first request (the
median of a few starts), with the CPU time the daemon had used by then (read
just after, so a little over) as a figure that other load on the machine
does not inflate as much.

Idle, the daemon sleeps between passes and a pass finds cold caches.  That is
measured as it is: a daemon polling every ``idle_sleep`` seconds is watched
for a few passes, its CPU time read from /proc/PID/task/*/schedstat (in
nanoseconds) every 20 ms, and each pass's CPU told from the CPU between
passes by the farm's request counter.  CPU per idle hour at the default
intervals (a pass every 900 s while nothing runs) is 4 such passes plus an
hour of the CPU between passes.

``whitegoodsd --once`` is timed as a whole process too: start, imports, one
poll of each plug, exit.

The daemon runs as installed: from byte-compiled modules (an installed
package is compiled when it is installed), kept in a cache of the run's own
(PYTHONPYCACHEPREFIX) whatever PYTHONDONTWRITEBYTECODE says, and filled by
a first start that is not counted.
"""

from __future__ import annotations

import itertools
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.passes import ini_text
from benchmarks.plugs import Farm
from benchmarks.plugs import process_cpu as cpu

PLUGS = 10
IDLE_INTERVAL = 900.0  # monitor_interval_nothing_running's default
STARTS = 5  # starts timed for the time to the first poll
SAMPLE = 0.02  # seconds between CPU samples of the idle daemon
AFTER_PASS = 0.3  # seconds after a pass's last request still counted as the pass


@dataclass(frozen=True)
class Footprint:
    """A busy daemon: memory and CPU per pass."""

    label: str
    plugs: int
    passes: int
    first_poll: float  # seconds from the fork to the first request (median)
    first_poll_cpu: float  # CPU seconds the daemon had used by then (median, a little over)
    rss_start: int  # bytes, after the first pass
    rss_samples: tuple[int, ...]  # bytes, every 1,000 passes
    cpu_per_pass: float  # seconds

    @property
    def rss_end(self) -> int:
        return self.rss_samples[-1] if self.rss_samples else self.rss_start

    @property
    def rss_max(self) -> int:
        return max((self.rss_start, *self.rss_samples))


@dataclass(frozen=True)
class Idle:
    """A daemon that sleeps between passes."""

    plugs: int
    sleep: float  # seconds between passes
    passes: tuple[float, ...]  # CPU seconds of each pass after a sleep
    between: float  # CPU seconds per second between passes
    watched: float  # seconds watched between passes

    @property
    def cold_pass(self) -> float:
        return statistics.median(self.passes)

    @property
    def per_idle_hour(self) -> float:
        return 3600 / IDLE_INTERVAL * self.cold_pass + 3600 * self.between


@dataclass(frozen=True)
class Once:
    """``whitegoodsd --once`` as a process."""

    plugs: int
    wall: float  # seconds, median
    cpu: float  # seconds, median


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU, every thread of ``pid`` summed."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


ENV: dict[str, str] = {}  # the daemon's environment: set by run()


def installed_env(tmp: str) -> dict[str, str]:
    """This environment, with byte-code written to and read from a cache under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"
    return env


def start_daemon(ini: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", *args, "-c", str(ini)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV or None,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_requests(farm: Farm, at_least: int, process: subprocess.Popen[bytes]) -> float | None:
    """Poll the farm's counter until ``at_least`` requests; the first one's time."""
    deadline = time.monotonic() + 600
    while True:
        served, first = farm.requests()
        if served >= at_least:
            return first
        if process.poll() is not None:
            raise RuntimeError(f"the daemon exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {served} of {at_least} requests within 600 s")
        time.sleep(0.005)


class Setup:
    """A configuration for the daemon in a temporary directory, syslog going nowhere."""

    def __init__(self, tmp: str, farm: Farm) -> None:
        self.tmp = tmp
        self.farm = farm
        self.log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.log.bind(f"{tmp}/log.sock")  # syslog lands here; nobody reads it

    def ini(
        self,
        name: str,
        poll_timeout: float,
        interval: float = 60.0,
        idle_interval: float | None = None,
        *,
        inplugs: bool = False,
        textfile: bool = False,
    ) -> Path:
        path = Path(self.tmp, name)
        path.write_text(
            ini_text(
                self.farm.ports,
                poll_timeout,
                interval,
                idle_interval,
                syslog_address=f"{self.tmp}/log.sock",
                inplug_ports=self.farm.inplugs if inplugs else [],
                textfile=f"{self.tmp}/whitegoodsd.prom" if textfile else None,
            )
        )
        return path

    def close(self) -> None:
        self.log.close()


def busy(setup: Setup, label: str, ini: Path, plugs: int, passes: int) -> Footprint:
    """Start the daemon a few times for the first poll, then drive ``passes`` passes."""
    farm = setup.farm
    firsts, first_cpus = [], []
    for start in range(-1, STARTS):  # start -1 fills the byte-code cache
        before, _ = farm.requests()
        started = time.monotonic()
        daemon = start_daemon(ini, "-f")
        try:
            wait_requests(farm, before + 1, daemon)
            if start >= 0:
                firsts.append(time.monotonic() - started)
                first_cpus.append(cpu_ns(daemon.pid) / 1e9)
            if start < STARTS - 1:
                continue
            wait_requests(farm, before + plugs, daemon)
            rss_start = rss(daemon.pid)
            cpu_start = cpu(daemon.pid)
            served_start, _ = farm.requests()
            samples = []
            for thousand in range(1, passes // 1000 + 1):
                wait_requests(farm, served_start + plugs * 1000 * thousand, daemon)
                samples.append(rss(daemon.pid))
            served, _ = farm.requests()
            cpu_per_pass = (cpu(daemon.pid) - cpu_start) / max(1, (served - served_start) / plugs)
        finally:
            stop(daemon)
    return Footprint(
        label=label,
        plugs=plugs,
        passes=passes,
        first_poll=statistics.median(firsts),
        first_poll_cpu=statistics.median(first_cpus),
        rss_start=rss_start,
        rss_samples=tuple(samples),
        cpu_per_pass=cpu_per_pass,
    )


def idle(setup: Setup, ini: Path, sleep: float, passes: int) -> Idle:
    """Watch a daemon that polls every ``sleep`` seconds for ``passes`` passes."""
    farm, plugs = setup.farm, len(setup.farm.ports)
    before, _ = farm.requests()
    daemon = start_daemon(ini, "-f")
    try:
        wait_requests(farm, before + plugs, daemon)
        time.sleep(AFTER_PASS)  # the first pass (imports, first connections) is not idle
        base, _ = farm.requests()
        goal = base + passes * plugs
        samples: list[tuple[float, int, int]] = []  # (time, CPU ns, requests)
        deadline = time.monotonic() + passes * sleep + 60
        last_request = None
        while time.monotonic() < deadline:
            served, _ = farm.requests()
            now = time.monotonic()
            samples.append((now, cpu_ns(daemon.pid), served))
            if served >= goal:
                last_request = last_request or now
                if now - last_request > AFTER_PASS:
                    break
            time.sleep(SAMPLE)
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with status {daemon.returncode}")
    finally:
        stop(daemon)
    return split_passes(samples, base, plugs, sleep)


def split_passes(
    samples: Sequence[tuple[float, int, int]], base: int, plugs: int, sleep: float
) -> Idle:
    """Each pass's CPU and the CPU rate in between, from (time, CPU ns, requests)
    samples.  An interval between two samples belongs to a pass if requests
    came in it, if they came in the next one (the pass started before its
    first request was served) or if they came less than AFTER_PASS before it
    (what the daemon does with the readings)."""
    intervals = list(itertools.pairwise(samples))
    owner: list[int | None] = [None] * len(intervals)
    last_rise, current = -AFTER_PASS, 0
    for i, ((_, _, r0), (t1, _, r1)) in enumerate(intervals):
        if r1 > r0:
            last_rise, current = t1, (r1 - base - 1) // plugs
            owner[i] = current
            if i and owner[i - 1] is None:
                owner[i - 1] = current
        elif intervals[i][0][0] - last_rise <= AFTER_PASS:
            owner[i] = current
    cpu_of: dict[int, float] = {}
    between_cpu = between_time = 0.0
    for ((t0, c0, _), (t1, c1, _)), pass_ in zip(intervals, owner, strict=True):
        if pass_ is None:
            between_cpu += (c1 - c0) / 1e9
            between_time += t1 - t0
        else:
            cpu_of[pass_] = cpu_of.get(pass_, 0.0) + (c1 - c0) / 1e9
    return Idle(
        plugs=plugs,
        sleep=sleep,
        passes=tuple(cpu_of[k] for k in sorted(cpu_of)),
        between=between_cpu / between_time if between_time else 0.0,
        watched=between_time,
    )


def once(setup: Setup, ini: Path, runs: int = STARTS) -> Once:
    """``whitegoodsd --once`` as a whole process, ``runs`` times."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "whitegoodsd", "--once", "-c", str(ini)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            env=ENV or None,
        )
        walls.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return Once(len(setup.farm.ports), statistics.median(walls), statistics.median(cpus))


def run(
    passes: int = 10_000, idle_sleep: float = 30.0, idle_passes: int = 3
) -> tuple[list[Footprint], Idle, Once]:
    with tempfile.TemporaryDirectory() as tmp, Farm(PLUGS, inplugs=1) as farm:
        setup = Setup(tmp, farm)
        ENV.update(installed_env(tmp))
        try:
            kasa = setup.ini("kasa.ini", 2.0, 0.001)
            mixed = setup.ini("mixed.ini", 2.0, 0.001, inplugs=True, textfile=True)
            footprints = [
                busy(setup, f"{PLUGS} Kasa", kasa, PLUGS, passes),
                busy(setup, f"{PLUGS} Kasa + INPLUG + textfile", mixed, PLUGS + 1, passes),
            ]
            sleepy = setup.ini("idle.ini", 5.0, idle_sleep, idle_sleep)
            asleep = idle(setup, sleepy, idle_sleep, idle_passes)
            whole = once(setup, setup.ini("once.ini", 2.0))
        finally:
            ENV.clear()
            setup.close()
    return footprints, asleep, whole
