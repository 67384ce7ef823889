"""Replay a recorded power trace through the detector, as the daemon would poll it.

FILE is CSV with the header "seconds,watts" and one row per reading, as
"whitegoodsd record" writes it; a stretch without rows is a time when the
plug did not answer, and polls there fail.  The trace is polled every
--interval seconds while the appliance is active and every --idle seconds
otherwise, by the daemon's own rule and detector, with the settings of an
appliance in an INI file (-c FILE -a NAME) or of a preset (--kind).  Each
event is printed with its time in seconds from the trace's first row, and
each cycle with its duration, energy and peak.
"""

from __future__ import annotations

import argparse
import json
import sys

from whitegoodsd.commands.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_choice_arguments,
    choose,
)

PROG = "whitegoodsd replay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="the trace to replay")
    add_choice_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(args: argparse.Namespace) -> int:
    from whitegoodsd import cycle, trace
    from whitegoodsd.detector import EventKind
    from whitegoodsd.replay import replay

    try:
        chosen = choose(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        recorded = trace.load(args.file)
    except trace.TraceError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    result = replay(recorded, chosen.settings, chosen.interval, chosen.idle_interval)
    events: list[dict[str, object]] = []
    for event in result.events:
        entry: dict[str, object] = {"event": event.kind.value, "at": event.at}
        if event.kind is EventKind.FINISHED and event.cycle is not None:
            record = event.cycle
            entry.update(
                started=record.started,
                duration_s=record.duration,
                energy_wh=None if record.energy_wh is None else round(record.energy_wh, 3),
                peak_w=record.peak_mw / 1000,
            )
        events.append(entry)
    if args.json:
        document = {
            "trace": args.file,
            "settings": chosen.source,
            "interval": chosen.interval,
            "idle_interval": chosen.idle_interval,
            "polls": result.polls,
            "failed_polls": result.failed,
            "discarded": result.discarded,
            "running_at_end": result.running_at_end,
            "events": events,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(
        f"{args.file}: {len(recorded):,} rows over {cycle.duration_text(recorded.duration)}; "
        f"{chosen.source}; polled every {chosen.interval:g} s while active, "
        f"{chosen.idle_interval:g} s idle: {result.polls:,} polls, {result.failed:,} in gaps"
        + (f", {result.discarded:,} readings discarded" if result.discarded else "")
    )
    width = max([len(f"{e.at:,.0f}") for e in result.events] + [1])
    for event in result.events:
        line = f"{event.at:>{width},.0f} s  {cycle.duration_text(event.at):>8}  {event.kind.value}"
        if event.cycle is not None:
            line += f"  {cycle.summary(event.cycle)}"
        print(line)
    if result.running_at_end:
        print("(still RUNNING at the end of the trace)")
    if not result.events:
        print("(no events)")
    return EXIT_OK
