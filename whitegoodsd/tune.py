"""Tuning: the shortest finish_delay that sees each recorded cycle exactly once.

Pure, like replay: traces and a starting point (a kind's preset) in, a
suggestion out.  The cycles of a trace are taken from the trace itself:
sustained stretches of readings at or above the running threshold, joined
across quieter stretches shorter than ``gap`` seconds (a recording holds one
cycle, or several that are at least ``gap`` apart).  The suggestion is the smallest
``finish_delay`` (in steps of ``STEP`` seconds) with which a replay at every
interval of ``intervals`` reports each of those cycles exactly once
(one RUNNING, then one FINISHED no earlier than its end) and nothing else.
The margin is how much longer that delay is than the longest pause inside a
cycle: the longest time its readings stayed below the finished threshold.
A standby that reaches the finished threshold raises it first.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from whitegoodsd.detector import EventKind, Settings
from whitegoodsd.replay import replay
from whitegoodsd.trace import HOLD, Trace

STEP = 30.0
GAP = 10 * 60.0  # quieter stretches shorter than this are inside a cycle
INTERVALS = (60.0, 10.0, 5.0)
STANDBY_HEADROOM_MW = 2000


@dataclass(frozen=True)
class Cycle:
    """A cycle found in a trace: from its first high reading to the end of its last."""

    trace: str
    start: float
    end: float


@dataclass(frozen=True)
class Pause:
    """The longest stretch below the finished threshold inside a cycle."""

    trace: str
    at: float
    seconds: float


@dataclass(frozen=True)
class Suggestion:
    """What tune found."""

    settings: Settings | None  # None: no finish_delay up to the gap works
    cycles: tuple[Cycle, ...]
    pause: Pause | None
    standby_mw: int  # the 95th percentile of readings outside the cycles
    finished_after: tuple[float, ...]  # FINISHED after each cycle's end, every interval
    changed: tuple[str, ...]  # the keys that differ from the starting point


def find_cycles(trace: Trace, settings: Settings, gap: float = GAP) -> list[Cycle]:
    """The cycles of ``trace``: sustained high stretches, joined across quieter ones.

    A stretch is readings at or above the running threshold, none more than
    ``max_dip`` seconds (60 without it) from the next; it counts if it lasts
    at least ``start_delay`` (a dishwasher's final pump-out, a dryer's
    anti-crease bursts or a stray blip do not).  Counted stretches less than
    ``gap`` apart are one cycle.
    """
    join = settings.max_dip or 60.0
    stretches: list[tuple[float, float]] = []
    start: float | None = None
    end = 0.0
    seconds, watts = trace.seconds, trace.watts
    for i, at in enumerate(seconds):
        if watts[i] * 1000 < settings.threshold_running_mw:
            continue
        held = min(seconds[i + 1] - at, HOLD) if i + 1 < len(seconds) else 0.0
        if start is not None and at - end > join:
            stretches.append((start, end))
            start = None
        if start is None:
            start = at
        end = at + held
    if start is not None:
        stretches.append((start, end))
    cycles: list[Cycle] = []
    for first, last in stretches:
        if last - first < settings.start_delay:
            continue
        if cycles and first - cycles[-1].end < gap:
            cycles[-1] = dataclasses.replace(cycles[-1], end=last)
        else:
            cycles.append(Cycle(trace.name, first, last))
    return cycles


def longest_pause(trace: Trace, cycle: Cycle, settings: Settings) -> Pause:
    """The longest time inside ``cycle`` that the readings stayed below the finished threshold.

    Only time the trace saw counts: each reading holds until the next, for at
    most ``HOLD`` seconds, as in a replay.
    """
    best = Pause(trace.name, cycle.start, 0.0)
    quiet, since = 0.0, cycle.start
    seconds, watts = trace.seconds, trace.watts
    for i, at in enumerate(seconds):
        if at < cycle.start or at > cycle.end:
            continue
        if watts[i] * 1000 >= settings.threshold_finished_mw:
            quiet = 0.0
            continue
        if quiet == 0.0:
            since = at
        quiet += min(seconds[i + 1] - at, HOLD) if i + 1 < len(seconds) else 0.0
        if quiet > best.seconds:
            best = Pause(trace.name, since, quiet)
    return best


def standby_mw(traces: Sequence[Trace], cycles: Sequence[Cycle]) -> int:
    """The 95th percentile of the readings outside every cycle (0 if there are none)."""
    outside = [
        w
        for t in traces
        for at, w in zip(t.seconds, t.watts, strict=True)
        if not any(c.trace == t.name and c.start <= at <= c.end for c in cycles)
    ]
    if len(outside) < 2:
        return 0
    return round(statistics.quantiles(outside, n=20)[-1] * 1000)


def check(
    traces: Sequence[Trace],
    cycles: Sequence[Cycle],
    settings: Settings,
    intervals: Sequence[float],
    idle: float,
) -> list[float] | None:
    """FINISHED after each cycle's end at every interval, or None if any is not seen once."""
    after: list[float] = []
    for interval in intervals:
        for t in traces:
            mine = [c for c in cycles if c.trace == t.name]
            result = replay(t, settings, interval, max(interval, idle))
            kinds = [e.kind for e in result.events]
            if len(kinds) != 2 * len(mine) or result.running_at_end:
                return None
            starts = [e.at for e in result.events if e.kind is EventKind.RUNNING]
            ends = [e.at for e in result.events if e.kind is EventKind.FINISHED]
            for cycle, running, finished in zip(mine, starts, ends, strict=True):
                if not cycle.start <= running <= cycle.end or finished < cycle.end:
                    return None
                after.append(finished - cycle.end)
    return after


def suggest(
    traces: Sequence[Trace],
    start: Settings,
    *,
    intervals: Sequence[float] = INTERVALS,
    idle: float = 60.0,
    gap: float = GAP,
) -> Suggestion:
    """The shortest finish_delay that sees every cycle once; see the module docstring."""
    settings = start
    cycles = [c for t in traces for c in find_cycles(t, settings, gap)]
    standby = standby_mw(traces, cycles)
    if standby + STANDBY_HEADROOM_MW > settings.threshold_finished_mw:
        finished = standby + STANDBY_HEADROOM_MW
        running = max(settings.threshold_running_mw, finished + STANDBY_HEADROOM_MW)
        settings = dataclasses.replace(
            settings, threshold_finished_mw=finished, threshold_running_mw=running
        )
        cycles = [c for t in traces for c in find_cycles(t, settings, gap)]
    by_name = {t.name: t for t in traces}
    pauses = [longest_pause(by_name[c.trace], c, settings) for c in cycles]
    pause = max(pauses, key=lambda p: p.seconds, default=None)
    chosen: Settings | None = None
    after: list[float] | None = None
    delay = max(STEP, max(intervals))  # less than a poll apart means nothing
    while cycles and delay < gap:
        candidate = dataclasses.replace(settings, finish_delay=delay)
        after = check(traces, cycles, candidate, intervals, idle)
        if after is not None:
            chosen = candidate
            break
        delay += STEP
    changed: tuple[str, ...] = ()
    if chosen is not None:
        changed = tuple(
            f.name for f in dataclasses.fields(Settings)
            if getattr(chosen, f.name) != getattr(start, f.name)
        )  # fmt: skip
    return Suggestion(
        settings=chosen,
        cycles=tuple(cycles),
        pause=pause,
        standby_mw=standby,
        finished_after=tuple(after or ()),
        changed=changed,
    )
