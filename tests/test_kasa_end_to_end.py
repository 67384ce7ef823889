"""The daemon against a real peer: tplink-smarthome-simulator (npm), both reply shapes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.detector import EventKind
from whitegoodsd.drivers.kasa import KasaPlug
from whitegoodsd.monitor import Monitor

from conftest import Daemon, KasaSimulator, SyslogListener, write_ini
from kit import plugs_ini

LOCAL5 = 21
INFO, WARNING = 6, 4


def ini_for(tmp_path: Path, syslog: SyslogListener, plugs: dict[str, int], **extra: str) -> Path:
    text = plugs_ini(plugs, main={"syslog_address": syslog.path, "timeout": 2, **extra})
    return write_ini(tmp_path / "whitegoodsd.ini", text)


@pytest.mark.parametrize("model", ["hs110", "hs110v2"])
def test_one_cycle_gives_one_running_and_one_finished(
    model: str,
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
) -> None:
    plug = kasa_simulator(model)
    ini = ini_for(tmp_path, syslog, {"WASHER": plug.port}, log_debug="1")
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text("Starting.")
    syslog.wait_text("WASHER current usage is 500 mW; threshold is 4,000 mW")
    plug.set(power=2150.0)
    running = syslog.wait_text("WASHER is RUNNING.")
    assert running.facility == LOCAL5 and running.severity == INFO
    assert running.tag == f"whitegoodsd[{process.process.pid}]:"
    plug.set(power=1.0)
    # The statistics follow the unchanging prefix on the same line.
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran 0:00:"))
    # Several more passes at idle power: nothing more is said.
    seen = len(syslog.messages)
    for _ in range(3):
        syslog.wait_for(lambda m: m.text.startswith("WASHER polling"), new=True)
    assert len(syslog.messages) > seen
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert sum(t.startswith("WASHER is FINISHED.") for t in texts) == 1
    assert process.stop() == 0
    assert "Exiting on signal." in syslog.texts()
    # LOG_PERROR: every line also went to stderr with the tag.
    assert f"whitegoodsd[{process.process.pid}]: WASHER is FINISHED." in process.stderr


def test_once_reads_both_shapes(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
) -> None:
    v1, v2 = kasa_simulator("hs110"), kasa_simulator("hs110v2")
    v1.set(power=61.753, voltage=230.837, current=0.451, total=16.323)
    v2.set(power=61.753, voltage=230.837, current=0.451, total=16.323)
    ini = ini_for(tmp_path, syslog, {"V1": v1.port, "V2": v2.port})
    process = daemon("--once", "-c", str(ini))
    assert process.process.wait(30) == 0
    assert process.process.stdout is not None
    out = process.process.stdout.read().decode().splitlines()
    assert out[0].startswith(f"V1  127.0.0.1:{v1.port}  61.753 W  230.8 V  0.451 A  total 16.32")
    # v2 reports integers, floored by the simulator from the same values.
    assert out[1].startswith(f"V2  127.0.0.1:{v2.port}  61.753 W  230.8 V  0.451 A  total 16.32")


@pytest.fixture
def silent_plug() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    yield server.getsockname()[1], accepted
    for conn in accepted:
        conn.close()
    server.close()


def test_a_silent_plug_delays_nobody(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    silent_plug: tuple[int, list[socket.socket]],
) -> None:
    healthy = kasa_simulator("hs110v2")
    healthy.set(power=2000.0)
    dead_port, _ = silent_plug
    ini = ini_for(
        tmp_path, syslog, {"DEAD": dead_port, "WASHER": healthy.port}, timeout="3",
        unreachable_after="2",
    )  # fmt: skip
    config = configuration.load(str(ini))

    async def scenario() -> None:
        monitor = Monitor(config)
        ran: list[str] = []
        monitor.listeners.append(lambda name, event: ran.append(f"{name} {event.kind.value}"))
        first = asyncio.create_task(monitor.poll_pass())
        # While the dead plug's poll is still open, the healthy plug has already
        # been read: polls run concurrently, not one after another.
        reader = KasaPlug("127.0.0.1", healthy.port, 3)
        await reader.read()
        assert not first.done()
        result = await first
        assert result.failed == ["DEAD"] and result.active
        second = await monitor.poll_pass()
        # minsamples = 2: the healthy washer runs after exactly two passes.
        assert ran == ["WASHER RUNNING"]
        assert [name for name, event in second.events if event.kind is EventKind.RUNNING] == [
            "WASHER"
        ]
        statuses = {s.name: s for s in monitor.statuses()}
        assert not statuses["DEAD"].up and statuses["DEAD"].error == "no answer within 3 s"
        assert statuses["WASHER"].up and statuses["WASHER"].running

    from whitegoodsd.outputs import syslog as syslog_output

    syslog_output.setup(str(syslog.path), LOCAL5, debug=False, stderr=False)
    asyncio.run(scenario())
    texts = syslog.texts()
    assert texts.count("Error getting current usage for DEAD: no answer within 3 s") == 2
    assert "DEAD is UNREACHABLE." in texts
    unreachable = next(m for m in syslog.messages if m.text == "DEAD is UNREACHABLE.")
    assert unreachable.severity == WARNING
