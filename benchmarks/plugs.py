"""A farm of emulated Kasa plugs in a process of its own, for the benchmarks.

``python -m benchmarks.plugs COUNT [--silent N] [--family NAME [--password PW]]
[--inplug M]`` listens on COUNT ports of 127.0.0.1 (and M UDP ports), prints
one JSON line ``{"ports": [...], "silent": [...], "inplugs": [...]}`` and
serves until its stdin closes.  The first N ports are silent (they accept and
never answer); the others are the Kasa emulator's HS110 v2
(:func:`whitegoodsd.emulator.kasa.start_kasa`), or another emulated family by
its ``whitegoodsd emulate --driver`` name, all reading a steady 61.753 W; the
UDP ports are emulated INPLUGs (:mod:`whitegoodsd.emulator.inplug`) reading
the same.

On stdin, a line ``count`` is answered with a JSON line: the meter readings
served so far (one per poll) and the monotonic time of the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from whitegoodsd.emulator import SettablePower
from whitegoodsd.emulator.inplug import InplugServer, start_inplug
from whitegoodsd.emulator.kasa import KasaServer, start_kasa
from whitegoodsd.emulator.serve import PlugServer


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted``; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class CountingPower:
    """A steady 61.753 W that counts the meter readings it gives (one per poll)."""

    def __init__(self) -> None:
        self.source = SettablePower(61_753)
        self.reads = 0
        self.first: float | None = None

    def power_mw(self) -> int:
        if self.first is None:
            self.first = time.monotonic()
        self.reads += 1
        return self.source.power_mw()

    def total_wh(self) -> float:
        return self.source.total_wh()


class Silent(asyncio.Protocol):
    """A connection that is accepted and never answered."""


async def serve(
    count: int, silent: int, family: str = "kasa", password: str | None = None, inplugs: int = 0
) -> None:
    from whitegoodsd.emulator.serve import families

    loop = asyncio.get_running_loop()
    power = CountingPower()
    quiet: list[asyncio.Server] = []
    plugs: list[KasaServer | PlugServer] = []
    options = argparse.Namespace(driver=family, password=password, username=None)
    ports = []
    for number in range(count):
        if number < silent:
            server = await loop.create_server(Silent, "127.0.0.1", 0, backlog=1024)
            quiet.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        elif family == "kasa":
            plug = await start_kasa("127.0.0.1", 0, power, index=number, alias=f"bench {number}")
            plugs.append(plug)
            ports.append(plug.port)
        else:
            start = families()[family].start
            other = await start("127.0.0.1", 0, power, f"bench {number}", number, False, options)
            plugs.append(other)
            ports.append(other.port)
    udp: list[InplugServer] = []
    for _ in range(inplugs):
        udp.append(await start_inplug("127.0.0.1", 0, power))
    info = {"ports": ports, "silent": list(range(silent)), "inplugs": [u.port for u in udp]}
    print(json.dumps(info), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"count":
            print(json.dumps({"requests": power.reads, "first": power.first}), flush=True)
    for server in quiet:
        server.close()
    for served in plugs:
        await served.close()
    for inplug in udp:
        await inplug.close()


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc (10 ms resolution)."""
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Farm:
    """The farm as seen from a benchmark: a child process and its ports."""

    def __init__(
        self,
        count: int,
        silent: int = 0,
        family: str = "kasa",
        password: str | None = None,
        inplugs: int = 0,
    ) -> None:
        extra = ["--family", family] + (["--password", password] if password else [])
        extra += ["--inplug", str(inplugs)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.plugs", str(count), "--silent", str(silent), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError("the plug farm exited before listening")
        info = json.loads(line)
        self.ports: list[int] = info["ports"]
        self.silent: set[int] = set(info["silent"])
        self.inplugs: list[int] = info["inplugs"]

    def cpu(self) -> float:
        """The farm's CPU seconds so far."""
        return process_cpu(self.process.pid)

    def requests(self) -> tuple[int, float | None]:
        """Requests served so far, and the monotonic time of the first."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        info = json.loads(self.process.stdout.readline())
        return info["requests"], info["first"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plugs")
    parser.add_argument("count", type=int)
    parser.add_argument("--silent", type=int, default=0)
    parser.add_argument("--family", default="kasa")
    parser.add_argument("--password")
    parser.add_argument("--inplug", type=int, default=0)
    args = parser.parse_args()
    raise_nofile(4 * args.count + 256)
    asyncio.run(serve(args.count, args.silent, args.family, args.password, args.inplug))


if __name__ == "__main__":
    main()
