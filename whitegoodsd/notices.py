"""What the daemon has to say about an appliance, as values.

A Notice is an event (RUNNING, FINISHED, UNREACHABLE, REACHABLE) or a
remark about one poll (FAILED, DISCARDED).  The tracker makes them, the
monitor logs them (``text``) and hands the events to the outputs that want
them (commands, notifications, MQTT).
"""

from __future__ import annotations

from dataclasses import dataclass

from whitegoodsd.status import CycleRecord

RUNNING = "RUNNING"
FINISHED = "FINISHED"
UNREACHABLE = "UNREACHABLE"
REACHABLE = "REACHABLE"
FAILED = "FAILED"  # one failed poll; reason says why
DISCARDED = "DISCARDED"  # an implausible reading; reason says what

EVENTS = frozenset({RUNNING, FINISHED, UNREACHABLE, REACHABLE})
EVENT_KINDS = (RUNNING, FINISHED, UNREACHABLE, REACHABLE)  # EVENTS in a fixed order


@dataclass(frozen=True)
class Notice:
    """One thing to say about one appliance."""

    appliance: str
    kind: str  # one of the names above
    at: float  # wall-clock epoch seconds
    cycle: CycleRecord | None = None  # FINISHED: the cycle's figures
    reason: str | None = None  # FAILED, DISCARDED: the one-line reason
    quiet: bool = False  # FAILED while known unreachable: worth a debug line only

    @property
    def is_event(self) -> bool:
        return self.kind in EVENTS
