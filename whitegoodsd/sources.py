"""How readings reach the monitor: polled once a pass, or pushed when they come.

Rules
-----
* Two kinds of source, one stream of outcomes.  Every outcome is
  ``(appliance, Reading or PlugError, time)`` and goes to that appliance's
  tracker once.
* **Polled** families (``Driver.PUSHED`` False) are asked once a pass:
  ``poll_all`` runs every plug's conversation through the engine, at most
  ``in_flight`` at once, each bounded by the timeout.  The daemon's pass and
  ``--once`` use this same function.
* **Pushed** families (``PUSHED`` True) name a ``HUB``: a module whose
  ``Hub`` class owns the one connection their plugs share (one MQTT broker
  connection for every MQTT appliance).  The monitor makes one hub per
  module, attaches each pushed appliance to it, and gives it ``deliver``:
  the hub calls it for each message as it arrives, and the reading goes to
  the detector right then with its own arrival time, exactly once.
* In a pass, a pushed appliance that delivered nothing since the last pass
  is asked of its hub (``silent(name)``): None means all is well and the
  held last value is read again, as a poll of a plug that reports only on
  change would read it; a PlugError (broker down, or silent past what its
  format promises) counts as a failed poll.

The Hub protocol below is what a pushed family's hub module provides.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from whitegoodsd import engine
from whitegoodsd.conversation import Conversation
from whitegoodsd.drivers.base import Driver
from whitegoodsd.errors import PlugError, Reading, as_failure

Deliver = Callable[[str, Reading | PlugError, float], None]


class Hub(Protocol):
    """The shared connection of a pushed family (``HUB`` module's ``Hub``).

    Made with ``Hub(config, deliver, log)``.
    """

    async def start(self) -> None: ...

    def attach(self, name: str, driver: Driver) -> None: ...

    def detach(self, name: str) -> None: ...

    def silent(self, name: str) -> PlugError | None: ...

    async def close(self) -> None: ...


def _failing(error: PlugError) -> Conversation[Reading]:
    raise error
    yield  # a generator that fails at its first step


def conversation(driver: Driver) -> Conversation[Reading]:
    """The driver's poll, or one that fails with its bug as the reason."""
    try:
        return driver.poll()
    except Exception as exc:  # noqa: BLE001 - a driver's bug must not stop the loop
        return _failing(as_failure(exc, driver.timeout))


async def poll_all(
    plugs: Sequence[Driver],
    timeout: float,  # noqa: ASYNC109 - per poll, not for the whole call
    in_flight: int | None = None,
) -> list[Reading | PlugError]:
    """One poll of every plug, at most ``in_flight`` at a time."""
    return await engine.run([conversation(d) for d in plugs], timeout, in_flight)


class Hubs:
    """The hubs of the pushed families in use, one per hub module."""

    def __init__(self, config: Any, deliver: Deliver, log: logging.Logger) -> None:
        self.config = config
        self.deliver = deliver
        self.log = log
        self.hubs: dict[str, Hub] = {}
        self.routes: dict[str, Hub] = {}  # appliance name -> its hub
        self.running: set[str] = set()  # modules whose hub has started
        self.started = False

    def hub(self, module: str) -> Hub:
        """The hub of ``module``, made now if none is (an output may need one too)."""
        hub = self.hubs.get(module)
        if hub is None:
            hub = importlib.import_module(module).Hub(self.config, self.deliver, self.log)
            self.hubs[module] = hub
        return hub

    def attach(self, name: str, driver: Driver) -> None:
        module = driver.HUB
        assert module is not None, f"{driver.NAME} pushes without a hub"
        hub = self.hub(module)
        hub.attach(name, driver)
        self.routes[name] = hub

    def detach(self, name: str) -> None:
        hub = self.routes.pop(name, None)
        if hub is not None:
            hub.detach(name)

    def silent(self, name: str) -> PlugError | None:
        hub = self.routes.get(name)
        if hub is None:
            return PlugError("no hub")
        if not self.started:
            return PlugError("not connected yet")
        return hub.silent(name)

    async def start(self) -> None:
        """Start every hub not yet started (at start, and after a reload)."""
        for module, hub in self.hubs.items():
            if module not in self.running:
                await hub.start()
                self.running.add(module)
        self.started = True

    async def close(self) -> None:
        for hub in self.hubs.values():
            await hub.close()
        self.hubs.clear()
        self.routes.clear()
        self.running.clear()
        self.started = False
