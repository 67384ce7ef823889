"""An emulated Tasmota energy plug (a Sonoff POW-class device) over HTTP.

:class:`TasmotaDevice` answers ``GET /cm?cmnd=...`` as Tasmota does:
``Status 10`` and ``Status 8`` with ``StatusSNS.ENERGY`` (built by
:mod:`whitegoodsd.protocols.tasmota`), ``Status 0`` with the device's
names and network status (what discovery reads), anything else with
``{"Command":"Unknown"}``.  With a password set, a request without the
right ``user`` and ``password`` in its query gets HTTP 200 and a WARNING,
as the firmware answers.  Replies go out chunked, as real plugs send them.
"""

from __future__ import annotations

import argparse
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from whitegoodsd.emulator import PowerSource
from whitegoodsd.emulator.httpserver import HttpServer, Reply, Request, start_http
from whitegoodsd.emulator.serve import Family, PlugServer
from whitegoodsd.emulator.shelly import add_arguments as add_credentials
from whitegoodsd.emulator.shelly import meter_reading
from whitegoodsd.errors import Reading
from whitegoodsd.protocols import tasmota

VERSION = "14.3.0(release-tasmota)"


class TasmotaDevice:
    """A Tasmota plug as HTTP requests and replies, no I/O."""

    def __init__(
        self,
        source: PowerSource,
        *,
        password: str | None = None,
        username: str = "admin",
        alias: str = "Emulated plug",
        index: int = 0,
        others: tuple[PowerSource, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.sources = (source, *others)  # more than one: values become arrays
        self.password = password
        self.username = username
        self.alias = alias
        self.index = index
        self.clock = clock
        self.mac = f"A4CF12{(0xB20000 + index) % 0x1000000:06X}"
        self.topic = f"tasmota_{self.mac[-6:]}"
        self.requests = 0
        self.refused = 0

    def readings(self) -> list[Reading]:
        return [meter_reading(s, self.clock(), self.index) for s in self.sources]

    def handle(self, request: Request) -> Reply:
        self.requests += 1
        if request.path != "/cm":
            return Reply(404, b"Not Found", content_type="text/plain", chunked=True)
        query = urllib.parse.parse_qs(request.query, keep_blank_values=True)
        if self.password is not None:
            user = query.get("user", [""])[-1]
            password = query.get("password", [""])[-1]
            if not (
                hmac.compare_digest(user, self.username)
                and hmac.compare_digest(password, self.password)
            ):
                self.refused += 1
                return self._json(tasmota.warning_reply())
        command = " ".join(query.get("cmnd", [""])[-1].split()).lower()
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        if command in ("status 10", "status 8"):
            return self._json(tasmota.status_reply(self.readings(), time=now))
        if command in ("status 0", "status"):
            return self._json(self._status_0(now))
        return self._json({"Command": "Unknown"})

    def _json(self, value: Any) -> Reply:
        return Reply(200, json.dumps(value, separators=(",", ":")).encode(), chunked=True)

    def _status_0(self, now: str) -> dict[str, Any]:
        return {
            "Status": {"Module": 0, "DeviceName": self.alias, "FriendlyName": [self.alias],
                       "Topic": self.topic, "ButtonTopic": "0", "Power": "1",
                       "PowerOnState": 3, "LedState": 1},
            "StatusFWR": {"Version": VERSION, "BuildDateTime": "2024-11-20T10:00:00",
                          "Core": "2_7_7", "SDK": "2.2.2-dev(38a443e)", "Hardware": "ESP8266EX"},
            "StatusNET": {"Hostname": f"{self.topic}-{self.index:04d}", "IPAddress": "127.0.0.1",
                          "Mac": ":".join(self.mac[i:i + 2] for i in range(0, 12, 2))},
            "StatusSNS": tasmota.status_reply(self.readings(), time=now)["StatusSNS"],
        }  # fmt: skip


def describe(reply: Reply) -> str:
    try:
        value = json.loads(reply.body)
        energy = value["StatusSNS"]["ENERGY"]
        return f"{energy['Power']:g} W"
    except (ValueError, KeyError, TypeError):
        return str(reply.status) if reply.status != 200 else "200"


async def start_tasmota(
    host: str,
    port: int,
    source: PowerSource,
    *,
    password: str | None = None,
    username: str = "admin",
    alias: str = "Emulated plug",
    index: int = 0,
    others: tuple[PowerSource, ...] = (),
    verbose: bool = False,
) -> HttpServer:
    """Serve an emulated Tasmota plug on ``host``:``port`` (0: a free port)."""
    device = TasmotaDevice(
        source, password=password, username=username, alias=alias, index=index, others=others
    )
    server = await start_http(
        host, port, device.handle, name=alias, verbose=verbose, describe=describe
    )
    server.device = device  # type: ignore[attr-defined]
    return server


add_arguments = add_credentials


async def _start(
    host: str, port: int, source: PowerSource, alias: str, index: int, verbose: bool,
    args: argparse.Namespace | None,
) -> PlugServer:  # fmt: skip
    server: PlugServer = await start_tasmota(
        host, port, source, alias=alias, index=index, verbose=verbose,
        password=getattr(args, "password", None),
        username=getattr(args, "username", None) or "admin",
    )  # fmt: skip
    return server


def ini_options(args: argparse.Namespace | None) -> list[tuple[str, str]]:
    options = []
    if getattr(args, "password", None):
        if getattr(args, "username", None):
            options.append(("username", str(getattr(args, "username", ""))))
        options.append(("password", str(getattr(args, "password", ""))))
    return options


EMULATED = (
    Family("tasmota", "tasmota", tasmota.PORT, "Tasmota energy plug (Sonoff POW class)", _start,
           ini_options),
)  # fmt: skip
