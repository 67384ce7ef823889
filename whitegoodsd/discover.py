"""Find smart plugs on the network and print an INI section for each.

Without --target, each plug family looks on the local network its own way
(Kasa: system.get_sysinfo broadcast on UDP 9999; Broadlink/INPLUG: a hello
on UDP 80) and every plug that answers within the timeout is listed.  With --target HOST[:PORT] only
that address is asked (unicast), which also finds plugs that ignore
broadcasts (locked Broadlink plugs) and plugs on other networks or ports.

For each plug: address, family, model, name, MAC, whether it meters power,
and a ready-to-paste INI section (none for a plug without a meter, which
whitegoodsd cannot use).  Exit status: 0 if a plug answered, 1 if none did,
2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import re
import sys
from collections.abc import Sequence

from whitegoodsd import exits
from whitegoodsd.discovery import FoundPlug

DEFAULT_TIMEOUT = 3.0


def families() -> list[str]:
    """The families that can be found, by ``driver =`` name."""
    from whitegoodsd import drivers

    return [name for name, family in drivers.registry().items() if family.DISCOVERY]


def finder(family: str) -> str:
    from whitegoodsd import drivers

    module = drivers.get(family).DISCOVERY
    assert module is not None
    return module


async def discover(
    families: Sequence[str], target: tuple[str, int | None] | None, seconds: float
) -> list[FoundPlug]:
    """Every plug of ``families`` that answers within ``seconds``."""
    finders = [importlib.import_module(finder(f)).find(target, seconds) for f in families]
    results = await asyncio.gather(*finders)
    return [plug for plugs in results for plug in plugs]


# -- output -------------------------------------------------------------------


def section_names(plugs: Sequence[FoundPlug]) -> list[str]:
    """A distinct INI section name for each plug, from its name or MAC."""
    names: list[str] = []
    for plug in plugs:
        base = re.sub(r"[^A-Z0-9]+", "_", plug.name.upper()).strip("_")
        if not base:
            base = f"{plug.family.upper()}_{plug.mac.replace(':', '')[-6:].upper()}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def render_text(plugs: Sequence[FoundPlug]) -> str:
    names = section_names(plugs)
    usable = [n for n, p in zip(names, plugs, strict=True) if p.meters_power is not False]
    parts = []
    if usable:
        parts.append(f"; for [whitegoodsd]: appliances = {', '.join(usable)}\n")
    parts += [plug.ini(name) for name, plug in zip(names, plugs, strict=True)]
    return "\n".join(parts)


def render_json(plugs: Sequence[FoundPlug]) -> str:
    records = []
    for name, plug in zip(section_names(plugs), plugs, strict=True):
        record = dataclasses.asdict(plug)
        record["smartplug"] = plug.smartplug
        record["section"] = name
        record["ini"] = plug.ini(name)
        records.append(record)
    return json.dumps(records, indent=2)


# -- the command --------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--driver",
        choices=[*families(), "all"],
        default="all",
        help="which plug family to look for (default: all)",
    )
    parser.add_argument(
        "--target",
        metavar="HOST[:PORT]",
        help="ask this address only (unicast) instead of broadcasting",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for answers (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of INI")


def main(args: argparse.Namespace) -> int:
    from whitegoodsd.drivers.base import split_host_port

    if not 0 < args.timeout <= 3600:
        print("whitegoodsd discover: --timeout must be above 0 and at most 3600 s", file=sys.stderr)
        return exits.USAGE
    target = None
    if args.target is not None:
        try:
            target = split_host_port(args.target)
        except ValueError as exc:
            print(f"whitegoodsd discover: --target: {exc}", file=sys.stderr)
            return exits.USAGE
    wanted = families() if args.driver == "all" else [str(args.driver)]
    try:
        plugs = asyncio.run(discover(wanted, target, args.timeout))
    except OSError as exc:
        print(f"whitegoodsd discover: {exc.strerror or exc}", file=sys.stderr)
        return exits.FAILURE
    if args.json:
        print(render_json(plugs))
    elif plugs:
        print(render_text(plugs), end="")
    if not plugs:
        where = args.target or "the local network"
        print(f"No plug answered on {where} within {args.timeout:g} s.", file=sys.stderr)
        return exits.FAILURE
    return exits.OK
