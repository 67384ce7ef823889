"""The syslog output: the packet format of syslog(3), to a UNIX socket or over UDP."""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

import pytest

from whitegoodsd.outputs import syslog as output

from conftest import SyslogListener, parse_syslog


def test_unix_socket_packets_look_like_syslog3(syslog: SyslogListener) -> None:
    logger = output.setup(str(syslog.path), 21, debug=False, stderr=False)
    logger.info("WASHER is RUNNING.")
    logger.warning("WASHER is UNREACHABLE.")
    logger.debug("not sent without log_debug")
    running = syslog.wait_text("WASHER is RUNNING.")
    assert re.fullmatch(
        rf"<174>[A-Z][a-z]{{2}} [ 1-3]\d \d\d:\d\d:\d\d whitegoodsd\[{os.getpid()}\]: "
        r"WASHER is RUNNING\.",
        running.raw,
    )
    assert syslog.wait_text("WASHER is UNREACHABLE.").severity == 4
    assert "not sent without log_debug" not in syslog.texts()


def test_udp_packets_carry_the_hostname() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(30)
    try:
        handler = output.SyslogHandler(("127.0.0.1", receiver.getsockname()[1]), 16)
        record = logging.LogRecord("whitegoodsd", logging.ERROR, __file__, 1, "x\ny", None, None)
        handler.emit(record)
        raw = receiver.recv(4096).decode()
        handler.close()
    finally:
        receiver.close()
    host = socket.gethostname().split(".")[0]
    assert raw.startswith("<131>")
    assert raw[5 + 16 :] == f"{host} whitegoodsd[{os.getpid()}]: x y"


def test_a_restarted_syslog_daemon_gets_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    first = SyslogListener(path)
    logger = output.setup(str(path), 21, debug=False, stderr=False)
    logger.info("one")
    assert first.wait_text("one").text == "one"
    first.close()
    path.unlink()
    logger.info("lost while syslog is down")  # must not raise
    second = SyslogListener(path)
    try:
        logger.info("two")
        assert second.wait_text("two").text == "two"
    finally:
        second.close()


def test_stderr_copy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    logger = output.setup(str(tmp_path / "nowhere.sock"), 21, debug=True, stderr=True)
    logger.debug("DRYER polling. Current state: Stopped.")
    assert capsys.readouterr().err == (
        f"whitegoodsd[{os.getpid()}]: DRYER polling. Current state: Stopped.\n"
    )


def test_parse_helper_round_trip() -> None:
    message = parse_syslog("<174>Nov  2 03:04:05 whitegoodsd[9]: A is FINISHED.")
    assert (message.facility, message.severity, message.tag) == (21, 6, "whitegoodsd[9]:")


def test_a_full_syslog_socket_queues_lines_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    listener = SyslogListener(path)  # nobody reads it until the end
    try:
        handler = output.SyslogHandler(str(path), 21)
        record = logging.LogRecord("whitegoodsd", logging.INFO, __file__, 1, "x" * 200, None, None)
        sent = 0
        while handler.queued() == 0:  # bounded: the kernel queue is finite
            handler.emit(record)
            sent += 1
            assert sent < 1_000_000
        handler.emit(logging.LogRecord("w", logging.INFO, __file__, 1, "after", None, None))
        assert handler.queued() == 2 and handler.dropped == 0
        texts: list[str] = []
        while handler.queued():
            texts += [m.text for m in listener.drain()]  # make room
            listener.messages.clear()
            handler.flush()
        texts += [m.text for m in listener.drain()]
        assert len(texts) == sent + 1
        assert texts[-1] == "after"
        handler.close()
    finally:
        listener.close()
