"""The daemon against the emulated INPLUG: the same syslog lines as with a Kasa plug."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import InplugServer, start_inplug
from whitegoodsd.protocols import broadlink

from conftest import Daemon, LoopThread, SyslogListener, write_ini
from kit import plugs_ini

LOCAL5 = 21
INFO = 6


def ini_for(tmp_path: Path, syslog: SyslogListener, plugs: dict[str, int]) -> Path:
    text = plugs_ini(
        plugs,
        drivers=dict.fromkeys(plugs, "inplug"),
        main={"syslog_address": syslog.path, "timeout": 2, "log_debug": 1},
    )
    return write_ini(tmp_path / "whitegoodsd.ini", text)


@pytest.fixture
def power() -> SettablePower:
    return SettablePower(500)


@pytest.fixture
def emulated(loop_thread: LoopThread) -> Iterator[Callable[..., InplugServer]]:
    started: list[InplugServer] = []

    def start(source: SettablePower, **options: object) -> InplugServer:
        server = loop_thread.run(start_inplug("127.0.0.1", 0, source, **options))  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


def test_one_cycle_gives_one_running_and_one_finished(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    emulated: Callable[..., InplugServer],
    power: SettablePower,
) -> None:
    plug = emulated(power, duplicate=True)
    process = daemon("-f", "-c", str(ini_for(tmp_path, syslog, {"WASHER": plug.port})))
    syslog.wait_text("Starting.")
    syslog.wait_text("WASHER current usage is 500 mW; threshold is 4,000 mW")
    power.set(2_150_000)
    running = syslog.wait_text("WASHER is RUNNING.")
    assert running.facility == LOCAL5 and running.severity == INFO
    assert running.tag == f"whitegoodsd[{process.process.pid}]:"
    power.set(1000)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran "))
    seen = len(syslog.messages)
    syslog.wait_polls("WASHER", 3)
    assert len(syslog.messages) > seen
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert sum(t.startswith("WASHER is FINISHED.") for t in texts) == 1
    assert not [t for t in texts if t.startswith("Error")]
    assert process.stop() == 0
    assert "Exiting on signal." in syslog.texts()


def test_a_plug_restarting_mid_cycle_is_authenticated_again(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    emulated: Callable[..., InplugServer],
    power: SettablePower,
    loop_thread: LoopThread,
) -> None:
    plug = emulated(power, duplicate=True)
    process = daemon("-f", "-c", str(ini_for(tmp_path, syslog, {"DRYER": plug.port})))
    power.set(1_800_000)
    syslog.wait_text("DRYER is RUNNING.")
    loop_thread.call(plug.restart)  # a new session key: the daemon's session is stale
    syslog.wait_polls("DRYER", 3)
    power.set(0)
    syslog.wait_for(lambda m: m.text.startswith("DRYER is FINISHED. Ran "))
    assert process.stop() == 0
    stats = loop_thread.call(lambda: plug.stats)
    assert stats.rejected >= 1 and stats.auths == 2
    texts = syslog.texts()
    assert texts.count("DRYER is RUNNING.") == 1
    assert sum(t.startswith("DRYER is FINISHED.") for t in texts) == 1
    # The new authentication happened inside a poll: no poll failed.
    assert not [t for t in texts if t.startswith("Error")]


def test_once_reads_an_inplug_and_names_a_neo(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    emulated: Callable[..., InplugServer],
) -> None:
    inplug = emulated(SettablePower(57_471))
    neo = emulated(SettablePower(57_471), devtype=broadlink.NEO)
    ini = ini_for(tmp_path, syslog, {"KETTLE": inplug.port, "LAMP": neo.port})
    process = daemon("--once", "-c", str(ini))
    assert process.process.wait(30) == 1  # one plug could not be read
    assert process.process.stdout is not None
    out = process.process.stdout.read().decode().splitlines()
    assert out[0] == f"KETTLE  127.0.0.1:{inplug.port}  57.471 W"
    assert out[1] == (
        f"LAMP    error: 127.0.0.1:{neo.port}: NEO, type 0x2717 cannot measure power; "
        "only type 0x2716 (NEO PRO, INPLUG) has a meter"
    )
