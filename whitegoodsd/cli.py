"""The ``whitegoodsd`` command line.

``whitegoodsd [-c FILE] [-f] ...`` runs the daemon; ``whitegoodsd COMMAND``
runs one of the tools named in ``COMMANDS`` (each a module with
``add_arguments(parser)`` and ``main(args) -> int``).  A command's module is
imported only when that command runs (or its help is asked for), so the
daemon starts without loading any of them.  Exit codes: 0 ok, 1 runtime
failure, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from whitegoodsd import __version__, deferred, exits, tls
from whitegoodsd import config as configuration
from whitegoodsd.config import Config, ConfigError

# Held from the start (see __main__) until the monitor's loop handles them.
HELD_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

EXIT_OK = exits.OK
EXIT_FAILURE = exits.FAILURE
EXIT_CONFIG = exits.USAGE

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "discover": ("whitegoodsd.discover", "find plugs on the network and print INI sections"),
    "emulate": ("whitegoodsd.emulator.command", "serve emulated plugs that replay a power profile"),
    "demo": ("whitegoodsd.demo", "watch emulated appliances run a cycle each (no hardware needed)"),
    "replay": ("whitegoodsd.commands.replay", "replay a recorded power trace through the detector"),
    "record": ("whitegoodsd.commands.record", "record an appliance's readings as a trace"),
    "tune": ("whitegoodsd.commands.tune", "suggest detection settings from recorded traces"),
}

DESCRIPTION = """\
Watch power-metering smart plugs and log to syslog when the appliance behind
each one starts ("NAME is RUNNING.") and finishes ("NAME is FINISHED.").
"""

EPILOG = """\
signals:
  SIGTERM, SIGINT  stop (the pidfile is removed)
  SIGHUP           reload the configuration file; a broken file is reported
                   and the previous configuration kept

exit status:
  0  success
  1  runtime failure (a plug did not answer with --once; already running)
  2  configuration or usage error

See whitegoodsd(8) and whitegoodsd.ini(5).
"""


def build_parser(commands: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The parser; the commands named in ``commands`` get their full options."""
    full = set(commands)
    parser = argparse.ArgumentParser(
        prog="whitegoodsd",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=configuration.DEFAULT_PATH,
        help=f"configuration file (default: {configuration.DEFAULT_PATH})",
    )
    parser.add_argument(
        "-f",
        "--foreground",
        action="store_true",
        help="do not fork; log to stderr as well as syslog",
    )
    parser.add_argument(
        "-p",
        "--pidfile",
        metavar="PIDFILE",
        help="write the process id here (default: the INI file's pidfile, "
        "else /run/whitegoodsd.pid; in the foreground, none unless given)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="poll every appliance once, print what was read and exit "
        "(0 if every plug answered, 1 otherwise)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration file, print a summary or every problem, "
        "and exit (0 valid, 2 not)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug lines (as log_debug = 1)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if COMMANDS:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
        for name, (module_name, help_text) in COMMANDS.items():
            if name not in full:
                sub.add_parser(name, help=help_text)  # its module is not loaded
                continue
            module = importlib.import_module(module_name)
            command = sub.add_parser(
                name,
                help=help_text,
                description=getattr(module, "__doc__", None),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            module.add_arguments(command)
            command.set_defaults(command_module=module)
    return parser


def load_config(path: str, err: TextIO) -> Config | None:
    """Load ``path``; print its warnings, or its errors and return None."""
    try:
        config = configuration.load(path)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(f"{warning} (warning)", file=err)
        for problem in exc.problems:
            print(problem, file=err)
        return None
    for warning in config.warnings:
        print(f"{warning} (warning)", file=err)
    return config


def warn_about_syslog(config: Config, err: TextIO) -> None:
    """Say on the terminal if syslog cannot take lines yet (not an error: it may start later)."""
    from whitegoodsd.outputs import syslog

    problem = syslog.socket_problem(config.syslog_address)
    if problem is not None:
        print(f"whitegoodsd: warning: {problem}", file=err)


def check_config(path: str) -> int:
    config = load_config(path, sys.stderr)
    if config is None:
        return EXIT_CONFIG
    warn_about_syslog(config, sys.stderr)
    from whitegoodsd.commands import check

    print(check.summary(config))
    return EXIT_OK


def once(config: Config) -> int:
    """Poll every appliance once and print a line for each."""
    import asyncio

    from whitegoodsd.errors import Reading
    from whitegoodsd.monitor import make_driver
    from whitegoodsd.sources import poll_all

    async def read_all() -> list[str]:
        readers = [make_driver(a, config.timeout) for a in config.appliances]
        results = await poll_all(readers, config.timeout)
        lines = []
        for appliance, reader, result in zip(config.appliances, readers, results, strict=True):
            await reader.close()
            line = format_reading(appliance.name, reader.address, result)
            most = appliance.settings.max_plausible_mw
            if isinstance(result, Reading) and most is not None and result.power_mw > most:
                line += f"  implausible: above max_plausible_mw ({most:,} mW), discarded"
            lines.append(line)
        return lines

    lines = asyncio.run(read_all())
    width = max((len(line.split("\t")[0]) for line in lines), default=0)
    failed = 0
    for line in lines:
        name, rest = line.split("\t", 1)
        failed += rest.startswith("error") or "  implausible: " in rest
        print(f"{name:<{width}}  {rest}")
    return EXIT_FAILURE if failed else EXIT_OK


def format_reading(name: str, address: str, result: object) -> str:
    from whitegoodsd.drivers.base import PlugError, Reading

    if isinstance(result, Reading):
        parts = [f"{result.power_mw / 1000:,.3f} W"]
        if result.voltage_mv is not None:
            parts.append(f"{result.voltage_mv / 1000:,.1f} V")
        if result.current_ma is not None:
            parts.append(f"{result.current_ma / 1000:,.3f} A")
        if result.total_wh is not None:
            parts.append(f"total {result.total_wh / 1000:,.3f} kWh")
        return f"{name}\t{address}  " + "  ".join(parts)
    if isinstance(result, PlugError):
        return f"{name}\terror: {address}: {result}"
    return f"{name}\terror: {address}: {type(result).__name__}: {result}"


def run_foreground(config: Config, verbose: bool, *, stderr: bool = True) -> int:
    """Run the monitor in this process until stopped (daemon mode: after the fork)."""
    import asyncio

    from whitegoodsd.monitor import Monitor
    from whitegoodsd.outputs import syslog

    def configure_logging(new: Config) -> None:
        syslog.setup(
            new.syslog_address,
            new.syslog_facility,
            debug=new.log_debug or verbose,
            stderr=stderr,
        )

    configure_logging(config)
    monitor = Monitor(config, on_reload=configure_logging, monotonic=demo_clock())
    asyncio.run(monitor.run())
    return EXIT_OK


DEMO_SPEED = "WHITEGOODSD_DEMO_SPEED"


def demo_clock() -> Callable[[], float] | None:
    """The sped-up clock of ``whitegoodsd demo``'s plugs, when the demo started this daemon.

    The demo replays appliances hundreds of times faster than real time; a
    daemon measuring on it gives figures in the same time base as the plugs.
    """
    try:
        speed = float(os.environ.get(DEMO_SPEED, "1"))
    except ValueError:
        return None
    if not 1 < speed <= 100_000:
        return None
    origin = time.monotonic()
    return lambda: origin + (time.monotonic() - origin) * speed


def main(argv: Sequence[str] | None = None) -> int:
    tls.import_asyncio()  # before anything imports asyncio: no ssl until TLS is used
    deferred.defer()  # hashlib, h11...: loaded by the first poll that uses them
    try:
        return _main(argv)
    except BrokenPipeError:
        # Output piped into something that stopped reading (``| head``).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def command_in(argv: Sequence[str]) -> str | None:
    """The command named on the command line, if any."""
    takes_value = {"-c", "--config", "-p", "--pidfile"}
    previous = ""
    for arg in argv:
        if arg in COMMANDS and previous not in takes_value:
            return arg
        if arg == "--":
            return None
        previous = arg
    return None


def release_signals() -> None:
    """Let go of the signals ``__main__`` held: this run is not the daemon's loop."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = command_in(args_list)
    parser = build_parser([command] if command else [])
    try:
        args = parser.parse_args(args_list)
    except SystemExit:
        release_signals()
        raise
    module = getattr(args, "command_module", None)
    if module is not None or args.check_config or args.once:
        release_signals()
    if module is not None:
        result: int = module.main(args)
        return result
    if args.check_config:
        return check_config(args.config)
    config = load_config(args.config, sys.stderr)
    if config is None:
        return EXIT_CONFIG
    if args.once:
        return once(config)
    warn_about_syslog(config, sys.stderr)
    if not args.foreground:
        from whitegoodsd import daemon

        return daemon.start(
            config,
            args.pidfile,
            lambda: run_foreground(config, args.verbose, stderr=False),
            verbose=args.verbose,
        )
    try:
        if args.pidfile is None:
            return run_foreground(config, args.verbose)
        from whitegoodsd import daemon

        with daemon.foreground_pidfile(args.pidfile) as held:
            return run_foreground(config, args.verbose) if held else EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
