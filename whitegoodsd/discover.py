"""Find smart plugs on the network and print an INI section for each.

Without --target, a probe is broadcast on each family's UDP port (Kasa:
system.get_sysinfo on 9999; Broadlink/INPLUG: a hello on 80) and every plug
that answers within the timeout is listed.  With --target HOST[:PORT] only
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
import datetime as dt
import json
import re
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from whitegoodsd.errors import ProtocolError
from whitegoodsd.protocols import broadlink, kasa

FAMILIES = ("kasa", "inplug")
BROADCAST = "255.255.255.255"
DEFAULT_TIMEOUT = 3.0
RESEND_INTERVAL = 1.0
THRESHOLD_MW = 4000  # the starting values offered in each INI section
MINSAMPLES = 3


@dataclass(frozen=True)
class FoundPlug:
    """One plug that answered a probe."""

    family: str  # the driver name: kasa or inplug
    host: str
    port: int
    model: str
    name: str
    mac: str
    meters_power: bool | None  # None: a device type this program does not know
    locked: bool | None = None  # Broadlink only

    @property
    def default_port(self) -> int:
        return kasa.PORT if self.family == "kasa" else broadlink.PORT

    @property
    def smartplug(self) -> str:
        return self.host if self.port == self.default_port else f"{self.host}:{self.port}"

    def describe(self) -> str:
        meter = {True: "meters power", False: "no power meter", None: "power meter unknown"}
        name = f'"{self.name}"' if self.name else "(no name)"
        return (
            f"{self.host}:{self.port}  {self.family}  {self.model}  {name}  {self.mac}  "
            f"{meter[self.meters_power]}{', locked' if self.locked else ''}"
        )

    def ini(self, section: str) -> str:
        """The INI section for this plug, or a comment if it cannot be used."""
        lines = [f"; {self.describe()}"]
        if self.meters_power is False:
            lines.append("; this plug cannot measure power: whitegoodsd cannot use it")
            return "\n".join(lines) + "\n"
        if self.meters_power is None:
            lines.append("; unknown device type: it may not be able to measure power")
        lines += [
            f"[{section}]",
            f"smartplug = {self.smartplug}",
            f"driver = {self.family}",
            f"threshold_running_mw = {THRESHOLD_MW}",
            f"minsamples = {MINSAMPLES}",
        ]
        return "\n".join(lines) + "\n"


# -- replies ------------------------------------------------------------------


def _mac(text: object) -> str:
    digits = re.sub(r"[^0-9a-fA-F]", "", text if isinstance(text, str) else "").lower()
    if len(digits) != 12:
        return "unknown"
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _text(value: object, limit: int = 64) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse_kasa(data: bytes, addr: tuple[str, int]) -> FoundPlug:
    """A Kasa discovery reply (enciphered sysinfo JSON) as a FoundPlug."""
    if len(data) > kasa.MAX_REPLY:
        raise ProtocolError("reply too long")
    sysinfo = kasa.parse_sysinfo(kasa.loads(kasa.decrypt(data)))
    model = _text(sysinfo.get("model")) or _text(sysinfo.get("dev_name")) or "unknown Kasa"
    hardware = _text(sysinfo.get("hw_ver"), 16)
    if hardware:
        model += f" hw {hardware}"
    children = sysinfo.get("children")
    if isinstance(children, list) and children:
        model += f", {len(children)} outlets"
    return FoundPlug(
        family="kasa",
        host=addr[0],
        port=addr[1],
        model=model,
        name=_text(sysinfo.get("alias")),
        mac=_mac(sysinfo.get("mac", sysinfo.get("mic_mac"))),
        meters_power=kasa.meters_power(sysinfo),
    )


def parse_inplug(data: bytes, addr: tuple[str, int]) -> FoundPlug:
    """A Broadlink discovery reply as a FoundPlug."""
    info = broadlink.parse_hello_reply(data)
    return FoundPlug(
        family="inplug",
        host=addr[0],
        port=addr[1],
        model=info.model,
        name=info.name,
        mac=info.mac_text,
        meters_power=info.meters_power,
        locked=info.locked,
    )


def kasa_probe(local: tuple[str, int]) -> bytes:
    return kasa.datagram(kasa.GET_SYSINFO)


def inplug_probe(local: tuple[str, int]) -> bytes:
    when = dt.datetime.now().astimezone()
    return broadlink.hello_request(broadlink.Hello(when, local[0], local[1]))


Probe = Callable[[tuple[str, int]], bytes]
Parse = Callable[[bytes, tuple[str, int]], FoundPlug]
PROTOCOLS: dict[str, tuple[int, Probe, Parse]] = {
    "kasa": (kasa.PORT, kasa_probe, parse_kasa),
    "inplug": (broadlink.PORT, inplug_probe, parse_inplug),
}


# -- probing ------------------------------------------------------------------


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(256)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.queue.put_nowait((data, (addr[0], addr[1])))
        except asyncio.QueueFull:
            pass

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. "port unreachable" from a target that is not a plug: no answer


async def _probe_family(
    family: str, target: tuple[str, int | None] | None, seconds: float
) -> list[FoundPlug]:
    default_port, make_probe, parse = PROTOCOLS[family]
    loop = asyncio.get_running_loop()
    if target is None:
        host, port = BROADCAST, default_port
    else:
        host, port = target[0], target[1] or default_port
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        host = str(infos[0][4][0])
    transport, replies = await loop.create_datagram_endpoint(
        _Replies, local_addr=("0.0.0.0", 0), allow_broadcast=target is None
    )
    found: dict[tuple[str, int, str], FoundPlug] = {}
    try:
        local = transport.get_extra_info("sockname")
        probe = make_probe((local[0], local[1]))
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            transport.sendto(probe, (host, port))
            resend = min(deadline, loop.time() + RESEND_INTERVAL)
            while (remaining := resend - loop.time()) > 0:
                try:
                    data, addr = await asyncio.wait_for(replies.queue.get(), remaining)
                except TimeoutError:
                    break
                if target is not None and addr[0] != host:
                    continue
                try:
                    plug = parse(data, addr)
                except ProtocolError:
                    continue
                found.setdefault((plug.host, plug.port, plug.mac), plug)
                if target is not None:
                    return list(found.values())
    finally:
        transport.close()
    return list(found.values())


async def discover(
    families: Sequence[str], target: tuple[str, int | None] | None, seconds: float
) -> list[FoundPlug]:
    """Every plug of ``families`` that answers within ``seconds``."""
    results = await asyncio.gather(*(_probe_family(f, target, seconds) for f in families))
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
        choices=[*FAMILIES, "all"],
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
        return 2
    target = None
    if args.target is not None:
        try:
            target = split_host_port(args.target)
        except ValueError as exc:
            print(f"whitegoodsd discover: --target: {exc}", file=sys.stderr)
            return 2
    families = FAMILIES if args.driver == "all" else (cast(str, args.driver),)
    try:
        plugs = asyncio.run(discover(families, target, args.timeout))
    except OSError as exc:
        print(f"whitegoodsd discover: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.json:
        print(render_json(plugs))
    elif plugs:
        print(render_text(plugs), end="")
    if not plugs:
        where = args.target or "the local network"
        print(f"No plug answered on {where} within {args.timeout:g} s.", file=sys.stderr)
        return 1
    return 0
