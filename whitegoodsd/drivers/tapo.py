"""TP-Link Tapo P110, P115, P110M, KP125M: SMART JSON inside KLAP, HTTP port 80.

A poll is a conversation on a fresh TCP connection: the KLAP session
(``_klap.py``) is made when none is held, then one SMART request asks for
power.  Which of the power methods the plug answers is found on the first
poll, most precise first (``get_emeter_data``: mW, mV, mA; then
``get_energy_usage``: mW; then ``get_current_power``: whole W) and kept.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

from whitegoodsd.conversation import Conversation
from whitegoodsd.drivers._klap import KlapClient
from whitegoodsd.drivers.base import PASSWORD, USERNAME, Driver, ProtocolError, Reading
from whitegoodsd.protocols import klap, tapo


class TapoPlug(Driver):
    """A Tapo energy-monitoring plug speaking KLAP."""

    NAME = "tapo"
    DEFAULT_PORT = klap.PORT
    DESCRIPTION = "TP-Link Tapo P110/P115/P110M/KP125M (KLAP v1/v2, SMART JSON, HTTP 80)"
    OPTIONS = (USERNAME, PASSWORD)
    EMULATOR = "whitegoodsd.emulator.klap"
    DISCOVERY = "whitegoodsd.discovery.tdp"

    def setup(self) -> None:
        self.klap = KlapClient(
            self.host,
            self.port or klap.PORT,
            self.options.get("username"),
            self.options.get("password"),
        )
        self.method: str | None = None  # the power method this plug answers
        # The vendor's app sends a random terminal id per install: one per plug here.
        digest = hashlib.md5(uuid.uuid4().bytes).digest()
        self.terminal_uuid = base64.b64encode(digest).decode()

    def notes(self) -> list[str]:
        return self.klap.take_notes()

    def poll(self) -> Conversation[Reading]:
        yield from self.klap.begin()
        if self.method is not None:
            try:
                return (yield from self._ask(self.method))
            except tapo.MethodUnsupported:
                self.method = None  # new firmware: look again
        for method in tapo.POWER_METHODS:
            try:
                reading = yield from self._ask(method)
            except tapo.MethodUnsupported:
                continue
            self.method = method
            return reading
        raise ProtocolError(
            "the plug answers none of " + ", ".join(tapo.POWER_METHODS) + ": it has no meter"
        )

    def _ask(self, method: str) -> Conversation[Reading]:
        for attempt in (1, 2):
            request = tapo.request(method, int(time.time() * 1000), self.terminal_uuid)
            body = yield from self.klap.call(request)
            try:
                return tapo.parse_power(method, tapo.result(body, method))
            except tapo.SessionTimeout:
                if attempt == 2:
                    raise
                self.klap.forget()
        raise AssertionError("unreachable")


DRIVER = TapoPlug
