"""The daemon against emulated KLAP plugs: a Tapo P110 and a new-firmware Kasa KP115."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from whitegoodsd.drivers._klap import TPAP_REFUSAL
from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.kasa import KasaDevice
from whitegoodsd.emulator.klap import KlapServer, start_klap
from whitegoodsd.emulator.smart import SmartDevice

from conftest import Daemon, LoopThread, SyslogListener, write_ini

USER, PASSWORD = "owner@example.com", "Correct Horse"


class Clock:
    """The emulated plug's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ini_for(tmp_path: Path, syslog: SyslogListener, sections: dict[str, str], **main: str) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in main.items())
    body = "".join(
        f"[{name}]\n{lines}threshold_running_mw = 4000\nminsamples = 2\n\n"
        for name, lines in sections.items()
    )
    path = write_ini(
        tmp_path / "whitegoodsd.ini",
        f"[whitegoodsd]\nappliances = {', '.join(sections)}\nmonitor_interval = 0.1\n"
        f"monitor_interval_nothing_running = 0.1\nsyslog_address = {syslog.path}\n"
        f"timeout = 2\nlog_debug = 1\nusername = {USER}\n{extra}\n{body}",
    )
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def klap_plug(loop_thread: LoopThread) -> Iterator[Callable[..., KlapServer]]:
    started: list[KlapServer] = []

    def start(device: Any, **options: Any) -> KlapServer:
        options.setdefault("username", USER)
        options.setdefault("password", PASSWORD)
        server = loop_thread.run(start_klap("127.0.0.1", 0, device, **options))
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.close())


def test_a_tapo_and_a_klap_kasa_plug_each_give_one_running_and_one_finished(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    klap_plug: Callable[..., KlapServer],
) -> None:
    washer, dryer = SettablePower(500), SettablePower(500)
    tapo = klap_plug(SmartDevice(washer), version=2)
    kasa = klap_plug(KasaDevice(dryer), version=1)
    ini = ini_for(tmp_path, syslog, {
        "WASHER": f"smartplug = 127.0.0.1:{tapo.port}\ndriver = tapo\n",
        "DRYER": f"smartplug = 127.0.0.1:{kasa.port}\nprotocol = klap\n",
    }, password=PASSWORD)  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    syslog.wait_text("WASHER: KLAP v2 session with the configured credentials.")
    syslog.wait_text("DRYER: KLAP v1 session with the configured credentials.")
    syslog.wait_text("WASHER current usage is 500 mW; threshold is 4,000 mW")
    washer.set(2_150_000)
    dryer.set(1_800_000)
    syslog.wait_text("WASHER is RUNNING.")
    syslog.wait_text("DRYER is RUNNING.")
    washer.set(1000)
    dryer.set(0)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran "))
    syslog.wait_for(lambda m: m.text.startswith("DRYER is FINISHED. Ran "))
    assert process.stop() == 0
    texts = syslog.texts()
    for name in ("WASHER", "DRYER"):
        assert texts.count(f"{name} is RUNNING.") == 1
        assert sum(t.startswith(f"{name} is FINISHED.") for t in texts) == 1
    assert not [t for t in texts if t.startswith("Error")]
    # one session each for the whole run
    assert (tapo.handshakes, kasa.handshakes) == (1, 1)
    assert "holds a password" not in process.stderr


def test_a_session_that_ends_mid_run_is_made_again_with_no_failed_poll(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    klap_plug: Callable[..., KlapServer],
    loop_thread: LoopThread,
) -> None:
    power, clock = SettablePower(500), Clock()
    # The plug says a day, but its sessions end after 60 s of its own clock.
    plug = klap_plug(SmartDevice(power), lifetime=60, advertised=86_400, clock=clock)
    ini = ini_for(tmp_path, syslog, {"WASHER": f"smartplug = 127.0.0.1:{plug.port}\n"
                                               "driver = tapo\n"}, password=PASSWORD)  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    power.set(2_000_000)
    syslog.wait_text("WASHER is RUNNING.")
    for _ in range(2):
        loop_thread.call(lambda: setattr(clock, "now", clock.now + 61))
        syslog.wait_polls("WASHER", 3)
    loop_thread.call(plug.forget)  # and once as a plug that restarted
    syslog.wait_polls("WASHER", 3)
    power.set(0)
    syslog.wait_for(lambda m: m.text.startswith("WASHER is FINISHED. Ran "))
    assert process.stop() == 0
    assert loop_thread.call(lambda: plug.handshakes) == 4
    texts = syslog.texts()
    assert not [t for t in texts if t.startswith("Error")]
    assert texts.count("WASHER is RUNNING.") == 1


def test_a_wrong_password_is_one_clear_line_per_poll_and_never_running(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    klap_plug: Callable[..., KlapServer],
) -> None:
    plug = klap_plug(SmartDevice(SettablePower(2_000_000)))
    ini = ini_for(tmp_path, syslog, {"WASHER": f"smartplug = 127.0.0.1:{plug.port}\n"
                                               "driver = tapo\npassword = wrong\n"},
                  unreachable_after="10")  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    line = (
        "Error getting current usage for WASHER: the plug refused the username and password "
        "(and every default credential)"
    )
    for _ in range(4):
        syslog.wait_text(line, new=True)
    assert process.stop() == 0
    texts = syslog.texts()
    polls = sum(t.startswith("WASHER polling") for t in texts)
    assert texts.count(line) in (polls, polls - 1)  # the last poll may still be under way
    assert not [t for t in texts if "RUNNING" in t]
    assert plug.handshakes == 0


def test_the_default_credentials_are_said_at_debug_level(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    klap_plug: Callable[..., KlapServer],
) -> None:
    plug = klap_plug(SmartDevice(SettablePower(0)), username="test@tp-link.net", password="test")
    ini = ini_for(tmp_path, syslog, {"KETTLE": f"smartplug = 127.0.0.1:{plug.port}\n"
                                               "driver = tapo\n"}, password=PASSWORD)  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    note = syslog.wait_text("KETTLE: KLAP v2 session with the default TAPO credentials.")
    assert note.severity == 7  # debug
    syslog.wait_polls("KETTLE", 2)
    assert process.stop() == 0


def test_tpap_firmware_is_its_one_line_per_poll(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    klap_plug: Callable[..., KlapServer],
    loop_thread: LoopThread,
) -> None:
    plug = klap_plug(SmartDevice(SettablePower(2_000_000)), tpap=True)
    ini = ini_for(tmp_path, syslog, {"PLUG": f"smartplug = 127.0.0.1:{plug.port}\n"
                                             "driver = tapo\n"},
                  password=PASSWORD, unreachable_after="10")  # fmt: skip
    process = daemon("-f", "-c", str(ini))
    line = f"Error getting current usage for PLUG: {TPAP_REFUSAL}"
    for _ in range(3):
        syslog.wait_text(line, new=True)
    assert process.stop() == 0
    texts = syslog.texts()
    polls = sum(t.startswith("PLUG polling") for t in texts)
    # one handshake1 per poll: no retries faster than the poll interval
    assert loop_thread.call(lambda: plug.refused) <= polls
    assert texts.count(line) >= 3
    assert 'switch on "Third-Party Compatibility" in the Tapo app' in line
