"""What a running daemon costs: memory, start-up time, CPU per pass and per idle hour.

A foreground ``whitegoodsd -f`` watches 10 plugs of a farm
(:mod:`benchmarks.plugs`).  Its resident memory is read from /proc after the
first pass and then every 1,000 passes up to ``passes`` (driven fast with a
1 ms interval), its CPU time from /proc as well; the time to the first poll
is from the fork to the farm's first request.  CPU per idle hour at the
default intervals (a pass every 900 s while nothing runs) is extrapolated
from the measured CPU per pass plus what a second daemon, idle at the
default intervals, spends between passes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.passes import ini_text
from benchmarks.plugs import Farm
from benchmarks.plugs import process_cpu as cpu

PLUGS = 10
IDLE_INTERVAL = 900.0  # monitor_interval_nothing_running's default


@dataclass(frozen=True)
class Footprint:
    plugs: int
    passes: int
    first_poll: float  # seconds from the fork to the first request
    rss_start: int  # bytes, after the first pass
    rss_samples: tuple[int, ...]  # bytes, every 1,000 passes
    cpu_per_pass: float  # seconds
    idle_cpu_per_second: float  # between passes, at the default intervals
    idle_seconds: float  # how long that was watched

    @property
    def rss_end(self) -> int:
        return self.rss_samples[-1] if self.rss_samples else self.rss_start

    @property
    def cpu_per_idle_hour(self) -> float:
        return 3600 / IDLE_INTERVAL * self.cpu_per_pass + 3600 * self.idle_cpu_per_second


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_daemon(ini: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "whitegoodsd", "-f", "-c", str(ini)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
        time.sleep(0.02)


def run(passes: int = 10_000, idle_seconds: float = 10.0) -> Footprint:
    with tempfile.TemporaryDirectory() as tmp, Farm(PLUGS) as farm:
        log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        log.bind(f"{tmp}/log.sock")  # syslog lands here; nobody reads it (nothing is said)
        busy = Path(tmp, "busy.ini")
        busy.write_text(
            ini_text(farm.ports, poll_timeout=2.0, interval=0.001, syslog_address=f"{tmp}/log.sock")
        )
        started = time.monotonic()
        daemon = start_daemon(busy)
        try:
            first = wait_requests(farm, PLUGS, daemon)
            assert first is not None
            rss_start = rss(daemon.pid)
            cpu_start = cpu(daemon.pid)
            samples = []
            for thousand in range(1, passes // 1000 + 1):
                wait_requests(farm, PLUGS * (1 + 1000 * thousand), daemon)
                samples.append(rss(daemon.pid))
            served, _ = farm.requests()
            cpu_per_pass = (cpu(daemon.pid) - cpu_start) / ((served - PLUGS) / PLUGS)
        finally:
            stop(daemon)

        idle = Path(tmp, "idle.ini")
        idle.write_text(
            ini_text(
                farm.ports,
                poll_timeout=5.0,
                interval=60.0,
                idle_interval=IDLE_INTERVAL,
                syslog_address=f"{tmp}/log.sock",
            )
        )
        before, _ = farm.requests()
        daemon = start_daemon(idle)
        try:
            wait_requests(farm, before + PLUGS, daemon)
            time.sleep(0.5)  # let the first pass finish and the loop go to sleep
            idle_from = cpu(daemon.pid)
            time.sleep(idle_seconds)
            idle_cpu = (cpu(daemon.pid) - idle_from) / idle_seconds
        finally:
            stop(daemon)
        log.close()
    return Footprint(
        plugs=PLUGS,
        passes=passes,
        first_poll=first - started,
        rss_start=rss_start,
        rss_samples=tuple(samples),
        cpu_per_pass=cpu_per_pass,
        idle_cpu_per_second=idle_cpu,
        idle_seconds=idle_seconds,
    )
