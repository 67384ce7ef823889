"""Syslog output: the lines that users' rsyslog rules match, and nothing of them lost.

Messages leave as the C library's ``syslog(3)`` would send them with
``openlog("whitegoodsd", LOG_PID | LOG_PERROR, facility)``: ``<PRI>`` then an
RFC 3164 timestamp, then the tag ``whitegoodsd[PID]: `` and the text.  To a
remote ``HOST:PORT`` over UDP the hostname goes in as well.  In the foreground
every line is also copied to stderr, as LOG_PERROR did.

The tag matters: without ``whitegoodsd[PID]: `` rsyslog would take the
appliance name for the program name and ``contains`` rules stop firing.

When syslog is gone
-------------------
A line that cannot be sent (the socket is missing, refuses, or its queue is
full) waits in a bounded queue, in order, with the time it happened in its
timestamp.  The queue is retried on every new line and by ``flush()``, which
the monitor calls once a pass and at shutdown.  Past ``QUEUE_LIMIT`` lines
the oldest chatter (anything that is not an event) goes first; an event
(``NAME is RUNNING.``, ``FINISHED.``, ``UNREACHABLE.``, ``REACHABLE.``) is
dropped only when nothing else is left to drop.  Once lines get through
again a notice says how many were lost and which events were among them.
``pending()`` and ``restore()`` carry undelivered events through the state
file across a restart.

A syslog daemon restarted at the same path makes a new socket there; the
path's inode is compared with the one connected to on every send and flush,
so lines never go on into a socket nobody reads.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import select
import socket
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

IDENT = "whitegoodsd"
LOGGER_NAME = "whitegoodsd"
STALL_PATIENCE = 0.5  # seconds a full syslog queue may hold up one line
QUEUE_LIMIT = 1000  # lines kept while syslog cannot take them
NAMED_LIMIT = 5  # lost events named in one drop notice

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


def is_event(record: logging.LogRecord) -> bool:
    """Whether ``record`` is one of the event lines that rules match.

    The monitor logs each notice with the Notice itself attached (``extra``),
    so no text a peer sent can pose as an event.
    """
    notice = getattr(record, "notice", None)
    return bool(getattr(notice, "is_event", False))


def _timestamp(now: float) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(now))
    # RFC 3164 pads the day with a space, not a zero.
    return stamp[:4] + (" " + stamp[5] if stamp[4] == "0" else stamp[4:6]) + stamp[6:]


@dataclass(frozen=True)
class Line:
    """One line waiting for syslog."""

    at: float  # when it happened (wall clock): its timestamp
    severity: int
    text: str
    event: bool = False


def socket_problem(address: str | tuple[str, int]) -> str | None:
    """Why lines to ``address`` cannot go out right now, for a start-up warning."""
    if not isinstance(address, str):
        return None
    try:
        mode = os.stat(address).st_mode
    except OSError as exc:
        return (
            f"syslog socket {address}: {exc.strerror}; lines are kept "
            f"(up to {QUEUE_LIMIT:,}) until it appears"
        )
    if not stat.S_ISSOCK(mode):
        return f"syslog address {address} is not a socket"
    return None


class SyslogHandler(logging.Handler):
    """Sends records to a UNIX datagram socket or a UDP address, queueing what fails.

    The socket is opened lazily and reopened after a failure.  Nothing here
    blocks the poll loop for long: a full socket queue is given
    ``STALL_PATIENCE`` seconds once per stall (until the queue is empty
    again), then lines wait in the queue.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = "/dev/log",
        facility: int = 21,  # local5
        ident: str = IDENT,
        limit: int = QUEUE_LIMIT,
    ) -> None:
        super().__init__()
        self.address = address
        self.facility = facility
        self.ident = ident
        self.limit = limit
        self.hostname = socket.gethostname().split(".")[0] or "-"
        self._socket: socket.socket | None = None
        self._inode: tuple[int, int] | None = None  # the socket file connected to
        self._queue: collections.deque[Line] = collections.deque()
        self.dropped = 0  # lines lost since the last notice
        self._dropped_events: list[str] = []  # the first few of them that were events
        self._stalled = False  # the last send found the queue full and stuck
        self.waits = 0  # times a full syslog socket held up the caller

    # -- what goes in -----------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record).replace("\n", " ")
            line = Line(record.created, severity(record.levelno), text, is_event(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)
            return
        self._queue.append(line)
        self._bound()
        self._deliver()

    def restore(self, lines: Iterable[Line]) -> None:
        """Put lines a previous run could not deliver ahead of the queue."""
        self._queue.extendleft(reversed(list(lines)))
        self._bound()
        self._deliver()

    def pending(self) -> list[Line]:
        """The events not yet delivered, oldest first (for the state file)."""
        return [line for line in self._queue if line.event]

    def queued(self) -> int:
        """How many lines wait for syslog."""
        return len(self._queue)

    def flush(self) -> None:
        """Send what waits, if syslog takes it now (once a pass, and at shutdown)."""
        self.acquire()
        try:
            self._deliver()
        finally:
            self.release()

    # -- what goes out ----------------------------------------------------------

    def format_packet(self, line: Line) -> bytes:
        """The datagram for ``line``."""
        pri = self.facility * 8 + line.severity
        head = f"<{pri}>{_timestamp(line.at)} "
        if not isinstance(self.address, str):
            head += f"{self.hostname} "
        return f"{head}{self.ident}[{os.getpid()}]: {line.text}".encode(errors="replace")

    def _bound(self) -> None:
        while len(self._queue) > self.limit:
            chatter = next((i for i, line in enumerate(self._queue) if not line.event), None)
            if chatter is None:
                self._lose(self._queue.popleft())
            else:
                self._lose(self._queue[chatter])
                del self._queue[chatter]

    def _lose(self, line: Line) -> None:
        self.dropped += 1
        if line.event and len(self._dropped_events) < NAMED_LIMIT:
            self._dropped_events.append(line.text.split(". ", 1)[0].removesuffix(".") + ".")

    def _notice(self) -> Line:
        count = f"{self.dropped:,} syslog line{'s' if self.dropped != 1 else ''} dropped"
        if self._dropped_events:
            more = ", ..." if len(self._dropped_events) < self.dropped else ""
            what = f", among them: {' '.join(self._dropped_events)}{more}"
        else:
            what = " (no events among them)"
        return Line(time.time(), severity(logging.WARNING), f"{count}{what}")

    def _deliver(self) -> None:
        """Send the notice of lost lines, then the queue, until syslog refuses."""
        if isinstance(self.address, str) and self._socket is not None:
            self._check_inode()
        if self.dropped:
            if not self._send(self.format_packet(self._notice())):
                return
            self.dropped, self._dropped_events = 0, []
        while self._queue:
            line = self._queue[0]
            try:
                sent = self._send(self.format_packet(line))
            except _Unsendable:
                sent = True  # too big for the socket: it never will go
                self._lose(line)
            if not sent:
                return
            self._queue.popleft()
        # A stall ends when everything has gone: a backlog sent the moment the
        # socket has room refills it, and must not cost another wait each time.
        self._stalled = False

    def _check_inode(self) -> None:
        """Reconnect if the socket path now names another socket (syslog restarted)."""
        assert isinstance(self.address, str)
        try:
            info = os.stat(self.address)
            inode: tuple[int, int] | None = (info.st_dev, info.st_ino)
        except OSError:
            inode = None
        if inode != self._inode:
            self.close_socket()

    def _open(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(self.address)
                info = os.stat(self.address)
            except OSError:
                sock.close()
                raise
            self._inode = (info.st_dev, info.st_ino)
        else:
            host, port = self.address
            info_ = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(info_[0], socket.SOCK_DGRAM)
            sock.connect(info_[4])
        # Never block the poll loop on a slow or hung syslog daemon: a full
        # socket queue keeps the line in our own queue.
        sock.setblocking(False)
        return sock

    def _send(self, packet: bytes) -> bool:
        """Send one datagram, reopening the socket once; False if syslog refused it."""
        for attempt in (1, 2):
            try:
                if self._socket is None:
                    self._socket = self._open()
                self._socket.send(packet)
                return True
            except BlockingIOError:
                # The queue is full.  Give a busy syslog daemon a moment, once;
                # one that stays stuck costs that moment once, not per line.
                if self._stalled:
                    return False
                self.waits += 1
                if not self._wait_writable(self._socket):
                    self._stalled = True
                    return False
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    raise _Unsendable from exc
                self.close_socket()
                if attempt == 2:
                    return False
        return False

    @staticmethod
    def _wait_writable(sock: socket.socket | None, patience: float = STALL_PATIENCE) -> bool:
        if sock is None:
            return False
        _, writable, _ = select.select([], [sock], [], patience)
        return bool(writable)

    def close_socket(self) -> None:
        self._inode = None
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None

    def close(self) -> None:
        """Give syslog a last moment to take what waits, then let go of the socket."""
        self.acquire()
        try:
            self._drain(STALL_PATIENCE)
        finally:
            self.release()
        self.close_socket()
        super().close()

    def _drain(self, patience: float) -> None:
        """Deliver while syslog takes lines, waiting at most ``patience`` seconds in all."""
        end = time.monotonic() + patience
        while self._queue or self.dropped:
            self._stalled = True  # the waiting is done here, against one deadline
            self._deliver()
            remaining = end - time.monotonic()
            if not (self._queue or self.dropped) or remaining <= 0:
                return
            if not self._wait_writable(self._socket, remaining):
                return


class _Unsendable(Exception):
    """A datagram the socket will never take (larger than it allows)."""


class StderrHandler(logging.StreamHandler[TextIO]):
    """The LOG_PERROR copy: ``whitegoodsd[PID]: text`` on stderr."""

    def __init__(self, stream: TextIO | None = None, ident: str = IDENT) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.ident = ident

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.ident}[{os.getpid()}]: {super().format(record)}"


def handler(logger: logging.Logger) -> SyslogHandler | None:
    """The syslog handler of ``logger``, if it has one."""
    return next((h for h in logger.handlers if isinstance(h, SyslogHandler)), None)


def setup(
    address: str | tuple[str, int],
    facility: int,
    *,
    debug: bool,
    stderr: bool,
) -> logging.Logger:
    """Point the daemon's logger at syslog (and stderr); return it.

    Calling it again (on reload) replaces the handlers; lines still waiting
    for syslog move to the new one.
    """
    logger = logging.getLogger(LOGGER_NAME)
    waiting: list[Line] = []
    lost: tuple[int, list[str]] = (0, [])
    for old in list(logger.handlers):
        if isinstance(old, SyslogHandler):
            waiting.extend(old._queue)
            lost = (old.dropped, old._dropped_events)
            old._queue.clear()  # the new handler has them now
            old.dropped, old._dropped_events = 0, []
        logger.removeHandler(old)
        old.close()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    new = SyslogHandler(address, facility)
    new.dropped, new._dropped_events = lost
    logger.addHandler(new)
    if stderr:
        logger.addHandler(StderrHandler())
    if waiting or new.dropped:
        new.restore(waiting)
    return logger
