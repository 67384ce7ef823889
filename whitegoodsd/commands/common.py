"""What the recording commands share: choosing an appliance's settings and intervals.

Settings come from an appliance of an INI file (``-c FILE -a NAME``), with
that file's poll intervals, or from a preset (``--kind KIND``, the default
``generic``), with the presets' intervals.  ``--interval`` and ``--idle``
override either.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from whitegoodsd import exits, presets
from whitegoodsd.detector import Settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = exits.OK, exits.FAILURE, exits.USAGE


@dataclass(frozen=True)
class Chosen:
    """The settings and intervals a replay uses, and where they came from."""

    settings: Settings
    interval: float
    idle_interval: float
    source: str  # "kind washer", "WASHER in /etc/whitegoodsd.ini"


class UsageError(Exception):
    """Bad arguments or INI: printed on one line each, exit 2."""


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def add_choice_arguments(parser: argparse.ArgumentParser, *, kind: bool = True) -> None:
    parser.add_argument(
        "-c", "--config", dest="ini", metavar="FILE",
        help="take the settings and intervals from this INI file (with -a)",
    )  # fmt: skip
    parser.add_argument(
        "-a", "--appliance", metavar="NAME",
        help="the appliance section to use (default: the only one in the file)",
    )  # fmt: skip
    if kind:
        parser.add_argument(
            "--kind", choices=presets.KINDS,
            help="use this kind's preset instead of an INI file (default: generic)",
        )  # fmt: skip
    parser.add_argument(
        "--interval", type=seconds, metavar="S",
        help="seconds between polls while the appliance is active "
        "(default: the INI's monitor_interval, or the presets')",
    )  # fmt: skip
    parser.add_argument(
        "--idle", type=seconds, metavar="S",
        help="seconds between polls while it is idle "
        "(default: the INI's monitor_interval_nothing_running, or the presets')",
    )  # fmt: skip


def load_appliance(args: argparse.Namespace) -> tuple[object, object]:
    """The (Config, ApplianceConfig) that -c/-a name; UsageError, warnings to stderr."""
    from whitegoodsd import config as configuration

    path = args.ini or args.config
    try:
        config = configuration.load(path)
    except configuration.ConfigError as exc:
        raise UsageError("\n".join(str(p) for p in exc.problems)) from None
    for warning in config.warnings:
        print(f"{warning} (warning)", file=sys.stderr)
    names = {a.name.upper(): a for a in config.appliances}
    if args.appliance is None:
        if len(config.appliances) != 1:
            listed = ", ".join(a.name for a in config.appliances)
            raise UsageError(f"{path}: more than one appliance ({listed}); choose one with -a")
        return config, config.appliances[0]
    appliance = names.get(args.appliance.upper())
    if appliance is None:
        listed = ", ".join(a.name for a in config.appliances)
        raise UsageError(f"{path}: no appliance {args.appliance!r} (there are: {listed})")
    return config, appliance


def choose(args: argparse.Namespace) -> Chosen:
    """The settings and intervals the arguments ask for; UsageError if they clash."""
    kind = getattr(args, "kind", None)
    if kind is not None and (args.ini or args.appliance):
        raise UsageError("--kind and -c/-a are alternatives; give one")
    if args.ini or args.appliance:
        from whitegoodsd.config import ApplianceConfig, Config

        config, appliance = load_appliance(args)
        assert isinstance(config, Config) and isinstance(appliance, ApplianceConfig)
        return Chosen(
            appliance.settings,
            args.interval or config.monitor_interval,
            args.idle or config.monitor_interval_nothing_running,
            f"{appliance.name} in {config.path}",
        )
    kind = kind or "generic"
    return Chosen(
        presets.settings(kind),
        args.interval or presets.INTERVAL,
        args.idle or presets.IDLE_INTERVAL,
        f"kind {kind}",
    )
