"""``record_dir``: every appliance's readings kept as traces, one file a day.

After each pass, each appliance that answered gets a row in
``record_dir/NAME-YYYY-MM-DD.csv`` (local date): ``seconds,watts``, seconds
since local midnight, the format ``whitegoodsd replay`` reads.  A failed poll
writes nothing (a gap).  Bounded: a day's file stops growing at ``MAX_BYTES``
(noted once), and when a new day's file is begun the appliance's files older
than ``KEEP_DAYS`` days are removed.  A file that cannot be written is
logged once and tried again every pass; it never stops the daemon.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Sequence

from whitegoodsd import trace
from whitegoodsd.status import ApplianceStatus

KEEP_DAYS = 14
MAX_BYTES = 16 * 2**20  # a day polled every second is about 1.3 MiB
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2})\.csv$")


def file_name(appliance: str, day: dt.date) -> str:
    """``WASHER-2026-12-01.csv``; characters a file name should not have become ``_``."""
    return f"{_UNSAFE.sub('_', appliance)}-{day.isoformat()}.csv"


class RecordOutput:
    """Appends each pass's readings to the day's trace of each appliance."""

    def __init__(self, directory: str, logger: logging.Logger | None = None) -> None:
        self.directory = directory
        self.log = logger or logging.getLogger("whitegoodsd")
        self._written: dict[str, float] = {}  # appliance -> last_poll already written
        self._full: set[str] = set()  # files that reached MAX_BYTES
        self._failing = False

    def write(self, statuses: Sequence[ApplianceStatus]) -> None:
        problem = None
        for status in statuses:
            if status.reading is None or status.last_poll is None:
                continue
            if self._written.get(status.name) == status.last_poll:
                continue  # not polled since (a pushed plug that said nothing)
            self._written[status.name] = status.last_poll
            try:
                self._append(status.name, status.last_poll, status.reading.power_mw / 1000)
            except OSError as exc:
                problem = problem or exc
        if problem is not None:
            if not self._failing:
                reason = problem.strerror or str(problem)
                self.log.error("Cannot record readings in %s: %s", self.directory, reason)
            self._failing = True
        elif self._failing:
            self.log.info("Recording readings in %s again.", self.directory)
            self._failing = False

    def _append(self, appliance: str, at: float, watts: float) -> None:
        moment = dt.datetime.fromtimestamp(at)
        day = moment.date()
        path = os.path.join(self.directory, file_name(appliance, day))
        if path in self._full:
            return
        midnight = dt.datetime.combine(day, dt.time())
        since = (moment - midnight).total_seconds()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            size = handle.tell()
            if size >= MAX_BYTES:
                self._full.add(path)
                self.log.warning(
                    "Recording of %s stopped for %s: %s reached %s MiB.",
                    appliance, day.isoformat(), path, MAX_BYTES // 2**20,
                )  # fmt: skip
                return
            if size == 0:
                handle.write(f"# {appliance}, {day.isoformat()}, seconds since midnight\n")
                handle.write(trace.HEADER + "\n")
                self._expire(appliance, day)
            handle.write(trace.row(since, watts) + "\n")

    def _expire(self, appliance: str, today: dt.date) -> None:
        """Remove the appliance's files from more than KEEP_DAYS days before ``today``."""
        prefix = _UNSAFE.sub("_", appliance) + "-"
        oldest = today - dt.timedelta(days=KEEP_DAYS)
        for entry in os.scandir(self.directory):
            match = _DATED.search(entry.name)
            if not (entry.name.startswith(prefix) and match and entry.is_file()):
                continue
            if entry.name[len(prefix) : match.start()] != "":
                continue  # another appliance whose name starts with this one's
            try:
                if dt.date.fromisoformat(match.group(1)) < oldest:
                    os.unlink(entry.path)
            except (ValueError, OSError):
                continue
        self._full = {p for p in self._full if os.path.basename(p).endswith(f"{today}.csv")}

    def close(self) -> None:
        pass
