"""What the monitor knows about each appliance after a pass.

These frozen values cross from the monitor to the outputs (the textfile) and
to ``--once``; they carry no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from whitegoodsd.errors import Reading


@dataclass(frozen=True)
class CycleRecord:
    """A finished cycle."""

    started: float  # wall-clock seconds since the epoch
    duration: float  # seconds
    energy_wh: float | None  # None when neither the plug nor the samples tell
    peak_mw: int


@dataclass(frozen=True)
class ApplianceStatus:
    """One appliance as seen by the last pass."""

    name: str
    driver: str
    plug: str  # HOST:PORT
    up: bool  # the last poll answered
    reading: Reading | None  # the last poll's reading, None if it failed
    error: str | None  # the last poll's one-line failure reason
    running: bool
    cycles: int  # FINISHED events since the daemon started (or the state file)
    last_poll: float | None  # wall-clock time of the last poll
    last_cycle: CycleRecord | None
