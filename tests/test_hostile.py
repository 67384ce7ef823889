"""Hostile plugs: every misbehaviour is one concise failed poll, never a crash.

The driver is tested against each mode of tests/hostile.py alone; then a
monitor (in this process, passes counted one by one) and a daemon (a real
process, its log lines read back; hostile INPLUGs too) watch one appliance
per mode next to healthy ones, whose cycles must be detected on the very
pass the samples call for.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.detector import EventKind
from whitegoodsd.drivers.kasa import KasaPlug
from whitegoodsd.emulator import SettablePower
from whitegoodsd.engine import CHUNK  # what the driver reads at a time
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.monitor import Monitor
from whitegoodsd.protocols import kasa

from conftest import Daemon, SyslogListener, write_ini
from hostile import (
    FORTY_MW_V1,
    INPLUG_FAILS,
    INPLUG_SPIKE,
    TIMEOUT,
    HostileInplug,
    HostilePlug,
    InplugMode,
    Mode,
    inplug_name,
    plug_thread,
)
from kit import plugs_ini

# What a failed poll says, per mode: the whole line after "NAME: ".
FAILS: dict[Mode, str] = {
    Mode.SILENT: r"no answer within 0\.5 s",
    Mode.CLOSE: r"connection closed without a reply|connection reset by the plug",
    Mode.RANDOM: r"reply claims [\d,]+ bytes, more than the 65,536 accepted"
    r"|reply is not JSON \(.+\)",
    Mode.HUGE: r"reply claims 2,147,483,648 bytes, more than the 65,536 accepted",
    Mode.FLOOD: r"reply longer than the 65,536 bytes accepted",
    Mode.TRICKLE: r"no answer within 0\.5 s",
    Mode.BROKEN_JSON: r"reply is not JSON \(.+\)",
    Mode.ERR_CODE: r"emeter err_code -1: module not support",
    Mode.DEEP: r"reply is nested too deeply",
    Mode.OVERFLOW: r"power is out of range",
}

SPIKE = (
    "Discarded a reading of 40,000,000,000 mW from MEGAWATTS: "
    "above max_plausible_mw (4,000,000 mW)."
)
WATTS_1500 = Reading(power_mw=1_500_000, voltage_mv=230_000, current_ma=6521, total_wh=0.0)


def concise(reason: str) -> bool:
    return "\n" not in reason and "Traceback" not in reason and len(reason) <= 120


async def read_once(plug: HostilePlug) -> Reading | PlugError:
    await plug.start()
    try:
        return await KasaPlug("127.0.0.1", plug.port, TIMEOUT).read()
    except PlugError as exc:
        return exc
    finally:
        await plug.close()


@pytest.mark.parametrize("mode", list(FAILS), ids=lambda m: m.value)
def test_each_misbehaviour_is_one_concise_failed_poll(mode: Mode) -> None:
    outcome = asyncio.run(read_once(HostilePlug(mode, power=SettablePower(1_500_000))))
    assert isinstance(outcome, PlugError), outcome
    assert re.fullmatch(FAILS[mode], str(outcome)), str(outcome)
    assert concise(str(outcome))


@pytest.mark.parametrize(
    "mode", [Mode.HEALTHY, Mode.ZERO_LENGTH, Mode.SPLIT, Mode.TRICKLE], ids=lambda m: m.value
)
def test_odd_but_valid_replies_are_read_correctly(mode: Mode) -> None:
    # TRICKLE without pauses: a reply arriving a byte at a time is still a reply.
    plug = HostilePlug(mode, power=SettablePower(1_500_000), trickle=0.0)
    assert asyncio.run(read_once(plug)) == WATTS_1500
    assert plug.requests == 1


def test_a_40_mw_v1_reply_parses_without_overflow() -> None:
    outcome = asyncio.run(read_once(HostilePlug(Mode.MEGAWATTS)))
    assert outcome == Reading(40_000_000_000, 230_000, 173_913_043, 55_139.0)
    assert kasa.parse_realtime(FORTY_MW_V1).power_mw == 40 * 10**9


class SpyDecoder(kasa.FrameDecoder):
    """Records the most bytes any decoder ever held."""

    most = 0

    def feed(self, data: bytes) -> bytes | None:
        try:
            return super().feed(data)
        finally:
            SpyDecoder.most = max(SpyDecoder.most, self.buffered)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> type[SpyDecoder]:
    monkeypatch.setattr(kasa, "FrameDecoder", SpyDecoder)
    SpyDecoder.most = 0
    return SpyDecoder


@pytest.mark.parametrize("mode", [Mode.FLOOD, Mode.RANDOM, Mode.HUGE], ids=lambda m: m.value)
def test_memory_is_bounded_by_the_decoder_cap(mode: Mode, spy: type[SpyDecoder]) -> None:
    plug = HostilePlug(mode)
    outcome = asyncio.run(read_once(plug))
    assert isinstance(outcome, PlugError)
    assert spy.most <= kasa.MAX_REPLY + CHUNK
    if mode is Mode.FLOOD:
        # The flood really reached the cap: the bound above was tested, not idle.
        assert spy.most > kasa.MAX_REPLY


# -- a monitor watching every mode at once -------------------------------------

HOSTILE = [m for m in Mode if m is not Mode.HEALTHY]
HIGH = 2_000_000


def washer_script(request: int) -> int:
    """Low for 3 polls, high for 5, then low: RUNNING on poll 5, FINISHED on 10."""
    return HIGH if 4 <= request <= 8 else 0


def dryer_script(request: int) -> int:
    """High for polls 2 to 4: RUNNING on poll 3, FINISHED on poll 6."""
    return HIGH if 2 <= request <= 4 else 0


def hostile_ini(plugs: Mapping[str, HostilePlug | HostileInplug], **extra: str) -> str:
    return plugs_ini(
        {name: plug.address for name, plug in plugs.items()},
        drivers={n: "inplug" for n, p in plugs.items() if isinstance(p, HostileInplug)},
        interval=0.05,
        main={"timeout": TIMEOUT, "unreachable_after": 1000, **extra},
    )


def appliance_name(mode: Mode) -> str:
    return mode.value.upper().replace("-", "_")


def make_plugs() -> dict[str, HostilePlug]:
    """One appliance per hostile mode, then the healthy WASHER and DRYER."""
    plugs = {appliance_name(m): HostilePlug(m, trickle=0.2) for m in HOSTILE}
    plugs["WASHER"] = HostilePlug(Mode.HEALTHY, script=washer_script)
    plugs["DRYER"] = HostilePlug(Mode.SPLIT, script=dryer_script)
    return plugs


def test_a_monitor_among_hostile_plugs_detects_the_healthy_cycles_on_time(
    caplog: pytest.LogCaptureFixture, spy: type[SpyDecoder]
) -> None:
    plugs = make_plugs()
    events: dict[int, list[str]] = {}

    async def scenario() -> None:
        for plug in plugs.values():
            await plug.start()
        config = configuration.parse(hostile_ini(plugs), "hostile.ini")
        monitor = Monitor(config)
        try:
            for number in range(1, 12):
                result = await monitor.poll_pass()
                events[number] = [f"{name} {event.kind.value}" for name, event in result.events]
                assert sorted(result.failed) == sorted(appliance_name(m) for m in FAILS)
        finally:
            await monitor.close()
            for plug in plugs.values():
                await plug.close()

    with caplog.at_level(logging.INFO, logger="whitegoodsd"):
        asyncio.run(scenario())
    assert {n: e for n, e in events.items() if e} == {
        3: ["DRYER RUNNING"],
        5: ["WASHER RUNNING"],
        6: ["DRYER FINISHED"],
        10: ["WASHER FINISHED"],
    }
    assert plugs["WASHER"].requests == plugs["DRYER"].requests == 11
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    for mode, pattern in FAILS.items():
        prefix = f"Error getting current usage for {appliance_name(mode)}: "
        lines = [r.getMessage() for r in errors if r.getMessage().startswith(prefix)]
        assert len(lines) == 11, (mode, lines)
        for line in lines:
            assert re.fullmatch(pattern, line.removeprefix(prefix)), line
            assert concise(line.removeprefix(prefix))
    # 40 MW is read, and discarded by the spike filter: one warning a pass.
    spikes = [r.getMessage() for r in caplog.records if "MEGAWATTS" in r.getMessage()]
    assert spikes == [SPIKE] * 11
    assert all(r.exc_info is None for r in caplog.records)
    assert spy.most <= kasa.MAX_REPLY + CHUNK


def test_a_40_mw_reading_never_starts_a_cycle() -> None:
    async def scenario() -> list[EventKind]:
        plug = await HostilePlug(Mode.MEGAWATTS).start()
        config = configuration.parse(hostile_ini({"MEGAWATTS": plug}), "mw.ini")
        monitor = Monitor(config)
        kinds = []
        for _ in range(3):
            kinds += [event.kind for _, event in (await monitor.poll_pass()).events]
        await monitor.close()
        await plug.close()
        return kinds

    assert asyncio.run(scenario()) == []


# -- the daemon, as a process --------------------------------------------------


@pytest.fixture
def thread_plugs() -> Iterator[dict[str, HostilePlug | HostileInplug]]:
    with plug_thread() as thread:
        plugs: dict[str, HostilePlug | HostileInplug] = {
            appliance_name(m): thread.start(m, trickle=0.2) for m in HOSTILE
        }
        # The INPLUG driver's misbehaving plugs in the same daemon.
        for mode in InplugMode:
            if mode is not InplugMode.HEALTHY:
                plugs[inplug_name(mode)] = thread.start_inplug(mode)
        plugs["WASHER"] = thread.start(Mode.HEALTHY, script=washer_script)
        plugs["DRYER"] = thread.start(Mode.SPLIT, script=dryer_script)
        yield plugs


def test_the_daemon_keeps_running_among_hostile_plugs(
    tmp_path: Path,
    syslog: SyslogListener,
    daemon: Callable[..., Daemon],
    thread_plugs: dict[str, HostilePlug | HostileInplug],
) -> None:
    ini = write_ini(
        tmp_path / "whitegoodsd.ini",
        hostile_ini(thread_plugs, syslog_address=str(syslog.path)),
    )
    process = daemon("-f", "-c", str(ini))
    washer = thread_plugs["WASHER"]
    assert isinstance(washer, HostilePlug)
    # WASHER finishes on its 10th poll; the 13th starts after two more whole passes.
    washer.gauge.wait_accepted(13)
    assert process.process.poll() is None
    assert process.stop() == 0
    # The lines as the daemon copies them to stderr: syslog drops lines when
    # its socket's queue (ten datagrams by default) is full, and a pass here
    # logs some twenty at once.
    tag = f"whitegoodsd[{process.process.pid}]: "
    texts = [line.removeprefix(tag) for line in process.stderr.splitlines()]
    assert all(t != line for t, line in zip(texts, process.stderr.splitlines(), strict=True))

    # Every pass logs one SILENT line before the healthy appliances' events
    # (config order), so counting them numbers the passes.
    def on_pass(event: str) -> int:
        # FINISHED may carry cycle statistics after the period.
        at = next(i for i, t in enumerate(texts) if t.startswith(event))
        before = texts[:at]
        return sum(t.startswith("Error getting current usage for SILENT:") for t in before)

    assert on_pass("DRYER is RUNNING.") == 3
    assert on_pass("DRYER is FINISHED.") == 6
    assert on_pass("WASHER is RUNNING.") == 5
    assert on_pass("WASHER is FINISHED.") == 10
    for name in ("WASHER", "DRYER"):
        assert sum(t.startswith(f"{name} is RUNNING.") for t in texts) == 1
        assert sum(t.startswith(f"{name} is FINISHED.") for t in texts) == 1
    passes = sum(t.startswith("Error getting current usage for SILENT:") for t in texts)
    assert passes >= 12
    expected = {appliance_name(m): p for m, p in FAILS.items()}
    expected |= {inplug_name(m): p for m, p in INPLUG_FAILS.items()}
    for appliance, pattern in expected.items():
        prefix = f"Error getting current usage for {appliance}: "
        lines = [t for t in texts if t.startswith(prefix)]
        # One line per pass: a pass's results are logged all together or not at all.
        assert len(lines) == passes, (appliance, len(lines), passes)
        for line in lines:
            assert re.fullmatch(pattern, line.removeprefix(prefix)), line
    assert not any("\n" in t or "Traceback" in t for t in texts)
    assert [t for t in texts if "MEGAWATTS" in t] == [SPIKE] * passes
    assert [t for t in texts if "SPIKE_BL" in t] == [INPLUG_SPIKE] * passes
    assert "Exiting on signal." in texts
    # Nothing about the plugs that answered in odd but valid ways.
    assert not any("ZERO_LENGTH" in t or "SPLIT" in t for t in texts)
