"""The engine holds the cyclic garbage collector during a pass and puts it back as it was."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from whitegoodsd import engine
from whitegoodsd.conversation import Conversation
from whitegoodsd.drivers.kasa import realtime_conversation
from whitegoodsd.emulator import SettablePower
from whitegoodsd.errors import PlugError, Reading

from kasa_plug import KasaTestPlug


@pytest.fixture
def restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def watching(inner: Conversation[Reading], seen: list[bool]) -> Conversation[Reading]:
    """``inner``, noting at each step whether the collector is on."""
    value = None
    while True:
        seen.append(gc.isenabled())
        try:
            op = inner.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value = yield op


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_waits_during_a_pass_and_comes_back_as_it_was(
    plugs: list[KasaTestPlug], restore_gc: None, enabled: bool
) -> None:
    plugs.append(KasaTestPlug(SettablePower(5000)))
    (gc.enable if enabled else gc.disable)()
    seen: list[bool] = []
    [reading] = asyncio.run(
        engine.run([watching(realtime_conversation("127.0.0.1", plugs[0].port), seen)], 5.0)
    )
    assert isinstance(reading, Reading) and reading.power_mw == 5000
    assert seen and not any(seen)
    assert gc.isenabled() is enabled


def test_the_collector_comes_back_after_a_cancelled_pass(restore_gc: None) -> None:
    gc.enable()

    def never() -> Conversation[Reading]:
        from whitegoodsd.conversation import Connect, Receive

        yield Connect("127.0.0.1", 9)  # discard: refused, or nothing ever comes
        yield Receive()
        raise PlugError("unreachable")

    async def cancelled() -> None:
        task = asyncio.ensure_future(engine.run([never()], 60.0))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert gc.isenabled()
