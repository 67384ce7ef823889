"""Readings that arrive on their own: a pushed family through the monitor.

A test-only family whose hub the test drives by hand stands in for a broker:
what matters here is the monitor's side of the contract (sources.py).  The
MQTT family's tests run the same path against a real broker.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from typing import Any, ClassVar

import pytest

from whitegoodsd import config as configuration
from whitegoodsd import drivers
from whitegoodsd.drivers.base import Driver
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.monitor import Monitor
from whitegoodsd.sources import Deliver

HUB_MODULE = "whitegoodsd_test_pushy_hub"


class PushyHub:
    """A hub whose messages and silence the test decides."""

    made: ClassVar[list[PushyHub]] = []

    def __init__(self, config: Any, deliver: Deliver, log: logging.Logger) -> None:
        self.deliver = deliver
        self.attached: dict[str, Driver] = {}
        self.silence: PlugError | None = None
        self.started = self.closed = False
        PushyHub.made.append(self)

    async def start(self) -> None:
        self.started = True

    def attach(self, name: str, driver: Driver) -> None:
        self.attached[name] = driver

    def detach(self, name: str) -> None:
        del self.attached[name]

    def silent(self, name: str) -> PlugError | None:
        return self.silence

    async def close(self) -> None:
        self.closed = True


class PushyPlug(Driver):
    NAME = "pushy"
    DEFAULT_PORT = None
    PUSHED = True
    HUB = HUB_MODULE

    @classmethod
    def parse_smartplug(cls, text: str) -> tuple[str, int | None]:
        return text, None


@pytest.fixture(autouse=True)
def pushy(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(HUB_MODULE)
    module.Hub = PushyHub  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, HUB_MODULE, module)
    monkeypatch.setitem(drivers.registry(), "pushy", PushyPlug)
    PushyHub.made.clear()


INI = """\
[whitegoodsd]
appliances = SOCKET, OTHER
unreachable_after = 2

[SOCKET]
driver = pushy
smartplug = plugs/socket
threshold_running_mw = 4000
minsamples = 2

[OTHER]
driver = pushy
smartplug = plugs/other
threshold_running_mw = 4000
minsamples = 2
"""


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def test_one_hub_for_all_its_plugs_and_readings_go_in_as_they_come(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        monitor = Monitor(configuration.parse(INI, "pushy.ini"))
        (hub,) = PushyHub.made
        assert sorted(hub.attached) == ["OTHER", "SOCKET"]
        await monitor.hubs.start()
        assert hub.started
        hub.deliver("SOCKET", Reading(5_000), 0.0)
        hub.deliver("SOCKET", Reading(6_000), 0.0)
        # RUNNING as the second message arrives, not at the next pass:
        assert "SOCKET is RUNNING." in lines(caplog)
        # The pass does not count SOCKET's messages again, and reads OTHER's
        # held value (it has none yet: nothing to read).
        result = await monitor.poll_pass()
        assert result.active and result.failed == []
        statuses = {s.name: s for s in monitor.statuses()}
        assert statuses["SOCKET"].reading == Reading(6_000)
        assert statuses["OTHER"].reading is None
        await monitor.close()
        assert hub.closed

    asyncio.run(scenario())


def test_a_quiet_plug_holds_its_last_value_until_finish(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        monitor = Monitor(configuration.parse(INI, "pushy.ini"))
        (hub,) = PushyHub.made
        await monitor.hubs.start()
        hub.deliver("SOCKET", Reading(5_000), 0.0)
        await monitor.poll_pass()  # SOCKET sent something: nothing held
        await monitor.poll_pass()  # silent: its 5 W again, the second high sample
        assert lines(caplog) == ["SOCKET is RUNNING."]
        hub.deliver("SOCKET", Reading(1_000), 0.0)  # once "1 W", then nothing
        await monitor.poll_pass()
        await monitor.poll_pass()  # the held 1 W is the second low sample
        assert lines(caplog)[-1].startswith("SOCKET is FINISHED.")
        await monitor.close()

    asyncio.run(scenario())


def test_the_hub_says_when_a_plug_is_lost(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        monitor = Monitor(configuration.parse(INI, "pushy.ini"))
        (hub,) = PushyHub.made
        await monitor.hubs.start()
        hub.deliver("SOCKET", Reading(1_000), 0.0)
        hub.deliver("OTHER", Reading(1_000), 0.0)
        hub.silence = PlugError("broker 127.0.0.1:1883 unreachable")
        for _ in range(3):
            await monitor.poll_pass()
        said = lines(caplog)
        assert said.count("SOCKET is UNREACHABLE.") == 1
        assert said.count("OTHER is UNREACHABLE.") == 1
        hub.silence = None
        hub.deliver("SOCKET", Reading(1_000), 0.0)
        assert lines(caplog)[-1] == "SOCKET is REACHABLE."
        await monitor.close()

    asyncio.run(scenario())


def test_a_message_for_an_appliance_gone_by_reload_is_dropped() -> None:
    async def scenario() -> None:
        monitor = Monitor(configuration.parse(INI, "pushy.ini"))
        (hub,) = PushyHub.made
        hub.deliver("GONE", Reading(5_000), 0.0)
        assert [s.reading for s in monitor.statuses()] == [None, None]
        await monitor.close()

    asyncio.run(scenario())
