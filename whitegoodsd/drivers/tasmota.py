"""Tasmota and OpenBeken energy plugs over HTTP (port 80): ``/cm?cmnd=Status 10``.

A poll is one request on a fresh connection, through
:mod:`whitegoodsd.protocols.http`, read by
:mod:`whitegoodsd.protocols.tasmota`.  With a password set, ``user`` and
``password`` go in the query, as Tasmota's web commands take them.  A plug
that refuses them answers HTTP 200 with a WARNING: that is an AuthError, one
line per poll, and nothing is retried.
"""

from __future__ import annotations

from whitegoodsd.conversation import Connect, Conversation
from whitegoodsd.drivers.base import (
    PASSWORD,
    USERNAME,
    AuthError,
    Driver,
    Option,
    ProtocolError,
    Reading,
    format_address,
)
from whitegoodsd.drivers.shelly import CHANNEL
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
        USERNAME,
        PASSWORD,
    )

    def setup(self) -> None:
        self.channel: int = self.options["channel"]
        self.target = tasmota.target(self.options["username"], self.options["password"])
        self._host_header = format_address(
            self.host, None if self.port == tasmota.PORT else self.port
        )

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
