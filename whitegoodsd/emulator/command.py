"""Serve emulated smart plugs that replay an appliance's power profile.

Each plug speaks the real protocol (Kasa: TCP and UDP discovery on one port)
and reports what the profile draws at the moment, faster than real time with
--speed.  An INI file that watches the plugs is printed on stdout (with the
intervals divided by the speed, so that sample counts mean what they mean in
real time); what is served is logged on stderr.  Stop with Ctrl-C.

examples:
  whitegoodsd emulate --profile washer --speed 60
  whitegoodsd emulate --driver kasa-v1 --listen 0.0.0.0:9999 --profile dryer.csv --loop
  whitegoodsd emulate --count 1000 --listen 127.0.0.1:0 --watts 5 > plugs.ini

profiles: washer, dryer, dishwasher, or a CSV file of "seconds,watts" rows
(from that second of the cycle on, that many watts; the last row ends the
cycle and its power holds afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys

from whitegoodsd import exits
from whitegoodsd.drivers.base import split_host_port
from whitegoodsd.emulator import raise_open_file_limit
from whitegoodsd.emulator.profiles import (
    BUILTIN,
    SETTINGS,
    Profile,
    ProfileError,
    Replay,
    describe,
    resolve,
)
from whitegoodsd.emulator.serve import (
    Family,
    PlugServer,
    Watched,
    families,
    ini_text,
)
from whitegoodsd.emulator.serve import add_arguments as add_family_arguments

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = exits.OK, exits.FAILURE, exits.USAGE
DEFAULT_SETTINGS = SETTINGS["washer"]
log = logging.getLogger("whitegoodsd.emulator")


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _wait(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0: {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, at least 1: {text!r}")
    return int(text)


def listen_address(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT``, where PORT may be 0 (any free port)."""
    if text.endswith(":0") and not text.endswith("::0"):
        host, port = split_host_port(text[:-2])
        if port is None:
            return host, 0
    return split_host_port(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = families()
    parser.add_argument(
        "--driver",
        choices=sorted(kinds),
        default="kasa",
        help="the plug to emulate (default: kasa, the v2 reply shape)",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1",
        help="address to serve on (default: 127.0.0.1 and the driver's port, 9999 for "
        "Kasa); port 0 picks free ports",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--profile",
        metavar="NAME|FILE",
        default="washer",
        help=f"power profile: {', '.join(BUILTIN)} or a CSV file (default: washer)",
    )
    what.add_argument("--watts", type=float, metavar="W", help="a constant power instead")
    parser.add_argument(
        "--speed", type=_speed, default=1.0, metavar="X", help="play X times faster (default 1)"
    )
    parser.add_argument("--loop", action="store_true", help="start the cycle over at its end")
    parser.add_argument(
        "--start-in",
        type=_wait,
        default=0.0,
        metavar="S",
        help="rest S seconds (wall clock) before the cycle starts (default 0)",
    )
    parser.add_argument(
        "--count",
        type=_count,
        default=1,
        metavar="N",
        help="serve N plugs on consecutive ports from PORT (free ports with port 0)",
    )
    parser.add_argument(
        "--stagger", action="store_true", help="spread the plugs' starting points over the cycle"
    )
    parser.add_argument(
        "--name", default=None, help="appliance name (default: from the profile); N plugs: NAME1.."
    )
    parser.add_argument(
        "--print-profile", action="store_true", help="print the profile as CSV and exit"
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="store_true", help="log every request (the default for 1 plug)"
    )
    loudness.add_argument("-q", "--quiet", action="store_true", help="log only problems")
    add_family_arguments(parser)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s emulate: %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def main(args: argparse.Namespace) -> int:
    try:
        if args.watts is not None:
            if not math.isfinite(args.watts) or args.watts < 0:
                raise ProfileError(f"--watts must be a number >= 0, got {args.watts:g}")
            profile = Profile(f"{args.watts:g} W", (0.0,), (args.watts,))
        else:
            profile = resolve(args.profile)
    except ProfileError as exc:
        print(f"whitegoodsd emulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_profile:
        sys.stdout.write(profile.to_csv())
        return EXIT_OK
    family = families()[args.driver]
    try:
        host, port = listen_address(args.listen)
    except ValueError as exc:
        print(f"whitegoodsd emulate: --listen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if port is None:
        port = family.default_port
    if port and port + args.count - 1 > 65535:
        print(
            f"whitegoodsd emulate: {args.count} ports from {port} run past 65535", file=sys.stderr
        )
        return EXIT_USAGE
    _setup_logging(args.quiet)
    limit = raise_open_file_limit()
    if 2 * args.count + 32 > limit:
        log.warning("%d plugs need more open files than the limit of %d", args.count, limit)
    try:
        return asyncio.run(serve(args, family, profile, host, port))
    except KeyboardInterrupt:
        return EXIT_OK


def _names(args: argparse.Namespace, profile: Profile) -> list[str]:
    base = args.name or (profile.name.upper() if profile.name.lower() in BUILTIN else "PLUG")
    if args.count == 1:
        return [base]
    return [f"{base}{i}" for i in range(1, args.count + 1)]


async def serve(
    args: argparse.Namespace, family: Family, profile: Profile, host: str, port: int
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    names = _names(args, profile)
    verbose = not args.quiet and (args.verbose or args.count == 1)
    settings = SETTINGS.get(profile.name.lower(), DEFAULT_SETTINGS)
    servers: list[PlugServer] = []
    replays: list[Replay] = []
    watched: list[Watched] = []
    try:
        for index, name in enumerate(names):
            offset = profile.duration * index / args.count if args.stagger else 0.0
            offset -= args.start_in * args.speed
            replay = Replay(profile, speed=args.speed, loop=args.loop, offset=offset)
            want = port + index if port else 0
            try:
                server = await family.start(host, want, replay, name, index, verbose, args)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                log.error("cannot listen on %s:%d: %s", host, want, reason)
                return EXIT_FAILURE
            servers.append(server)
            replays.append(replay)
            options = tuple(family.ini_options(args))
            address = getattr(server, "smartplug", None)  # a topic, for pushed families
            watched.append(
                Watched(name, host, server.port, family.driver, settings, options, address)
            )
        _announce(args, family, profile, watched)
        sys.stdout.write(ini_text(watched, speed=args.speed, extra=family.ini_globals(args)))
        sys.stdout.flush()
        await _watch(stop, replays[0], profile, args)
        log.info("stopping")
        return EXIT_OK
    finally:
        for server in servers:
            await server.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _announce(
    args: argparse.Namespace, family: Family, profile: Profile, watched: list[Watched]
) -> None:
    if profile.duration == 0:
        log.info("a constant %s W", f"{profile.watts[0]:,g}")
    else:
        mode = "looping" if args.loop else "once"
        start = f", starting in {args.start_in:g} s" if args.start_in > 0 else ""
        speed = f"{args.speed:g}"
        log.info(
            "%s profile: %s; played %sx, %s%s", profile.name, describe(profile), speed, mode, start
        )
    for plug in watched[:10]:
        log.info("%s on %s (%s: %s)", plug.name, plug.plug, family.name, family.description)
    if len(watched) > 10:
        log.info("... and %d more, to %s", len(watched) - 10, watched[-1].plug)
    log.info("serving %d plug%s; Ctrl-C stops", len(watched), "" if len(watched) == 1 else "s")


async def _watch(
    stop: asyncio.Event, replay: Replay, profile: Profile, args: argparse.Namespace
) -> None:
    """Wait for a stop signal; say when a one-shot cycle ends."""
    if args.loop or args.stagger or profile.duration == 0:
        await stop.wait()
        return
    for at, what in ((0.0, "starts"), (profile.duration, "is over")):
        remaining = (at - replay.elapsed()) / args.speed
        if remaining <= 0:
            continue
        try:
            await asyncio.wait_for(stop.wait(), remaining)
            return
        except TimeoutError:
            pass
        log.info("%s cycle %s; %s W now", profile.name, what, f"{replay.power_mw() / 1000:,g}")
    await stop.wait()
