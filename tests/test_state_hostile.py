"""State files that must not crash or mislead: nested too deep, huge, of a newer daemon.

Each is one warning and a fresh start; a newer daemon's file is left exactly
as it was, so going back to that daemon loses nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_cycles_end_to_end import load_config, replay
from test_pushed_source import INI, PushyHub, pushy  # noqa: F401 - its fixture too

from whitegoodsd import config as configuration
from whitegoodsd import state
from whitegoodsd.errors import Reading
from whitegoodsd.monitor import Monitor

from conftest import FakeClock, SyslogListener
from kasa_plug import WASHER, KasaTestPlug, ProfilePower


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("[" * 100_000, "nested too deep", id="100000-nested-brackets"),
        pytest.param(
            '{"version": 1, "appliances": ' * 50_000, "nested too deep", id="nested-objects"
        ),
        pytest.param("\udcff", None, id="not-utf-8"),
    ],
)
def test_an_unreadable_state_file_is_one_warning_and_a_fresh_start(
    tmp_path: Path,
    syslog: SyslogListener,
    plugs: list[KasaTestPlug],
    text: str,
    reason: str | None,
) -> None:
    clock = FakeClock()
    profile = ProfilePower(WASHER, clock, start=clock.now)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    state_file = tmp_path / "state.json"
    state_file.write_bytes(text.encode(errors="surrogateescape"))
    config = load_config(tmp_path, syslog, {"WASHER": plug.port}, main=f"state_file = {state_file}")
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, profile.start + 600))
    warnings = [m for m in syslog.drain() if m.text.startswith("State file")]
    assert len(warnings) == 1 and warnings[0].severity == 4
    assert warnings[0].text.endswith("ignored.")
    if reason is not None:
        assert f"({reason})" in warnings[0].text
    assert syslog.texts().count("WASHER is RUNNING.") == 1
    assert json.loads(state_file.read_text())["appliances"]["WASHER"]["running"] is True


def test_a_huge_state_file_is_not_read_into_memory(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with path.open("w") as handle:
        handle.write('{"version": 1, "pad": "')
        handle.truncate(state.MAX_BYTES + 10)
    loaded = state.load(str(path))
    assert loaded.appliances == {}
    assert loaded.warnings == (
        f"State file {path} is larger than {state.MAX_BYTES:,} bytes; ignored.",
    )


def test_a_newer_daemons_state_file_is_left_untouched(
    tmp_path: Path, syslog: SyslogListener, plugs: list[KasaTestPlug]
) -> None:
    clock = FakeClock()
    profile = ProfilePower(WASHER, clock, start=clock.now)
    plugs.append(plug := KasaTestPlug(profile, "v2"))
    state_file = tmp_path / "state.json"
    newer = json.dumps({"version": state.VERSION + 1, "appliances": {"WASHER": {"x": 1}}})
    state_file.write_text(newer)
    config = load_config(
        tmp_path,
        syslog,
        {"WASHER": plug.port},
        appliance="finish_delay = 600",
        main=f"state_file = {state_file}",
    )
    monitor = Monitor(config, wallclock=clock)
    asyncio.run(replay(monitor, clock, profile.end + 3600))
    asyncio.run(monitor.close())
    texts = syslog.texts()
    assert texts.count("WASHER is RUNNING.") == 1
    assert sum(t.startswith("WASHER is FINISHED.") for t in texts) == 1
    assert (
        f"State file {state_file} is of version {state.VERSION + 1}, newer than this "
        f"daemon's {state.VERSION}; left untouched, running without it."
    ) in texts
    assert state_file.read_text() == newer


def test_an_event_pushed_between_passes_is_saved_at_once(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    config = configuration.parse(INI + f"[whitegoodsd]\nstate_file = {state_file}\n", "p.ini")

    async def scenario() -> None:
        monitor = Monitor(config)
        (hub,) = PushyHub.made
        await monitor.hubs.start()
        for milliwatts in (5_000, 6_000, 1_000, 1_000):
            hub.deliver("SOCKET", Reading(milliwatts), 0.0)
        # No pass since: as after a kill -9 in the idle interval.
        saved = json.loads(state_file.read_text())["appliances"]["SOCKET"]
        assert (saved["running"], saved["cycles"]) == (False, 1)
        await monitor.close()

    asyncio.run(scenario())
