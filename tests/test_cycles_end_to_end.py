"""Whole cycles through real sockets: plugs replaying profiles, the monitor, syslog.

The monitor runs in this process on a fake wall clock that jumps from one
scheduled pass to the next, so an hour-and-a-half wash takes well under a
second and the truth (the profile) is known exactly.  The plugs are real TCP
servers speaking the Kasa protocol; the lines are read from a syslog socket.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from whitegoodsd import config as configuration
from whitegoodsd.cycle import summary
from whitegoodsd.detector import Settings
from whitegoodsd.monitor import Monitor
from whitegoodsd.outputs import syslog as syslog_output
from whitegoodsd.status import CycleRecord

from conftest import FakeClock, SyslogListener, write_ini
from kasa_plug import DRYER, WASHER, KasaTestPlug, Phase, ProfilePower
from kit import plugs_ini

LOCAL5 = 21
WARNING = 4
FINISHED = re.compile(
    r"^(?P<name>\w+) is FINISHED\. Ran (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d), "
    r"used (?P<kwh>[\d,]+\.\d{3}) kWh, peak (?P<w>[\d,]+) W\.$"
)


def load_config(
    tmp_path: Path,
    syslog: SyslogListener,
    ports: dict[str, int],
    *,
    interval: float = 60,
    idle_interval: float = 300,
    appliance: str = "",
    main: str = "",
) -> configuration.Config:
    """``appliance`` and ``main``: more ``key = value`` lines for those sections."""
    text = plugs_ini(
        ports,
        settings=Settings(4000, 2, 4000, 3),
        interval=interval,
        idle=idle_interval,
        appliance=pairs(appliance),
        main={"syslog_address": syslog.path, "timeout": 5, "unreachable_after": 3}
        | dict(pairs(main)),
    )
    path = write_ini(tmp_path / "whitegoodsd.ini", text)
    syslog_output.setup(str(syslog.path), LOCAL5, debug=False, stderr=False)
    return configuration.load(str(path))


def pairs(lines: str) -> list[tuple[str, str]]:
    return [
        (key.strip(), value.strip())
        for key, sep, value in (line.partition("=") for line in lines.splitlines())
        if sep
    ]


async def replay(monitor: Monitor, clock: FakeClock, until: float) -> None:
    """Run passes on the monitor's own schedule until the clock reaches ``until``."""
    while clock.now < until:
        result = await monitor.poll_pass()
        clock.now += monitor.interval(result.active)


def finished_lines(syslog: SyslogListener) -> list[re.Match[str]]:
    texts = [t for t in syslog.texts() if " is FINISHED." in t]
    matches = [FINISHED.match(t) for t in texts]
    assert all(matches), texts
    return [m for m in matches if m]


def steps(phases: Sequence[Phase], idle_w: float) -> float:
    """The sum of the power steps through a profile, from idle back to idle, in W."""
    levels = [idle_w, *(p.watts for p in phases), idle_w]
    return sum(abs(b - a) for a, b in itertools.pairwise(levels))


@pytest.mark.parametrize(
    ("phases", "shape", "interval", "idle_interval", "finish_delay"),
    [
        pytest.param(WASHER, "v2", 60, 300, 600, id="washer-v2-60s"),
        pytest.param(WASHER, "v1", 30, 30, 600, id="washer-v1-30s"),
        pytest.param(WASHER, "no-total", 60, 60, 600, id="washer-integrated-60s"),
        pytest.param(DRYER, "v2", 60, 900, 0, id="dryer-v2-60s"),
        pytest.param(DRYER, "no-total", 10, 60, 0, id="dryer-integrated-10s"),
    ],
)
def test_the_finished_line_carries_the_cycles_statistics(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    phases: Sequence[Phase],
    shape: str,
    interval: float,
    idle_interval: float,
    finish_delay: float,
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(phases, clock, start=clock.now + 1234.5)
    plugs.append(plug := KasaTestPlug(profile, shape))
    config = load_config(
        tmp_path,
        syslog,
        {"WASHER": plug.port},
        interval=interval,
        idle_interval=idle_interval,
        appliance=f"finish_delay = {finish_delay}",
    )
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, profile.end + finish_delay + 3600))

    assert syslog.texts().count("WASHER is RUNNING.") == 1
    (line,) = finished_lines(syslog)
    (status,) = monitor.statuses()
    record = status.last_cycle
    assert record is not None and status.cycles == 1 and not status.running
    assert line.group(0) == f"WASHER is FINISHED. {summary(record)}"

    truth = profile.end - profile.start
    # The start is seen within one idle interval, the end within one interval.
    assert record.started - idle_interval < profile.start <= record.started
    assert truth - idle_interval < record.duration <= truth + interval
    shown = int(line["h"]) * 3600 + int(line["m"]) * 60 + int(line["s"])
    assert abs(shown - record.duration) <= 0.5

    peak_w = max(p.watts for p in phases)
    assert record.peak_mw == peak_w * 1000
    assert line["w"] == f"{peak_w:,.0f}"

    assert record.energy_wh is not None
    assert line["kwh"] == f"{record.energy_wh / 1000:,.3f}"
    spanned = profile.energy_wh(record.started, record.started + record.duration)
    # The counter's resolution (1 Wh) at each end; the trapezoid rule is off by
    # at most half of each step change over one interval.
    slack = 2.0 if shape != "no-total" else interval * steps(phases, profile.idle_w) / 2 / 3600
    assert abs(record.energy_wh - spanned) <= slack
    truth_wh = profile.energy_wh(profile.start, profile.end)
    one_interval_wh = peak_w * max(interval, idle_interval) / 3600
    assert abs(record.energy_wh - truth_wh) <= one_interval_wh + slack


@pytest.mark.parametrize(
    ("silent_from", "end", "finish_after"),
    [
        # Gone mid-cycle: the end is the first sample after the silence, and
        # FINISHED needs 3 lows and 300 s of them, all after it.
        pytest.param(1800, None, 300, id="mid-cycle"),
        # Gone after two low samples (60 s below): the end stays the first of
        # them, and 240 s more below are needed after the silence, not 0.
        pytest.param(4890 + 121, 4920, 240, id="after-two-lows"),
    ],
)
def test_a_silent_plug_never_finishes_a_cycle(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    silent_from: float,
    end: float | None,
    finish_after: float,
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(DRYER, clock, start=clock.now)  # passes every 60 s from here
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    config = load_config(tmp_path, syslog, {"DRYER": plug.port}, appliance="finish_delay = 300")
    monitor = Monitor(config, wallclock=clock)
    finished_at: list[float] = []
    monitor.listeners.append(
        lambda name, event: finished_at.append(event.at) if event.kind.value == "FINISHED" else None
    )

    async def scenario() -> None:
        await replay(monitor, clock, profile.start + silent_from)
        assert syslog.texts().count("DRYER is RUNNING.") == 1
        plug.silent = True  # gone for hours
        await replay(monitor, clock, profile.end + 4 * 3600)
        texts = syslog.texts()
        assert texts.count("DRYER is UNREACHABLE.") == 1
        assert not any("FINISHED" in t for t in texts)
        (status,) = monitor.statuses()
        assert status.running and not status.up
        plug.silent = False  # back, and the dryer long finished
        reachable_at = clock.now
        await replay(monitor, clock, clock.now + 3600)
        assert syslog.texts().count("DRYER is REACHABLE.") == 1
        assert len(finished_lines(syslog)) == 1
        (status,) = monitor.statuses()
        assert status.last_cycle is not None
        ended = status.last_cycle.started + status.last_cycle.duration
        assert ended == (reachable_at if end is None else profile.start + end)
        assert finished_at == [reachable_at + finish_after]

    asyncio.run(scenario())


def test_a_plug_that_answers_again_continues_the_cycle(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower(DRYER, clock, start=clock.now)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    config = load_config(tmp_path, syslog, {"DRYER": plug.port})
    monitor = Monitor(config, wallclock=clock)

    async def scenario() -> None:
        await replay(monitor, clock, profile.start + 600)
        plug.silent = True
        await replay(monitor, clock, profile.start + 1800)
        plug.silent = False
        await replay(monitor, clock, profile.end + 1800)

    asyncio.run(scenario())
    texts = syslog.texts()
    assert texts.count("DRYER is RUNNING.") == 1
    assert texts.count("DRYER is UNREACHABLE.") == texts.count("DRYER is REACHABLE.") == 1
    assert len(finished_lines(syslog)) == 1
    (status,) = monitor.statuses()
    assert status.last_cycle is not None
    # The whole cycle, silence included, and the plug's counter across it.
    assert status.last_cycle.started == profile.start
    assert profile.end <= status.last_cycle.started + status.last_cycle.duration < profile.end + 60
    energy = profile.energy_wh(profile.start, profile.end)
    assert status.last_cycle.energy_wh == pytest.approx(energy, abs=2400 * 60 / 3600 + 2)


def test_a_spike_is_discarded_with_a_warning(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock(1_763_000_000.0)
    profile = ProfilePower([Phase(600, 1500)], clock, start=clock.now + 3600)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    config = load_config(tmp_path, syslog, {"KETTLE": plug.port}, idle_interval=60)
    monitor = Monitor(config, wallclock=clock)

    async def scenario() -> None:
        for _ in range(3):
            profile.spike_mw = 25_000_000
            await replay(monitor, clock, clock.now + 1)
        (status,) = monitor.statuses()
        assert not status.up and status.reading is None
        assert status.error == "implausible reading of 25,000,000 mW discarded"
        await replay(monitor, clock, profile.start + 120)
        profile.spike_mw = 25_000_000
        await replay(monitor, clock, profile.end + 600)

    asyncio.run(scenario())
    warnings = [m for m in syslog.drain() if m.text.startswith("Discarded")]
    assert len(warnings) == 4 and all(m.severity == WARNING for m in warnings)
    assert warnings[0].text == (
        "Discarded a reading of 25,000,000 mW from KETTLE: above max_plausible_mw (4,000,000 mW)."
    )
    texts = syslog.texts()
    # Three spikes in a row (minsamples = 2) started nothing; the one mid-cycle
    # is not the peak.
    assert texts.count("KETTLE is RUNNING.") == 1
    (line,) = finished_lines(syslog)
    assert line["w"] == "1,500"


def test_two_appliances_keep_their_own_figures(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock(1_763_000_000.0)
    washer = ProfilePower(WASHER, clock, start=clock.now + 600)
    dryer = ProfilePower(DRYER, clock, start=washer.end + 300)
    plugs.append(washer_plug := KasaTestPlug(washer, "v2"))
    plugs.append(dryer_plug := KasaTestPlug(dryer, "v1"))
    config = load_config(
        tmp_path,
        syslog,
        {"WASHER": washer_plug.port, "DRYER": dryer_plug.port},
        appliance="finish_delay = 600",
    )
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, dryer.end + 3600))
    lines = {m["name"]: m for m in finished_lines(syslog)}
    assert set(lines) == {"WASHER", "DRYER"}
    assert lines["WASHER"]["w"] == "2,150" and lines["DRYER"]["w"] == "2,400"
    records: dict[str, CycleRecord | None] = {s.name: s.last_cycle for s in monitor.statuses()}
    assert all(r is not None for r in records.values())
