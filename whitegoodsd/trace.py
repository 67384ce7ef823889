"""Power traces: a plug's readings over time, as ``whitegoodsd record`` writes them.

A trace is CSV text with the header ``seconds,watts`` and one row per
reading: seconds since the first reading (decimals allowed) and the real
power in watts, rows in time order.  Nothing is filled in: a stretch without
rows is a time when the plug did not answer.

When a trace is polled (``reading_at``), a row stands for the plug's reading
until the next row, but for at most ``HOLD`` seconds: a poll that finds no
row in the ``HOLD`` seconds before it fails, as a poll of a plug that does
not answer.  Traces sampled every 1-6 s with a few dropped rows poll as a
plug that always answers; a gap of minutes polls as an outage.

A plug's energy counter is not recorded: ``energy_at`` is what a counter
would have read, the rows integrated as they hold (gaps add nothing).

Reading is bounded: at most ``MAX_ROWS`` rows and ``MAX_LINE`` characters a
line; anything else is a :class:`TraceError` naming ``FILE:LINE``.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HEADER = "seconds,watts"
HOLD = 30.0  # seconds a row stands for the plug's reading, at most
MAX_ROWS = 5_000_000  # about eight weeks at one row a second
MAX_LINE = 200
MAX_WATTS = 1e6  # no household plug reads a megawatt: a corrupt row


class TraceError(Exception):
    """A trace that cannot be used; ``str()`` starts with ``FILE:LINE:``."""


@dataclass(frozen=True)
class Trace:
    """Readings in time order: ``seconds[i]`` (from the first row) and ``watts[i]``."""

    name: str
    seconds: array[float]
    watts: array[float]
    energy: array[float] = field(init=False, repr=False, compare=False)  # Wh at each row

    def __post_init__(self) -> None:
        energy: array[float] = array("d", [0.0])
        for i in range(1, len(self.seconds)):
            held = min(self.seconds[i] - self.seconds[i - 1], HOLD)
            energy.append(energy[-1] + max(0.0, self.watts[i - 1]) * held / 3600)
        object.__setattr__(self, "energy", energy)

    def __len__(self) -> int:
        return len(self.seconds)

    @property
    def duration(self) -> float:
        """Seconds from the first row to the last."""
        return self.seconds[-1] if self.seconds else 0.0

    def reading_at(self, at: float, hold: float = HOLD) -> float | None:
        """The watts a poll at ``at`` reads, or None where the trace has a gap."""
        index = bisect.bisect_right(self.seconds, at) - 1
        if index < 0 or at - self.seconds[index] > hold:
            return None
        return self.watts[index]

    def energy_at(self, at: float) -> float:
        """Watt-hours used from the first row to ``at``, as an energy counter would count."""
        index = bisect.bisect_right(self.seconds, at) - 1
        if index < 0:
            return 0.0
        held = min(at - self.seconds[index], HOLD)
        return self.energy[index] + max(0.0, self.watts[index]) * held / 3600


def parse(lines: Iterable[str], name: str = "<trace>") -> Trace:
    """A Trace from CSV lines (header first), or TraceError naming the line."""
    seconds: array[float] = array("d")
    watts: array[float] = array("d")
    header_seen = False
    origin: float | None = None
    for number, raw in enumerate(lines, start=1):
        if len(raw.rstrip("\r\n")) > MAX_LINE:
            raise TraceError(f"{name}:{number}: line longer than {MAX_LINE} characters")
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            if line.replace(" ", "").lower() != HEADER:
                raise TraceError(f"{name}:{number}: expected the header {HEADER!r}, got {line!r}")
            header_seen = True
            continue
        at, watt = _row(line, name, number)
        if origin is None:
            origin = at
        at -= origin
        if seconds and at < seconds[-1]:
            raise TraceError(
                f"{name}:{number}: {at + origin:g} s is before the previous row "
                f"({seconds[-1] + origin:g} s); rows must be in time order"
            )
        if len(seconds) >= MAX_ROWS:
            raise TraceError(f"{name}:{number}: more than {MAX_ROWS:,} rows")
        seconds.append(at)
        watts.append(watt)
    if not header_seen:
        raise TraceError(f"{name}:1: empty; expected the header {HEADER!r}")
    if not seconds:
        raise TraceError(f"{name}:1: no readings after the header")
    return Trace(name, seconds, watts)


def _row(line: str, name: str, number: int) -> tuple[float, float]:
    fields = line.split(",")
    if len(fields) != 2:
        raise TraceError(f"{name}:{number}: expected 'seconds,watts', got {line!r}")
    try:
        at, watt = float(fields[0]), float(fields[1])
    except ValueError:
        raise TraceError(f"{name}:{number}: expected two numbers, got {line!r}") from None
    if not math.isfinite(at) or at < 0:
        raise TraceError(f"{name}:{number}: seconds must be 0 or more, got {fields[0].strip()!r}")
    if not math.isfinite(watt) or not -MAX_WATTS < watt < MAX_WATTS:
        raise TraceError(f"{name}:{number}: implausible watts {fields[1].strip()!r}")
    return at, watt


def load(path: str | Path) -> Trace:
    """Read a trace file; TraceError (with FILE:LINE) on anything unusable."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", errors="strict", newline="") as handle:
            # readline with a limit: one endless line costs MAX_LINE, not memory.
            return parse(iter(lambda: handle.readline(MAX_LINE + 2), ""), str(path))
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text: {exc.reason}") from None


def row(seconds: float, watts: float) -> str:
    """One CSV row as ``record`` writes it: ``12.5,1834.2``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "," + f"{watts:.3f}".rstrip("0").rstrip(".")
