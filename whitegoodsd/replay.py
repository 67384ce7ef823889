"""Replay: a recorded trace polled exactly as the daemon would poll the plug.

Pure: a :class:`~whitegoodsd.trace.Trace` and the detection settings in, the
events out.  The first poll reads the trace's first row; each next poll
comes ``schedule.next_interval`` seconds later, by the monitor's own rule
(the short interval while the appliance is active, the idle one otherwise).
Every poll's outcome goes to the daemon's own per-appliance
:class:`~whitegoodsd.tracker.Tracker`: a poll where the trace has a gap
fails, a reading above ``max_plausible_mw`` is discarded, and every other
reading goes to the same :class:`~whitegoodsd.detector.Detector`.  Times
are seconds from the trace's first row.

Each sample carries the energy counter a plug would report, in whole
watt-hours (as Kasa plugs count): the trace integrated up to the poll
(``Trace.energy_at``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from whitegoodsd import notices, schedule
from whitegoodsd.detector import Detector, Event, EventKind, Settings, State
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.trace import HOLD, Trace
from whitegoodsd.tracker import Tracker

GAP = PlugError("no reading in the trace")


@dataclass(frozen=True)
class Replay:
    """What the daemon would have said about one trace."""

    events: tuple[Event, ...]
    polls: int
    failed: int  # polls that found a gap in the trace
    discarded: int  # readings above max_plausible_mw
    running_at_end: bool
    duration: float  # seconds from the first row to the last


def replay(
    trace: Trace,
    settings: Settings,
    interval: float,
    idle_interval: float,
    *,
    start: float = 0.0,
    hold: float = HOLD,
) -> Replay:
    """Poll ``trace`` every ``interval`` s while active, ``idle_interval`` s otherwise.

    The first poll is at ``start`` seconds into the trace, as if the daemon
    had started then.
    """
    if not interval > 0 or not idle_interval > 0:
        raise ValueError("poll intervals must be positive")
    tracker = Tracker("replay", Detector(settings), unreachable_after=3)
    events: list[Event] = []
    polls = failed = discarded = 0
    at, end = start, trace.duration
    while at <= end:
        polls += 1
        watts = trace.reading_at(at, hold)
        if watts is None:
            failed += 1
            said = tracker.failed(GAP, at)
        else:
            total = float(math.floor(trace.energy_at(at)))
            said = tracker.sampled(Reading(round(watts * 1000), total_wh=total), at)
        for notice in said:
            if notice.kind == notices.DISCARDED:
                discarded += 1
            elif notice.kind == notices.RUNNING:
                events.append(Event(EventKind.RUNNING, at))
            elif notice.kind == notices.FINISHED:
                events.append(Event(EventKind.FINISHED, at, notice.cycle))
        at += schedule.next_interval(tracker.is_active(), interval, idle_interval)
    return Replay(
        events=tuple(events),
        polls=polls,
        failed=failed,
        discarded=discarded,
        running_at_end=tracker.detector.state is State.RUNNING,
        duration=end,
    )
