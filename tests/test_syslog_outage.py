"""Nothing lost while syslog is down: the queue, its bound, reconnecting, the state file.

In process the handler meets a socket that is missing, full, or replaced by
another at the same path; as processes the daemon meets a private rsyslogd
that is stopped while an appliance finishes and started again, and a
restart that carries an undelivered event through the state file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from test_rsyslog import Rsyslog, events, wait_lines

from whitegoodsd import notices
from whitegoodsd.emulator import SettablePower
from whitegoodsd.outputs import syslog as output

from conftest import WAIT, Daemon, SyslogListener, parse_syslog, write_ini
from kasa_plug import KasaTestPlug

AN_HOUR_AGO = time.time() - 3600


def record(
    message: str, *args: object, level: int = logging.INFO, at: float | None = None
) -> logging.LogRecord:
    """A log record as the monitor makes it; an event line carries its Notice."""
    made = logging.LogRecord("whitegoodsd", level, __file__, 1, message, args, None)
    if at is not None:
        made.created = at
    text = made.getMessage()
    for kind in notices.EVENTS:
        name, sep, _ = text.partition(f" is {kind}.")
        if sep:
            made.notice = notices.Notice(name, kind, made.created)
    return made


def finished(name: str) -> logging.LogRecord:
    return record("%s is FINISHED.%s", name, " Ran 1:00:00, peak 2,000 W.", at=AN_HOUR_AGO)


def test_events_wait_for_syslog_in_order_with_the_time_they_happened(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    handler = output.SyslogHandler(str(path), 21)
    handler.emit(record("%s is RUNNING.", "WASHER", at=AN_HOUR_AGO - 60))
    handler.emit(record("Error getting current usage for %s: %s", "DRYER", "timed out"))
    handler.emit(finished("WASHER"))
    handler.emit(record("%s is UNREACHABLE.", "DRYER", level=logging.WARNING))
    assert handler.queued() == 4
    assert [line.text for line in handler.pending()] == [
        "WASHER is RUNNING.",
        "WASHER is FINISHED. Ran 1:00:00, peak 2,000 W.",
        "DRYER is UNREACHABLE.",
    ]
    listener = SyslogListener(path)
    try:
        handler.flush()
        messages = listener.drain()
        assert [m.text for m in messages] == [
            "WASHER is RUNNING.",
            "Error getting current usage for DRYER: timed out",
            "WASHER is FINISHED. Ran 1:00:00, peak 2,000 W.",
            "DRYER is UNREACHABLE.",
        ]
        assert messages[2].raw[5:20] == output._timestamp(AN_HOUR_AGO)
        assert messages[3].severity == 4
        assert handler.queued() == 0
    finally:
        handler.close()
        listener.close()


def test_a_new_line_sends_what_waits_first(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    handler = output.SyslogHandler(str(path), 21)
    handler.emit(finished("WASHER"))
    listener = SyslogListener(path)
    try:
        handler.emit(record("%s is RUNNING.", "DRYER"))
        assert [m.text.split(".")[0] for m in listener.drain()] == [
            "WASHER is FINISHED",
            "DRYER is RUNNING",
        ]
    finally:
        handler.close()
        listener.close()


def test_past_the_bound_chatter_goes_first_and_the_notice_names_lost_events(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.sock"
    handler = output.SyslogHandler(str(path), 21, limit=4)
    handler.emit(record("%s is RUNNING.", "WASHER"))
    for n in range(10):
        handler.emit(record("chatter %d", n, level=logging.DEBUG))
    handler.emit(finished("WASHER"))
    assert handler.queued() == 4 and handler.dropped == 8
    listener = SyslogListener(path)
    try:
        handler.flush()
        assert listener.texts() == [
            "8 syslog lines dropped (no events among them)",
            "WASHER is RUNNING.",
            "chatter 8",
            "chatter 9",
            "WASHER is FINISHED. Ran 1:00:00, peak 2,000 W.",
        ]
        listener.messages.clear()
        listener.close()
        path.unlink()
        # Only events now: the oldest of them go.
        for name in ("A", "B", "C", "D", "E", "F"):
            handler.emit(finished(name))
        listener = SyslogListener(path)
        handler.flush()
        assert [m.text.split(" Ran")[0] for m in listener.drain()] == [
            "2 syslog lines dropped, among them: A is FINISHED. B is FINISHED.",
            "C is FINISHED.",
            "D is FINISHED.",
            "E is FINISHED.",
            "F is FINISHED.",
        ]
    finally:
        handler.close()
        listener.close()


def test_a_syslog_socket_replaced_at_the_same_path_gets_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    old = SyslogListener(path)
    handler = output.SyslogHandler(str(path), 21)
    try:
        handler.emit(record("one"))
        assert old.texts() == ["one"]
        # A restarted syslog daemon makes a new socket there; the old one lingers.
        path.unlink()
        new = SyslogListener(path)
        try:
            handler.emit(record("%s is FINISHED.%s", "WASHER", ""))
            assert new.texts() == ["WASHER is FINISHED."]
            assert old.texts() == ["one"]
        finally:
            new.close()
    finally:
        handler.close()
        old.close()


def test_reload_keeps_the_lines_that_wait(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    logger = output.setup(str(path), 21, debug=False, stderr=False)
    logger.info("%s is RUNNING.", "WASHER")
    logger = output.setup(str(path), 21, debug=False, stderr=False)
    listener = SyslogListener(path)
    try:
        logger.info("%s is FINISHED.%s", "WASHER", "")
        assert listener.texts() == ["WASHER is RUNNING.", "WASHER is FINISHED."]
    finally:
        listener.close()
        output.setup(str(path), 21, debug=False, stderr=False)


def test_only_notices_of_events_count_as_events() -> None:
    assert output.is_event(record("%s is RUNNING.", "X"))
    assert output.is_event(record("%s is FINISHED.%s", "X", " Ran 0:00:01."))
    assert output.is_event(record("%s is REACHABLE.", "X"))
    # Words that only look like one never make a line an event.
    assert not output.is_event(
        logging.LogRecord("w", logging.INFO, __file__, 1, "%s", ("Y is FINISHED.",), None)
    )
    failed = record("Error getting current usage for %s: %s", "X", "Y is FINISHED.")
    failed.notice = notices.Notice("X", notices.FAILED, 0.0, reason="Y is FINISHED.")
    assert not output.is_event(failed)


def test_check_config_and_start_warn_of_a_missing_syslog_socket(
    tmp_path: Path, daemon: Callable[..., Daemon]
) -> None:
    ini = write_ini(
        tmp_path / "whitegoodsd.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        syslog_address = {tmp_path / "nowhere.sock"}
        [WASHER]
        smartplug = 127.0.0.1:9
        threshold_running_mw = 4000
        minsamples = 2
        """,
    )
    checked = daemon("--check-config", "-c", str(ini))
    assert checked.process.wait(WAIT) == 0
    warning = f"whitegoodsd: warning: syslog socket {tmp_path / 'nowhere.sock'}:"
    assert warning in checked.stderr
    started = daemon("-f", "-c", str(ini))
    deadline = time.monotonic() + WAIT
    while "Starting." not in started.stderr:
        assert time.monotonic() < deadline, started.stderr
        time.sleep(0.02)
    first = started.stderr.splitlines()[0]
    assert first.startswith(warning) and "kept" in first


def wait_stderr(process: Daemon, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while text not in process.stderr:
        assert process.process.poll() is None, process.stderr
        assert time.monotonic() < deadline, f"no {text!r} in {process.stderr}"
        time.sleep(0.02)


def washer_ini(tmp_path: Path, plug: KasaTestPlug, syslog_path: Path, extra: str = "") -> Path:
    return write_ini(
        tmp_path / "whitegoodsd.ini",
        f"""
        [whitegoodsd]
        appliances = WASHER
        monitor_interval = 0.1
        monitor_interval_nothing_running = 0.1
        syslog_address = {syslog_path}
        {extra}
        [WASHER]
        smartplug = 127.0.0.1:{plug.port}
        threshold_running_mw = 4000
        minsamples = 1
        """,
    )


def test_finished_while_rsyslogd_is_stopped_reaches_the_hook_once_it_is_back(
    tmp_path: Path, plugs: list[KasaTestPlug], daemon: Callable[..., Daemon]
) -> None:
    rsyslog = Rsyslog(tmp_path)
    try:
        power = SettablePower(2_000_000)
        plugs.append(plug := KasaTestPlug(power, "v2"))
        ini = washer_ini(tmp_path, plug, rsyslog.socket)
        rsyslog.start()
        process = daemon("-f", "-c", str(ini))
        wait_lines(rsyslog.seen, lambda ls: "whitegoodsd: WASHER is RUNNING." in ls, "RUNNING")
        rsyslog.stop()
        power.set(500)
        wait_stderr(process, "WASHER is FINISHED.")
        served = plug.served
        while plug.served < served + 3:  # a few passes into the outage
            time.sleep(0.02)
        rsyslog.start()
        lines = wait_lines(
            rsyslog.marker("anchored"),
            lambda ls: "WASHER is FINISHED." in events(ls),
            "FINISHED after the outage",
        )
        assert events(lines) == ["WASHER is FINISHED."]
        seen = wait_lines(
            rsyslog.seen,
            lambda ls: "whitegoodsd: WASHER is FINISHED." in events(ls),
            "FINISHED in the log",
        )
        assert [line for line in events(seen) if " is " in line] == [
            "whitegoodsd: WASHER is RUNNING.",
            "whitegoodsd: WASHER is FINISHED.",
        ]
        assert process.stop() == 0
    finally:
        rsyslog.stop()


def test_an_undelivered_event_survives_a_restart_in_the_state_file(
    tmp_path: Path, plugs: list[KasaTestPlug], daemon: Callable[..., Daemon]
) -> None:
    power = SettablePower(2_000_000)
    plugs.append(plug := KasaTestPlug(power, "v2"))
    state_file = tmp_path / "state.json"
    socket_path = tmp_path / "log.sock"
    ini = washer_ini(tmp_path, plug, socket_path, f"state_file = {state_file}")
    first = daemon("-f", "-c", str(ini))
    wait_stderr(first, "WASHER is RUNNING.")
    assert first.stop() == 0
    saved = json.loads(state_file.read_text())["syslog"]
    assert [line["text"] for line in saved] == ["WASHER is RUNNING."]
    listener = SyslogListener(socket_path)
    try:
        second = daemon("-f", "-c", str(ini))
        running = listener.wait_text("WASHER is RUNNING.")
        assert running.raw[5:20] == output._timestamp(saved[0]["at"])
        listener.wait_text("Starting.")
        assert second.stop() == 0
        assert "syslog" not in json.loads(state_file.read_text())
        assert [m.text for m in listener.drain()].count("WASHER is RUNNING.") == 1
    finally:
        listener.close()


def test_parse_round_trip_of_a_restored_line() -> None:
    handler = output.SyslogHandler("/nonexistent/log.sock", 21)
    line = output.Line(AN_HOUR_AGO, 6, "WASHER is FINISHED.", event=True)
    message = parse_syslog(handler.format_packet(line).decode())
    assert (message.severity, message.text) == (6, "WASHER is FINISHED.")


def test_a_backlog_sent_into_a_slow_reader_stalls_the_loop_once(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    listener = SyslogListener(path)  # reads only when the test says
    handler = output.SyslogHandler(str(path), 21)
    try:
        line = record("x" * 200)
        while handler.queued() < 10:  # the socket is full, and lines wait
            handler.emit(line)
        assert handler.waits == 1
        listener.sock.recv(65536)  # room for one line
        handler.emit(line)  # sends one from the backlog, then finds it full again
        assert handler.waits == 1  # the same stall: no second wait
        while handler.queued():
            listener.drain()
            listener.messages.clear()
            handler.flush()
        handler.emit(line)
        assert handler.waits == 1 and handler.queued() == 0
    finally:
        handler.close()
        listener.close()
