"""SIGHUP in the foreground: a changed threshold takes effect, a broken file is refused."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from whitegoodsd.emulator import SettablePower

from conftest import Daemon, KasaSimulator, SyslogListener, write_ini
from kasa_plug import KasaTestPlug


def test_sighup_reloads_and_survives_a_broken_file(
    tmp_path: Path,
    syslog: SyslogListener,
    kasa_simulator: Callable[[str], KasaSimulator],
    daemon: Callable[..., Daemon],
) -> None:
    plug = kasa_simulator("hs110v2")
    plug.set(power=3.0)  # 3,000 mW: below 4,000, above 2,000

    def ini(threshold: str) -> Path:
        return write_ini(
            tmp_path / "whitegoodsd.ini",
            f"""
            [whitegoodsd]
            appliances = WASHER
            monitor_interval = 0.1
            monitor_interval_nothing_running = 0.1
            syslog_address = {syslog.path}
            log_debug = 1
            [WASHER]
            smartplug = 127.0.0.1:{plug.port}
            threshold_running_mw = {threshold}
            minsamples = 2
            """,
        )

    path = ini("4000")
    process = daemon("-f", "-c", str(path))
    syslog.wait_text("WASHER current usage is 3,000 mW; threshold is 4,000 mW")

    ini("not a number")
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_for(lambda m: m.text.startswith("Reload of ") and "failed" in m.text)
    assert any("threshold_running_mw: expected a whole number" in t for t in syslog.texts())
    # Still polling with the old threshold.
    syslog.wait_text("WASHER current usage is 3,000 mW; threshold is 4,000 mW", new=True)

    ini("2000")
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_for(lambda m: m.text.startswith("Reloaded "))
    syslog.wait_text("WASHER is RUNNING.")
    assert process.process.poll() is None
    assert process.stop() == 0


def test_a_daemon_watching_nothing_idles_until_a_reload_names_an_appliance(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    daemon: Callable[..., Daemon],
) -> None:
    plugs.append(plug := KasaTestPlug(SettablePower(6_000)))

    def ini(appliances: str) -> Path:
        return write_ini(
            tmp_path / "whitegoodsd.ini",
            f"""
            [whitegoodsd]
            appliances = {appliances}
            monitor_interval = 0.1
            monitor_interval_nothing_running = 0.1
            syslog_address = {syslog.path}
            log_debug = 1
            [WASHER]
            smartplug = 127.0.0.1:{plug.port}
            threshold_running_mw = 4000
            minsamples = 2
            """,
        )

    process = daemon("-f", "-c", str(ini("")))
    syslog.wait_text("Starting.")
    # A few idle passes: the loop runs, and polls nothing.
    for _ in range(3):
        syslog.wait_for(lambda m: m.text.startswith("Sleeping "), new=True)
    assert plug.served == 0
    assert process.process.poll() is None
    assert "names no appliance" in process.stderr

    ini("WASHER")
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_text("Reloaded " + str(tmp_path / "whitegoodsd.ini") + ": 1 appliance(s).")
    syslog.wait_text("WASHER is RUNNING.")
    assert process.stop() == 0


def test_an_appliance_added_by_a_reload_is_polled_at_once(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    daemon: Callable[..., Daemon],
) -> None:
    plugs.append(plug := KasaTestPlug(SettablePower(1_000)))
    sections = f"[WASHER]\nsmartplug = 127.0.0.1:{plug.port}\nthreshold_running_mw = 4000\n"
    sections += "minsamples = 2\n"

    def ini(appliances: str) -> Path:
        # Idle for an hour between passes: only the reload can bring a poll soon.
        return write_ini(
            tmp_path / "whitegoodsd.ini",
            f"[whitegoodsd]\nappliances = {appliances}\nmonitor_interval = 3600\n"
            f"monitor_interval_nothing_running = 3600\nsyslog_address = {syslog.path}\n"
            f"log_debug = 1\n{sections}",
        )

    process = daemon("-f", "-c", str(ini("")))
    syslog.wait_for(lambda m: m.text.startswith("Sleeping 3,600 seconds"))
    ini("WASHER")
    process.process.send_signal(signal.SIGHUP)
    syslog.wait_text("WASHER polling. Current state: Stopped.")
    assert plug.served == 1 or syslog.wait_text(
        "WASHER current usage is 1,000 mW; threshold is 4,000 mW"
    )
    assert process.stop() == 0
