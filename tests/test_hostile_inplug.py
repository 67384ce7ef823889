"""Hostile INPLUGs: bad checksums, short packets, wrong counters, duplicates, floods.

Each misbehaviour of tests/hostile.py's HostileInplug is one concise failed
poll; a monitor watching all of them next to a healthy INPLUG (which sends
every packet twice, as real ones do) detects its cycle on the very pass the
samples call for.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.drivers.inplug import InplugPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.monitor import Monitor

from hostile import (
    INPLUG_FAILS as FAILS,
)
from hostile import (
    INPLUG_SPIKE as SPIKE,
)
from hostile import (
    TIMEOUT,
    InplugMode,
    ScriptedPower,
    start_hostile_inplug,
)
from hostile import (
    inplug_name as name,
)


async def read_once(mode: InplugMode) -> Reading | PlugError:
    server = await start_hostile_inplug(mode, SettablePower(1_500_000))
    try:
        return await InplugPlug("127.0.0.1", server.port, TIMEOUT).read()
    except PlugError as exc:
        return exc
    finally:
        await server.close()


@pytest.mark.parametrize("mode", list(FAILS), ids=lambda m: m.value)
def test_each_misbehaviour_is_one_concise_failed_poll(mode: InplugMode) -> None:
    outcome = asyncio.run(read_once(mode))
    assert isinstance(outcome, PlugError), outcome
    assert re.fullmatch(FAILS[mode], str(outcome)), str(outcome)
    assert "\n" not in str(outcome) and len(str(outcome)) <= 160


def test_replies_sent_twice_are_read_once() -> None:
    assert asyncio.run(read_once(InplugMode.HEALTHY)) == Reading(power_mw=1_500_000)


def test_the_largest_reading_three_bytes_hold_is_read_as_it_is() -> None:
    assert asyncio.run(read_once(InplugMode.SPIKE)) == Reading(power_mw=0xFFFFFF)


def washer_script(poll: int) -> int:
    """Low for 3 polls, high for 5, then low: RUNNING on poll 5, FINISHED on 10."""
    return 2_000_000 if 4 <= poll <= 8 else 0


def test_a_monitor_among_hostile_inplugs_detects_the_healthy_cycle_on_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    washer = ScriptedPower(washer_script)
    events: dict[int, list[str]] = {}

    async def scenario() -> None:
        servers = {
            name(m): await start_hostile_inplug(m) for m in InplugMode if m.value != "healthy"
        }
        servers["WASHER"] = await start_hostile_inplug(InplugMode.HEALTHY, washer)
        sections = "".join(
            f"[{n}]\nsmartplug = 127.0.0.1:{s.port}\ndriver = inplug\n"
            "threshold_running_mw = 4000\nminsamples = 2\n"
            for n, s in servers.items()
        )
        config = configuration.parse(
            f"[whitegoodsd]\nappliances = {', '.join(servers)}\ntimeout = {TIMEOUT}\n"
            f"unreachable_after = 1000\n{sections}",
            "inplug.ini",
        )
        monitor = Monitor(config)
        try:
            for number in range(1, 12):
                result = await monitor.poll_pass()
                events[number] = [f"{n} {e.kind.value}" for n, e in result.events]
                assert sorted(result.failed) == sorted(name(m) for m in FAILS)
        finally:
            await monitor.close()
            for server in servers.values():
                await server.close()

    with caplog.at_level(logging.INFO, logger="whitegoodsd"):
        asyncio.run(scenario())
    assert {n: e for n, e in events.items() if e} == {
        5: ["WASHER RUNNING"],
        10: ["WASHER FINISHED"],
    }
    assert washer.reads == 11  # one reading a poll, the duplicate replies dropped
    messages = [r.getMessage() for r in caplog.records]
    for mode, pattern in FAILS.items():
        prefix = f"Error getting current usage for {name(mode)}: "
        lines = [m for m in messages if m.startswith(prefix)]
        assert len(lines) == 11, (mode, lines)
        assert all(re.fullmatch(pattern, line.removeprefix(prefix)) for line in lines), lines
    assert [m for m in messages if "SPIKE_BL" in m] == [SPIKE] * 11
    assert all(r.exc_info is None for r in caplog.records)
