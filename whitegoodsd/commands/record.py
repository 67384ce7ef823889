"""Record an appliance's readings as a trace, for whitegoodsd replay and tune.

The plug of an appliance of the configuration file (-c FILE, -a NAME) is
polled every --interval seconds (default 5) until --duration seconds have
passed or the command is interrupted (Ctrl-C, SIGTERM), and each reading is
written to standard output as a "seconds,watts" row, seconds since the first
reading, after a "#" line that says what was recorded and when.  A poll that
fails writes no row (a gap, as replay expects) and a line on standard error.
Start it before the machine, stop it after the cycle:

  whitegoodsd record -a WASHER > washer.csv
"""

from __future__ import annotations

import argparse
import sys
import time

from whitegoodsd.commands.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    load_appliance,
    seconds,
)

PROG = "whitegoodsd record"
DEFAULT_INTERVAL = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", dest="ini", metavar="FILE",
        help="the configuration file that names the appliance (default: /etc/whitegoodsd.ini)",
    )  # fmt: skip
    parser.add_argument(
        "-a", "--appliance", metavar="NAME",
        help="the appliance to record (default: the only one in the file)",
    )  # fmt: skip
    parser.add_argument(
        "--interval", type=seconds, metavar="S", default=DEFAULT_INTERVAL,
        help=f"seconds between polls (default: {DEFAULT_INTERVAL:g})",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=seconds, metavar="S",
        help="stop after this many seconds (default: when interrupted)",
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from whitegoodsd import trace
    from whitegoodsd.config import ApplianceConfig, Config
    from whitegoodsd.errors import PlugError, Reading
    from whitegoodsd.monitor import make_driver
    from whitegoodsd.sources import poll_all

    try:
        config, appliance = load_appliance(args)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    assert isinstance(config, Config) and isinstance(appliance, ApplianceConfig)
    driver = make_driver(appliance, config.timeout)
    if driver.PUSHED:
        print(f"{PROG}: {appliance.name}: a pushed plug ({appliance.plug.driver}) cannot be "
              "polled; record its broker's messages instead", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    out = sys.stdout

    async def record() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        began = loop.time()
        first: float | None = None
        rows = 0
        when = time.strftime("%Y-%m-%d %H:%M:%S %z")
        out.write(f"# {appliance.name}: {appliance.plug.driver} plug at {driver.address}, "
                  f"every {args.interval:g} s from {when}\n{trace.HEADER}\n")  # fmt: skip
        out.flush()
        try:
            while not stop.is_set():
                started = loop.time()
                if args.duration is not None and started - began >= args.duration:
                    break
                (outcome,) = await poll_all([driver], config.timeout)
                if isinstance(outcome, Reading):
                    now = loop.time()
                    first = now if first is None else first
                    out.write(trace.row(now - first, outcome.power_mw / 1000) + "\n")
                    out.flush()
                    rows += 1
                elif isinstance(outcome, PlugError):
                    print(f"{PROG}: {appliance.name}: {outcome}", file=sys.stderr)
                remaining = started + args.interval - loop.time()
                if args.duration is not None:
                    remaining = min(remaining, began + args.duration - loop.time())
                if remaining > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), remaining)
                    except TimeoutError:
                        pass
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await driver.close()
        return EXIT_OK if rows else EXIT_FAILURE

    return asyncio.run(record())
