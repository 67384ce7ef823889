"""``python -m benchmarks detection --traces DIR``: detection against hand-made ground truth.

Every trace in DIR (``seconds,watts`` CSV, labelled in DIR/ground_truth.csv)
is replayed through ``whitegoodsd.replay`` as the daemon would poll it, at
each poll interval asked for and from four start times (the first poll at
0, 1/4, 1/2 and 3/4 of the idle interval: which part of a machine's rhythm
a poll lands on is chance), with the settings of its kind (the presets, or
the sections of an INI file with ``--config``).  Each detected cycle (a
RUNNING and the FINISHED after it) is matched to the labelled cycles it
overlaps, and the table counts, per kind and interval:

* once: a complete cycle overlapped by exactly one detected cycle that
  overlaps no other complete cycle;
* missed, split (two or more detected cycles), merged (one detected cycle
  over two or more labelled ones);
* early: FINISHED before the main work ended (``main_end_s``, else
  ``end_s``);
* false: a detected cycle that overlaps no labelled cycle at all;
* RUNNING: seconds from ``start_s`` to RUNNING; FINISHED: from ``end_s`` to
  FINISHED (negative: in the program's low-power tail, which is on time).

A short dishwasher run without heating (no ``main_end_s``) may be a pre-wash
of the program after it: merged into a neighbour it is no fault and is not
counted; detected on its own it counts as a cycle.  Partial cycles (cut by
the recording) are not scored, and detections over them are not false.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from whitegoodsd import presets, replay, trace
from whitegoodsd.config import ConfigError
from whitegoodsd.detector import EventKind, Settings

KINDS = ("washer", "dryer", "dishwasher")
INTERVALS = (60.0, 10.0, 5.0)
# Where the first poll falls is chance: each trace is replayed from this many
# start times spread over an idle interval, and every replay is counted.
PHASES = 4

# The targets the presets are held to (also asserted by tests/test_detection_traces.py).
ONCE_SHARE = 0.97
FINISHED_MEDIAN = 5 * 60.0
FINISHED_WORST = 20 * 60.0
RUNNING_MEDIAN = 2 * 60.0  # when polling every 60 s while idle


@dataclass(frozen=True)
class Labelled:
    """One row of ground_truth.csv."""

    file: str
    kind: str
    start: float
    main_end: float | None
    end: float
    partial: bool

    @property
    def optional(self) -> bool:
        """A short dishwasher run without heating: maybe a pre-wash of the next cycle."""
        return self.kind == "dishwasher" and self.main_end is None

    @property
    def done(self) -> float:
        """The earliest FINISHED that is not early."""
        return self.end if self.main_end is None else self.main_end


@dataclass
class Score:
    """The counts and latencies of one kind at one interval."""

    kind: str
    interval: float
    idle: float
    cycles: int = 0
    once: int = 0
    missed: int = 0
    split: int = 0
    merged: int = 0
    early: int = 0
    false: int = 0
    running: list[float] = field(default_factory=list)  # seconds after start_s
    finished: list[float] = field(default_factory=list)  # seconds after end_s
    notes: list[str] = field(default_factory=list)

    @property
    def once_share(self) -> float:
        return self.once / self.cycles if self.cycles else 1.0


def load_truth(folder: Path) -> list[Labelled]:
    with (folder / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        return [
            Labelled(
                file=row["file"],
                kind=row["appliance"],
                start=float(row["start_s"]),
                main_end=float(row["main_end_s"]) if row["main_end_s"] else None,
                end=float(row["end_s"]),
                partial=bool(row["partial"]),
            )
            for row in csv.DictReader(handle)
        ]


def detected_cycles(result: replay.Replay) -> list[tuple[float, float | None]]:
    """(RUNNING, FINISHED or None if still running at the end) for each detected cycle."""
    cycles: list[tuple[float, float | None]] = []
    started: float | None = None
    for event in result.events:
        if event.kind is EventKind.RUNNING:
            started = event.at
        elif started is not None:
            cycles.append((started, event.at))
            started = None
    if started is not None:
        cycles.append((started, None))
    return cycles


def score_file(
    score: Score, name: str, labels: list[Labelled], found: list[tuple[float, float | None]]
) -> None:
    """Add one trace's detections, matched against its labels, to ``score``."""

    def overlaps(cycle: tuple[float, float | None], label: Labelled) -> bool:
        running, finished = cycle
        return running <= label.end and (finished is None or finished >= label.start)

    for cycle in found:
        if not any(overlaps(cycle, label) for label in labels):
            score.false += 1
            score.notes.append(f"{name}: false cycle {cycle[0]:.0f}-{cycle[1] or 0:.0f} s")
    for label in labels:
        if label.partial:
            continue
        mine = [c for c in found if overlaps(c, label)]
        shared = [
            other
            for c in mine
            for other in labels
            if other is not label and not other.partial and overlaps(c, other)
        ]
        if label.optional and shared and len(mine) == 1:
            continue  # merged into its program: no fault, not counted
        score.cycles += 1
        if not mine:
            score.missed += 1
            score.notes.append(f"{name}: missed the cycle at {label.start:.0f} s")
            continue
        if len(mine) > 1:
            score.split += 1
            score.notes.append(f"{name}: split the cycle at {label.start:.0f} s in {len(mine)}")
            continue
        if any(not other.optional for other in shared):
            score.merged += 1
            score.notes.append(f"{name}: merged the cycle at {label.start:.0f} s")
            continue
        running, finished = mine[0]
        score.once += 1
        score.running.append(running - label.start)
        if finished is None:
            score.notes.append(f"{name}: no FINISHED for the cycle at {label.start:.0f} s")
            continue
        score.finished.append(finished - label.end)
        if finished < label.done:
            score.early += 1
            score.notes.append(
                f"{name}: FINISHED {label.done - finished:.0f} s before the main work "
                f"of the cycle at {label.start:.0f} s ended"
            )


Configured = tuple[Settings, float]  # settings and the idle interval


def settings_for(kind: str, config_path: str | None) -> Configured:
    """The settings of ``kind``: its preset, or the INI section for that kind."""
    if config_path is None:
        return presets.settings(kind), presets.IDLE_INTERVAL
    from whitegoodsd import config as configuration

    config = configuration.load(config_path)
    for appliance in config.appliances:
        if appliance.name.lower() == kind or getattr(appliance, "kind", None) == kind:
            return appliance.settings, config.monitor_interval_nothing_running
    raise SystemExit(f"{config_path}: no appliance for kind {kind!r} (a section named so)")


def run(
    folder: Path,
    intervals: Sequence[float] = INTERVALS,
    config_path: str | None = None,
    idle: float | None = None,
    phases: int = PHASES,
) -> list[Score]:
    """Score every kind at every interval, each trace polled from ``phases`` start times."""
    truth = load_truth(folder)
    traces = {name: trace.load(folder / name) for name in sorted({t.file for t in truth})}
    scores = []
    for kind in KINDS:
        settings, configured_idle = settings_for(kind, config_path)
        for interval in intervals:
            idle_interval = max(interval, configured_idle if idle is None else idle)
            score = Score(kind, interval, idle_interval)
            for name, recorded in traces.items():
                labels = [t for t in truth if t.file == name]
                if labels[0].kind != kind:
                    continue
                for phase in range(phases):
                    start = phase * idle_interval / phases
                    result = replay.replay(recorded, settings, interval, idle_interval, start=start)
                    where = f"{name} (first poll at {start:g} s)"
                    score_file(score, where, labels, detected_cycles(result))
            scores.append(score)
    return scores


def minutes(values: list[float], pick: str) -> str:
    if not values:
        return "-"
    value = statistics.median(values) if pick == "median" else max(values)
    return f"{value / 60:+.1f}"


def table(scores: Sequence[Score]) -> str:
    from benchmarks.__main__ import table as layout

    rows = [
        [
            "kind", "poll s", "idle s", "cycles", "once", "missed", "split", "merged",
            "early", "false", "RUNNING med", "worst", "FINISHED med", "worst",
        ]
    ]  # fmt: skip
    for s in scores:
        rows.append(
            [
                s.kind, f"{s.interval:g}", f"{s.idle:g}", str(s.cycles),
                f"{s.once} ({s.once_share:.0%})", str(s.missed), str(s.split), str(s.merged),
                str(s.early), str(s.false),
                minutes(s.running, "median"), minutes(s.running, "worst"),
                minutes(s.finished, "median"), minutes(s.finished, "worst"),
            ]
        )  # fmt: skip
    return layout(rows)


def shortfalls(scores: Sequence[Score]) -> list[str]:
    """Every target a score misses, as one line each (empty: all met)."""
    out = []
    for s in scores:
        where = f"{s.kind} at {s.interval:g} s"
        if s.once_share < ONCE_SHARE:
            out.append(f"{where}: {s.once_share:.1%} detected exactly once (< {ONCE_SHARE:.0%})")
        if s.false or s.early:
            out.append(f"{where}: {s.false} false cycle(s), {s.early} FINISHED early")
        if s.finished and statistics.median(s.finished) > FINISHED_MEDIAN:
            out.append(f"{where}: FINISHED median {minutes(s.finished, 'median')} min (> +5)")
        if s.finished and max(s.finished) >= FINISHED_WORST:
            out.append(f"{where}: FINISHED worst {minutes(s.finished, 'worst')} min (>= +20)")
        if s.idle <= 60 and s.running and statistics.median(s.running) > RUNNING_MEDIAN:
            out.append(f"{where}: RUNNING median {minutes(s.running, 'median')} min (> +2)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks detection", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--traces", required=True, type=Path, metavar="DIR")
    parser.add_argument(
        "--intervals", default="60,10,5", help="poll intervals while active, seconds"
    )
    parser.add_argument(
        "--idle", type=float, help="idle interval (default: the presets' or the INI's, "
        "never below the poll interval)"
    )  # fmt: skip
    parser.add_argument("-c", "--config", help="take each kind's settings from this INI instead")
    parser.add_argument(
        "--phases", type=int, default=PHASES, help="start times per trace (default: 4)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every fault")
    args = parser.parse_args(argv)
    intervals = [float(v) for v in args.intervals.split(",") if v]
    if not (args.traces / "ground_truth.csv").is_file():
        parser.error(f"{args.traces}: no ground_truth.csv")
    try:
        scores = run(args.traces, intervals, args.config, args.idle, max(1, args.phases))
    except (trace.TraceError, ConfigError) as exc:
        print(f"python -m benchmarks detection: {exc}", file=sys.stderr)
        return 1
    source = args.config or "the kind presets"
    print(
        f"Detection on {args.traces} with {source}, {args.phases} start time(s) per trace; "
        "counts over all replays; latencies in minutes (RUNNING after start_s, "
        "FINISHED after end_s)"
    )
    print(table(scores))
    if args.verbose:
        for s in scores:
            for note in s.notes:
                print(f"  {s.kind} {s.interval:g} s: {note}")
    missed = shortfalls(scores)
    print("\nTargets: " + ("all met" if not missed else "MISSED"))
    for line in missed:
        print(f"  {line}")
    return 0
