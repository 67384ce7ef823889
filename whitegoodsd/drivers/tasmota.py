"""Tasmota and OpenBeken energy plugs over HTTP (port 80): ``/cm?cmnd=Status 10``.

A poll is one request on a fresh connection, through
:mod:`whitegoodsd.protocols.http`, read by
:mod:`whitegoodsd.protocols.tasmota`.  With a password set, ``user`` and
``password`` go in the query, as Tasmota's web commands take them.  A plug
that refuses them answers HTTP 200 with a WARNING: that is an AuthError, one
line per poll, and nothing is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.drivers.base import AuthError, Driver, Option, ProtocolError, Reading
from whitegoodsd.drivers.shelly import CHANNEL, parse_text
from whitegoodsd.protocols import http, tasmota


class TasmotaPlug(Driver):
    """A Sonoff S31/POW, Athom, Gosund, Nous A1T... running Tasmota or OpenBeken."""

    NAME = "tasmota"
    DEFAULT_PORT = tasmota.PORT
    DESCRIPTION = "Tasmota and OpenBeken energy plugs (/cm?cmnd=Status 10), HTTP 80"
    EMULATOR = "whitegoodsd.emulator.tasmota"
    DISCOVERY = "whitegoodsd.discovery.tasmota"
    OPTIONS = (
        Option(
            CHANNEL.name,
            CHANNEL.parse,
            "which metered channel of a multi-channel device to read, from 0 (the default)",
            default=0,
            metavar="N",
        ),
        Option(
            "username",
            parse_text,
            "the user name for plugs with a password (Shelly Gen1: the web login, "
            "default admin; Gen2 and later always use admin; Tasmota: default admin)",
            shared=True,
            metavar="NAME",
        ),
        Option(
            "password",
            parse_text,
            "the plug's web password, when it has one (none by default)",
            shared=True,
            secret=True,
            metavar="PASSWORD",
        ),
    )

    def __init__(
        self,
        host: str,
        port: int | None,
        timeout: float,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(host, port, timeout, options)
        self.channel: int = self.options["channel"]
        self.target = tasmota.target(self.options["username"], self.options["password"])
        port_shown = "" if self.port == tasmota.PORT else f":{self.port}"
        self._host_header = (f"[{host}]" if ":" in host else host) + port_shown

    def poll(self) -> Conversation[Reading]:
        yield Connect(self.host, self.port or tasmota.PORT)
        exchange = http.Exchange("GET", self.target, self._host_header)
        response = yield from http.request(exchange)
        if response.status == 401:
            raise AuthError("the plug refused the user name or password (HTTP 401)")
        if response.status != 200:
            reason = response.reason.strip()[:40]
            raise ProtocolError(f"/cm answered HTTP {response.status} {reason}".rstrip())
        return tasmota.parse_status(response.body, self.channel)


DRIVER = TasmotaPlug
