"""A farm of emulated Kasa plugs in a process of its own, for the benchmarks.

``python -m benchmarks.plugs COUNT [--silent N]`` listens on COUNT ports of
127.0.0.1, prints one JSON line ``{"ports": [...], "silent": [...]}`` and
serves until its stdin closes.  The first N ports are silent (they accept and
never answer); the others answer like an HS110 v2 through
:mod:`whitegoodsd.protocols.kasa`: ``emeter.get_realtime`` and
``system.get_sysinfo``, and the small set of other queries python-kasa makes
when it connects.  Replies are cached per request, so that the farm spends as
little CPU as possible and the clients are what gets measured.

On stdin, a line ``count`` is answered with a JSON line: the requests served
so far and the monotonic time of the first one.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from whitegoodsd.drivers.base import ProtocolError
from whitegoodsd.emulator import SettablePower
from whitegoodsd.protocols import kasa

NOT_SUPPORTED = {"err_code": -1, "err_msg": "module not support"}
NO_METHOD = {"err_code": -2, "err_msg": "member not support"}


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted``; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class Plug:
    """What one emulated HS110 v2 answers."""

    def __init__(self, number: int, power: SettablePower) -> None:
        self.number = number
        self.power = power
        self._cache: dict[bytes, bytes] = {}

    def sysinfo(self) -> dict[str, Any]:
        mac = f"50:C7:BF:00:{self.number >> 8 & 0xFF:02X}:{self.number & 0xFF:02X}"
        return {
            "sw_ver": "1.5.4 Build 180815 Rel.121440",
            "hw_ver": "2.0",
            "type": "IOT.SMARTPLUGSWITCH",
            "model": "HS110(EU)",
            "mac": mac,
            "dev_name": "Smart Wi-Fi Plug With Energy Monitoring",
            "alias": f"bench {self.number}",
            "relay_state": 1,
            "on_time": 3600,
            "active_mode": "none",
            "feature": "TIM:ENE",
            "updating": 0,
            "icon_hash": "",
            "rssi": -52,
            "led_off": 0,
            "longitude_i": 0,
            "latitude_i": 0,
            "hwId": "044A516EE63C875F9458DA25C2CCC5A0",
            "fwId": "00000000000000000000000000000000",
            "deviceId": f"8006{self.number:036d}",
            "oemId": "1998A14DAA86E4E001FD7CAF42868B5E",
            "next_action": {"type": -1},
            "err_code": 0,
        }

    def method(self, module: str, method: str) -> dict[str, Any]:
        if module == "system" and method == "get_sysinfo":
            return self.sysinfo()
        if module == "emeter" and method == "get_realtime":
            power = self.power.power_mw()
            return {
                "voltage_mv": 230_512,
                "current_ma": power // 230,
                "power_mw": power,
                "total_wh": int(self.power.total_wh()),
                "err_code": 0,
            }
        if module == "emeter" and method == "get_daystat":
            return {"day_list": [], "err_code": 0}
        if module == "emeter" and method == "get_monthstat":
            return {"month_list": [], "err_code": 0}
        return NO_METHOD

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {}
        for module, methods in request.items():
            if module not in ("system", "emeter") or not isinstance(methods, dict):
                reply[module] = NOT_SUPPORTED
                continue
            reply[module] = {method: self.method(module, method) for method in methods}
        return reply

    def frame(self, body: bytes) -> bytes:
        """The framed reply to a request's enciphered body (cached)."""
        cached = self._cache.get(body)
        if cached is None:
            try:
                request = kasa.loads(kasa.decrypt(body))
            except ProtocolError:
                request = {}
            cached = self._cache[body] = kasa.frame(self.answer(request))
        return cached


class Counter:
    requests = 0
    first: float | None = None


class Answering(asyncio.Protocol):
    """One connection to a plug that answers every request on it."""

    def __init__(self, plug: Plug) -> None:
        self.plug = plug
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:4], "big")
            if len(buffer) < 4 + length:
                break
            body, buffer = buffer[4 : 4 + length], buffer[4 + length :]
            if Counter.first is None:
                Counter.first = time.monotonic()
            Counter.requests += 1
            self.transport.write(self.plug.frame(body))
        self.buffer = buffer


class Silent(asyncio.Protocol):
    """A connection that is accepted and never answered."""


async def serve(count: int, silent: int) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    ports = []
    power = SettablePower(61_753)
    for number in range(count):
        if number < silent:
            server = await loop.create_server(Silent, "127.0.0.1", 0, backlog=1024)
        else:
            plug = Plug(number, power)
            server = await loop.create_server(
                functools.partial(Answering, plug), "127.0.0.1", 0, backlog=1024
            )
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps({"ports": ports, "silent": list(range(silent))}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"count":
            print(json.dumps({"requests": Counter.requests, "first": Counter.first}), flush=True)
    for server in servers:
        server.close()


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc (10 ms resolution)."""
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Farm:
    """The farm as seen from a benchmark: a child process and its ports."""

    def __init__(self, count: int, silent: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.plugs", str(count), "--silent", str(silent)],
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
    args = parser.parse_args()
    raise_nofile(4 * args.count + 256)
    asyncio.run(serve(args.count, args.silent))


if __name__ == "__main__":
    main()
