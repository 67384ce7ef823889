"""The daemon's textfile against real peers: node_exporter, promtool, a busy reader."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from whitegoodsd import __version__

from conftest import WAIT, Daemon, KasaSimulator, SyslogListener, need_program, write_ini
from kit import plugs_ini

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def series(text: str) -> Series:
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def key(name: str, appliance: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return f"whitegoodsd_appliance_{name}", (("appliance", appliance), ("driver", "kasa"))


def ini_for(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: dict[str, int],
    textfile: Path,
    interval: str = "0.1",
    debug: bool = True,
    unreachable_after: int = 1000,
) -> Path:
    text = plugs_ini(
        plugs,
        interval=float(interval),
        main={
            "syslog_address": syslog.path,
            "timeout": 2,
            "unreachable_after": unreachable_after,
            "log_debug": int(debug),
            "textfile": textfile,
        },
    )
    return write_ini(tmp_path / "whitegoodsd.ini", text)


def next_pass(syslog: SyslogListener, name: str) -> None:
    """Return once a new pass starts: everything the previous one wrote is on disk."""
    syslog.wait_for(lambda m: m.text.startswith(f"{name} polling."), new=True)


@pytest.fixture
def refused_port() -> Iterator[Callable[[], int]]:
    """Ports on 127.0.0.1 that refuse connections: bound, never listening.

    Take them after starting the simulators: a simulator binds UDP on a free
    port, then TCP on the same number, which a bound TCP socket may hold.
    """
    held: list[socket.socket] = []

    def take() -> int:
        sock = socket.socket()
        held.append(sock)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

    yield take
    for sock in held:
        sock.close()


# -- node_exporter ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str) -> str:
    # No proxy from the environment: the request stays on 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=WAIT) as response:
        body: bytes = response.read()
    return body.decode()


class NodeExporter:
    """prometheus-node-exporter with only the textfile collector, on 127.0.0.1."""

    def __init__(self, directory: Path, log: Path) -> None:
        binary = need_program(
            "prometheus-node-exporter", "apt-get install prometheus-node-exporter"
        )
        self._log = open(log, "wb")  # noqa: SIM115
        self.log = log
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    f"--collector.textfile.directory={directory}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
            )
            if self._wait_listening():
                return
        raise AssertionError(f"node_exporter did not start:\n{log.read_text()}")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)  # polling a port coming up: there is no event for it
        self.stop()
        return False

    def metrics(self) -> str:
        return fetch(f"http://127.0.0.1:{self.port}/metrics")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[Callable[[Path], NodeExporter]]:
    started: list[NodeExporter] = []

    def start(directory: Path) -> NodeExporter:
        exporter = NodeExporter(directory, tmp_path / "node_exporter.log")
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


def test_node_exporter_serves_what_the_plugs_said(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
    node_exporter: Callable[[Path], NodeExporter],
    refused_port: Callable[[], int],
) -> None:
    washer, dryer = kasa_simulator("hs110"), kasa_simulator("hs110v2")
    washer.set(power=3.217, voltage=230.837, current=0.014, total=16.323)
    dryer.set(power=2150.0, voltage=229.5, current=9.4, total=1.25)
    directory = tmp_path / "textfile"
    directory.mkdir()
    prom = directory / "whitegoodsd.prom"
    plugs = {"WASHER": washer.port, "DRYER": dryer.port, "DEAD": refused_port()}
    daemon("-f", "-c", str(ini_for(tmp_path, syslog, plugs, prom)))
    syslog.wait_text("DRYER is RUNNING.")
    next_pass(syslog, "DRYER")
    exporter = node_exporter(directory)

    got = series(exporter.metrics())
    assert got["node_textfile_scrape_error", ()] == 0
    assert got["node_textfile_mtime_seconds", (("file", str(prom)),)] > 0
    assert got["whitegoodsd_build_info", (("version", __version__),)] == 1

    assert got[key("up", "WASHER")] == 1
    assert got[key("power_watts", "WASHER")] == 3.217
    assert got[key("voltage_volts", "WASHER")] == 230.837
    assert got[key("current_amperes", "WASHER")] == 0.014
    assert got[key("energy_joules_total", "WASHER")] == pytest.approx(16.323 * 3.6e6)
    assert got[key("running", "WASHER")] == 0

    assert got[key("up", "DRYER")] == 1
    assert got[key("power_watts", "DRYER")] == 2150.0
    assert got[key("voltage_volts", "DRYER")] == 229.5
    assert got[key("current_amperes", "DRYER")] == 9.4
    assert got[key("energy_joules_total", "DRYER")] == pytest.approx(1.25 * 3.6e6)
    assert got[key("running", "DRYER")] == 1

    assert got[key("up", "DEAD")] == 0
    assert got[key("running", "DEAD")] == 0
    for name in ("power_watts", "voltage_volts", "current_amperes", "energy_joules_total"):
        assert key(name, "DEAD") not in got
    for name in ("WASHER", "DRYER", "DEAD"):
        assert got[key("cycles_total", name)] == 0
        assert got[key("last_poll_timestamp_seconds", name)] == pytest.approx(time.time(), abs=60)

    # What the plugs serve next is what node_exporter serves after the next pass.
    washer.set(power=0.0)
    syslog.wait_text("WASHER current usage is 0 mW; threshold is 4,000 mW")
    next_pass(syslog, "WASHER")
    assert series(exporter.metrics())[key("power_watts", "WASHER")] == 0


def test_promtool_accepts_the_daemons_file_after_a_cycle(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
    refused_port: Callable[[], int],
) -> None:
    promtool = need_program("promtool", "apt-get install prometheus")
    plug = kasa_simulator("hs110v2")
    prom = tmp_path / "whitegoodsd.prom"
    ini = ini_for(tmp_path, syslog, {"WASHER": plug.port, "DEAD": refused_port()}, prom)
    daemon("-f", "-c", str(ini))
    plug.set(power=2150.0)
    syslog.wait_text("WASHER is RUNNING.")
    plug.set(power=1.0)
    # Cycle figures may follow the period.
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED."))
    next_pass(syslog, "WASHER")
    assert series(prom.read_text())[key("cycles_total", "WASHER")] == 1
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        stdin=prom.open("rb"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == b"" and checked.stderr == b""


# -- atomicity ------------------------------------------------------------------


def wait_for_file(path: Path, syslog: SyslogListener) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        syslog.drain()  # a full syslog socket would stall the daemon
        time.sleep(0.01)


EXPECTED = {
    "whitegoodsd_appliance_up",
    "whitegoodsd_appliance_running",
    "whitegoodsd_appliance_cycles",  # the parser names counter families without _total
    "whitegoodsd_appliance_last_poll_timestamp_seconds",
    "whitegoodsd_build_info",
}


def test_a_reader_never_sees_a_partial_file(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    refused_port: Callable[[], int],
) -> None:
    # Plugs that refuse at once let the daemon rewrite the file as fast as it
    # can, without leaving thousands of closed connections in TIME_WAIT.
    port = refused_port()
    plugs = {f"APPLIANCE{n:02}": port for n in range(10)}
    prom = tmp_path / "whitegoodsd.prom"
    ini = ini_for(tmp_path, syslog, plugs, prom, interval="0.001", debug=False, unreachable_after=1)
    process = daemon("-f", "-c", str(ini))
    wait_for_file(prom, syslog)
    # A version of the file is told by its last poll time, new every pass.
    reads, versions = 0, set[float]()
    deadline = time.monotonic() + 2 * WAIT
    while reads < 3000 or len(versions) < 100:
        assert time.monotonic() < deadline, f"{reads} reads saw only {len(versions)} versions"
        text = prom.read_text()
        reads += 1
        syslog.drain()
        assert text.endswith("\n"), text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert set(families) == EXPECTED, text
        up = families["whitegoodsd_appliance_up"].samples
        assert [s.labels["appliance"] for s in up] == list(plugs)
        polled = families["whitegoodsd_appliance_last_poll_timestamp_seconds"].samples
        assert len(polled) == len(plugs)
        versions.add(polled[-1].value)
    assert process.stop() == 0
    # Every temporary file was renamed away or removed.
    assert [name for name in os.listdir(tmp_path) if "prom" in name] == ["whitegoodsd.prom"]


# -- a directory the daemon cannot write ----------------------------------------


def test_an_unwritable_textfile_costs_one_line_per_pass_and_nothing_else(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
) -> None:
    plug = kasa_simulator("hs110v2")
    directory = tmp_path / "not-yet"
    prom = directory / "whitegoodsd.prom"
    daemon("-f", "-c", str(ini_for(tmp_path, syslog, {"WASHER": plug.port}, prom)))
    error = f"Cannot write textfile {prom}: No such file or directory"
    syslog.wait_text(error)
    plug.set(power=2150.0)
    syslog.wait_text("WASHER is RUNNING.")
    next_pass(syslog, "WASHER")
    # Between two pass starts: exactly one error line.
    texts = syslog.texts()
    starts = [i for i, text in enumerate(texts) if text.startswith("WASHER polling.")]
    assert len(starts) >= 3
    for begin, end in itertools.pairwise(starts):
        assert texts[begin:end].count(error) == 1, texts[begin:end]
    errors = [m for m in syslog.messages if m.text == error]
    assert all(m.severity == 3 for m in errors)  # LOG_ERR
    # Once the directory is there, the file is written and that is said once.
    directory.mkdir()
    syslog.wait_text(f"Textfile {prom} written again.")
    next_pass(syslog, "WASHER")
    assert series(prom.read_text())[key("running", "WASHER")] == 1
    assert os.listdir(directory) == ["whitegoodsd.prom"]
