"""Suggest detection settings from recordings of one's own machine.

Each FILE is a trace ("seconds,watts", as whitegoodsd record writes it) that
holds one or more whole cycles of the same appliance, cycles at least --gap
seconds apart.  Starting from the preset of --kind (default generic), tune
finds the cycles in the recordings, raises the finished threshold above the
standby if it has to, and looks for the shortest finish_delay with which
replays at 60, 10 and 5 s polls report each cycle exactly once: one RUNNING,
then one FINISHED after the cycle's end, and nothing else.  It prints the
cycles, the margin (the longest pause inside a cycle against the chosen
finish_delay) and an INI section to paste.  Exit status: 0 with a
suggestion, 1 if no finish_delay shorter than the gap works or a file cannot
be read, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys

from whitegoodsd import presets
from whitegoodsd.commands.common import EXIT_FAILURE, EXIT_OK, seconds

PROG = "whitegoodsd tune"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE.csv", help="recorded traces")
    parser.add_argument(
        "--kind", choices=presets.KINDS, default="generic",
        help="the preset to start from (default: generic)",
    )  # fmt: skip
    parser.add_argument(
        "--gap", type=seconds, metavar="S", default=600.0,
        help="cycles in one file are at least this far apart (default: 600)",
    )  # fmt: skip
    parser.add_argument(
        "--name", default="APPLIANCE", help="the section name in the printed INI section"
    )


def main(args: argparse.Namespace) -> int:
    from whitegoodsd import trace, tune
    from whitegoodsd.cycle import duration_text

    try:
        traces = [trace.load(path) for path in args.files]
    except trace.TraceError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    start = presets.settings(args.kind)
    found = tune.suggest(traces, start, gap=args.gap, idle=presets.IDLE_INTERVAL)
    if not found.cycles:
        print(f"{PROG}: no cycle found: no reading of {start.threshold_running_mw / 1000:g} W "
              f"or more held for {start.start_delay:g} s", file=sys.stderr)  # fmt: skip
        return EXIT_FAILURE
    for c in found.cycles:
        print(f"{c.trace}: cycle from {c.start:,.0f} s to {c.end:,.0f} s "
              f"({duration_text(c.end - c.start)})")  # fmt: skip
    print(f"standby: 95% of the readings outside the cycles are below "
          f"{found.standby_mw / 1000:g} W")  # fmt: skip
    if found.settings is None:
        print(f"{PROG}: no finish_delay shorter than the gap ({args.gap:g} s) sees each cycle "
              "exactly once at 60, 10 and 5 s polls; are the cycles further apart than "
              "--gap, and whole?", file=sys.stderr)  # fmt: skip
        return EXIT_FAILURE
    chosen = found.settings
    if found.pause is not None:
        p, below = found.pause, chosen.threshold_finished_mw / 1000
        print(f"longest pause inside a cycle: {p.seconds:,.0f} s below {below:g} W, "
              f"in {p.trace} at {p.at:,.0f} s")  # fmt: skip
        print(f"margin: finish_delay {chosen.finish_delay:g} s is "
              f"{chosen.finish_delay - p.seconds:,.0f} s longer")  # fmt: skip
    after = sorted(found.finished_after)
    print(f"FINISHED {after[len(after) // 2] / 60:.1f} min after the end of a cycle "
          f"(median; at worst {after[-1] / 60:.1f} min), polled every 60, 10 and 5 s")  # fmt: skip
    print(f"\n[{args.name}]\nkind = {args.kind}")
    for key in found.changed:
        value = getattr(chosen, key)
        print(f"{key} = {value:g}" if isinstance(value, float) else f"{key} = {value}")
    return EXIT_OK
