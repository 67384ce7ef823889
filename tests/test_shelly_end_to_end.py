"""The daemon against emulated Shelly (Gen1, Gen2) and Tasmota plugs, with and without passwords."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.detector import EventKind
from whitegoodsd.drivers.tasmota import TasmotaPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.httpserver import HttpServer
from whitegoodsd.emulator.shelly import start_shelly
from whitegoodsd.emulator.tasmota import start_tasmota
from whitegoodsd.monitor import Monitor

from conftest import Daemon, LoopThread, SyslogListener, write_ini

LOCAL5 = 21
PLUGS = {
    "shelly-gen1": ("shelly", lambda *a, **k: start_shelly(*a, gen=1, **k)),
    "shelly-gen2": ("shelly", lambda *a, **k: start_shelly(*a, gen=2, **k)),
    "tasmota": ("tasmota", start_tasmota),
}


def ini_for(
    tmp_path: Path, syslog: SyslogListener, plugs: dict[str, tuple[str, int, str]], **extra: str
) -> Path:
    """An INI file; ``plugs``: name -> (driver, port, extra lines of its section)."""
    main = "".join(f"{k} = {v}\n" for k, v in extra.items())
    sections = "".join(
        f"[{name}]\nsmartplug = 127.0.0.1:{port}\ndriver = {driver}\n"
        f"threshold_running_mw = 4000\nminsamples = 2\n{lines}"
        for name, (driver, port, lines) in plugs.items()
    )
    path = write_ini(
        tmp_path / "whitegoodsd.ini",
        f"[whitegoodsd]\nappliances = {', '.join(plugs)}\nmonitor_interval = 0.1\n"
        f"monitor_interval_nothing_running = 0.1\nsyslog_address = {syslog.path}\n"
        f"timeout = 2\nlog_debug = 1\n{main}\n{sections}",
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def emulated(loop_thread: LoopThread) -> Iterator[Callable[..., HttpServer]]:
    started: list[HttpServer] = []

    def start(kind: str, source: SettablePower, **options: Any) -> HttpServer:
        server: HttpServer = loop_thread.run(PLUGS[kind][1]("127.0.0.1", 0, source, **options))
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


@pytest.mark.parametrize("password", [None, "s3cret pass"], ids=["open", "password"])
@pytest.mark.parametrize("kind", list(PLUGS))
def test_one_cycle_gives_one_running_and_one_finished(
    kind: str,
    password: str | None,
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    emulated: Callable[..., HttpServer],
    loop_thread: LoopThread,
) -> None:
    power = SettablePower(1000)
    plug = emulated(kind, power, password=password)
    lines = f"password = {password}\n" if password else ""
    ini = ini_for(tmp_path, syslog, {"WASHER": (PLUGS[kind][0], plug.port, lines)})
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text("Starting.")
    syslog.wait_polls("WASHER", 1)
    power.set(2_150_000)
    running = syslog.wait_text("WASHER is RUNNING.")
    assert running.facility == LOCAL5
    power.set(1000)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran "))
    syslog.wait_polls("WASHER", 2)
    assert process.stop() == 0
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert sum(t.startswith("WASHER is FINISHED.") for t in texts) == 1
    assert not [t for t in texts if t.startswith("Error")]
    device = loop_thread.call(lambda: plug.device)  # type: ignore[attr-defined]
    if kind == "shelly-gen2" and password:
        # One 401 for the whole run: the nonce was reused poll after poll.
        assert device.challenges == 1 and device.requests >= 8


@pytest.mark.parametrize("kind", list(PLUGS))
def test_a_wrong_password_is_one_line_per_poll(
    kind: str,
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    emulated: Callable[..., HttpServer],
    loop_thread: LoopThread,
) -> None:
    plug = emulated(kind, SettablePower(2_000_000), password="right")
    ini = ini_for(
        tmp_path, syslog, {"DRYER": (PLUGS[kind][0], plug.port, "password = wrong\n")},
        unreachable_after="3",
    )  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text("DRYER is UNREACHABLE.")
    failures = [t for t in syslog.texts() if t.startswith("Error getting current usage for DRYER")]
    assert process.stop() == 0
    expected = {
        "shelly-gen1": "the plug refused the user name or password (HTTP 401)",
        "shelly-gen2": "the plug refused the password (HTTP 401)",
        "tasmota": "plug refused the credentials (Need user=<username>&password=<password>)",
    }[kind]
    assert failures[:3] == [f"Error getting current usage for DRYER: {expected}"] * 3
    device = loop_thread.call(lambda: plug.device)  # type: ignore[attr-defined]
    polls = len(failures)
    # Bounded work per poll: never a tight loop of retries.
    assert device.requests <= 1 + 2 * (polls + 1)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_a_silent_plug_delays_nobody(
    tmp_path: Path,
    syslog: SyslogListener,
    loop_thread: LoopThread,
    emulated: Callable[..., HttpServer],
    silent_port: int,
) -> None:
    shelly_plug = emulated("shelly-gen2", SettablePower(2_000_000), password="pw")
    tasmota_plug = emulated("tasmota", SettablePower(2_000_000))
    ini = ini_for(
        tmp_path, syslog,
        {
            "DEAD": ("shelly", silent_port, ""),
            "WASHER": ("shelly", shelly_plug.port, "password = pw\n"),
            "DRYER": ("tasmota", tasmota_plug.port, ""),
        },
        timeout="3",
    )  # fmt: skip
    config = configuration.load(str(ini))

    async def scenario() -> None:
        monitor = Monitor(config)
        first = asyncio.create_task(monitor.poll_pass())
        # While the dead plug's poll is still open, another poll has been
        # answered: polls run side by side, not one after another.
        await TasmotaPlug("127.0.0.1", tasmota_plug.port, 3).read()
        assert not first.done()
        result = await first
        assert result.failed == ["DEAD"]
        second = await monitor.poll_pass()
        running = sorted(n for n, e in second.events if e.kind is EventKind.RUNNING)
        assert running == ["DRYER", "WASHER"]  # minsamples = 2: on the second pass
        statuses = {s.name: s for s in monitor.statuses()}
        assert statuses["DEAD"].error == "no answer within 3 s"

    asyncio.run(scenario())
