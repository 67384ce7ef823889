"""The test kit's smallest pieces, shared by conftest and the plug helpers.

``WAIT`` bounds how long a test waits for an event (a bound on a hang, not a
measure of speed); :class:`FakeClock` is a clock the test moves;
:class:`LoopThread` runs an asyncio loop on a thread of its own, for plugs a
daemon in another process (or a monitor on the main loop) polls;
:func:`plugs_ini` writes the INI file that watches them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from whitegoodsd.detector import Settings
from whitegoodsd.drivers.base import split_host_port
from whitegoodsd.emulator.serve import Watched, ini_text

T = TypeVar("T")

# How long an event may take before a test gives up on it.  Generous: this is
# a bound on a hang, not a measure of speed.
WAIT = 30.0


class FakeClock:
    """Seconds that move only when a test says so; call it for the time."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class LoopThread:
    """An asyncio loop running in a background thread (e.g. for emulated plugs)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        """Run ``coro`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = WAIT) -> T:
        """Call ``function`` on the loop's thread and return its result."""

        async def call() -> T:
            return function()

        return self.run(call(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


def plugs_ini(
    plugs: Mapping[str, int | str],
    *,
    drivers: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    interval: float = 0.1,
    idle: float | None = None,
    appliance: Sequence[tuple[str, str]] = (),
    main: Mapping[str, object] | None = None,
) -> str:
    """An INI file watching ``plugs`` (name -> a port on 127.0.0.1, or HOST:PORT),
    written by the product's own ``ini_text``: every test's INI comes from here.

    ``drivers`` names a family per appliance (default kasa), ``settings`` the
    detection keys (default: 4,000 mW, 2 samples), ``appliance`` more keys for
    every appliance section, ``main`` more keys for [whitegoodsd].
    """
    chosen = settings or Settings.original(4000, 2)
    watched = []
    for name, where in plugs.items():
        host, port = ("127.0.0.1", where) if isinstance(where, int) else split_host_port(where)
        driver = (drivers or {}).get(name, "kasa")
        watched.append(Watched(name, host, port or 0, driver, chosen, tuple(appliance)))
    return ini_text(
        watched,
        extra=[(key, str(value)) for key, value in (main or {}).items()],
        monitor_interval=interval,
        monitor_interval_nothing_running=interval if idle is None else idle,
    )
