"""Syslog output: the lines that users' rsyslog rules match.

Messages leave as the C library's ``syslog(3)`` would send them with
``openlog("whitegoodsd", LOG_PID | LOG_PERROR, facility)``: ``<PRI>`` then an
RFC 3164 timestamp, then the tag ``whitegoodsd[PID]: `` and the text.  To a
remote ``HOST:PORT`` over UDP the hostname goes in as well.  In the foreground
every line is also copied to stderr, as LOG_PERROR did.

The tag matters: without ``whitegoodsd[PID]: `` rsyslog would take the
appliance name for the program name and ``contains`` rules stop firing.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import sys
import time
from typing import TextIO

IDENT = "whitegoodsd"
LOGGER_NAME = "whitegoodsd"
STALL_PATIENCE = 0.5  # seconds a full syslog queue may hold up one line

# syslog(3) severities for Python's logging levels.
_SEVERITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def severity(levelno: int) -> int:
    """The syslog severity for a logging level."""
    for level in sorted(_SEVERITY, reverse=True):
        if levelno >= level:
            return _SEVERITY[level]
    return 7


def _timestamp(now: float) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(now))
    # RFC 3164 pads the day with a space, not a zero.
    return stamp[:4] + (" " + stamp[5] if stamp[4] == "0" else stamp[4:6]) + stamp[6:]


class SyslogHandler(logging.Handler):
    """Sends records to a UNIX datagram socket or a UDP address.

    The socket is opened lazily and reopened after a failure; a line that
    fails to send is retried once on a fresh socket, so a restart of the
    syslog daemon costs at most the lines sent while it was down.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = "/dev/log",
        facility: int = 21,  # local5
        ident: str = IDENT,
    ) -> None:
        super().__init__()
        self.address = address
        self.facility = facility
        self.ident = ident
        self.hostname = socket.gethostname().split(".")[0] or "-"
        self._socket: socket.socket | None = None
        self.dropped = 0  # lines not delivered since the last one that was
        self._stalled = False  # the last send found the queue full and stuck

    def _open(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
        else:
            host, port = self.address
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            sock.connect(info[4])
        # Never block the poll loop on a slow or hung syslog daemon: a full
        # socket queue drops the line (and says so once it drains).
        sock.setblocking(False)
        return sock

    def format_packet(self, record: logging.LogRecord) -> bytes:
        """The datagram for ``record``."""
        pri = self.facility * 8 + severity(record.levelno)
        head = f"<{pri}>{_timestamp(record.created)} "
        if not isinstance(self.address, str):
            head += f"{self.hostname} "
        text = self.format(record).replace("\n", " ")
        return f"{head}{self.ident}[{os.getpid()}]: {text}".encode(errors="replace")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            packet = self.format_packet(record)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
            return
        if self._send(packet) and self.dropped:
            dropped, self.dropped = self.dropped, 0
            notice = logging.LogRecord(
                record.name, logging.WARNING, __file__, 0,
                "%d syslog line(s) dropped: the syslog socket was full or gone.",
                (dropped,), None,
            )  # fmt: skip
            self._send(self.format_packet(notice))

    def _send(self, packet: bytes) -> bool:
        """Send one datagram, reopening the socket once; False if it was dropped."""
        for attempt in (1, 2):
            try:
                if self._socket is None:
                    self._socket = self._open()
                self._socket.send(packet)
                self._stalled = False
                return True
            except BlockingIOError:
                # The queue is full.  Give a busy syslog daemon a moment, once;
                # one that stays stuck costs that moment once, not per line.
                if self._stalled or not self._wait_writable(self._socket):
                    self._stalled = True
                    break
            except OSError as exc:
                self.close_socket()
                if attempt == 2 or exc.errno == errno.EMSGSIZE:
                    break  # syslog is down: the stderr copy, if any, still shows it
        self.dropped += 1
        return False

    @staticmethod
    def _wait_writable(sock: socket.socket | None, patience: float = STALL_PATIENCE) -> bool:
        if sock is None:
            return False
        _, writable, _ = select.select([], [sock], [], patience)
        return bool(writable)

    def close_socket(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None

    def close(self) -> None:
        self.close_socket()
        super().close()


class StderrHandler(logging.StreamHandler[TextIO]):
    """The LOG_PERROR copy: ``whitegoodsd[PID]: text`` on stderr."""

    def __init__(self, stream: TextIO | None = None, ident: str = IDENT) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.ident = ident

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.ident}[{os.getpid()}]: {super().format(record)}"


def setup(
    address: str | tuple[str, int],
    facility: int,
    *,
    debug: bool,
    stderr: bool,
) -> logging.Logger:
    """Point the daemon's logger at syslog (and stderr); return it.

    Calling it again (on reload) replaces the handlers.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.addHandler(SyslogHandler(address, facility))
    if stderr:
        logger.addHandler(StderrHandler())
    return logger
