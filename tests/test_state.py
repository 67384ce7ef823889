"""The state file: round trip, atomic replacement, and never a crash on a bad file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whitegoodsd import state
from whitegoodsd.cycle import OpenCycle
from whitegoodsd.status import CycleRecord

OPEN = OpenCycle.begin(2_000_000, 1000.0, 10.5).add(0, 1060.0, 10.6, low=True)
LAST = CycleRecord(started=1.0, duration=5525.0, energy_wh=850.0, peak_mw=2_150_000)
WASHER = state.ApplianceState("10.0.0.1:9999", running=True, cycle=OPEN, cycles=3, last_cycle=LAST)
DRYER = state.ApplianceState("10.0.0.2:9999", running=False, cycle=None, cycles=0, last_cycle=None)


def test_round_trip() -> None:
    text = state.dumps({"Washer": WASHER, "DRYER": DRYER})
    loaded = state.loads(text)
    assert loaded.warnings == ()
    assert loaded.appliances == {"WASHER": WASHER, "DRYER": DRYER}


def test_the_file_is_versioned_json() -> None:
    body = json.loads(state.dumps({"WASHER": WASHER}))
    assert body["version"] == state.VERSION
    assert body["appliances"]["WASHER"]["running"] is True


def good() -> dict[str, object]:
    body: dict[str, object] = json.loads(state.dumps({"WASHER": WASHER}))
    return body


def edited(**changes: object) -> str:
    body = good()
    entry = body["appliances"]["WASHER"]  # type: ignore[index]
    entry.update(changes)
    return json.dumps(body)


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("", "is unreadable"),
        ("{", "is unreadable"),
        ("[]", "is unreadable (not a JSON object)"),
        ('{"version": 0, "appliances": {}}', "is of version 0, not 1; ignored"),
        ('{"version": 2, "appliances": {}}', "is of version 2, newer than this daemon's 1; left"),
        ('{"appliances": {}}', "is of version None, not 1; ignored"),
        ('{"version": 1}', "is unreadable (no 'appliances' object)"),
        ('{"version": 1, "appliances": {"A": 5}}', "is unreadable (an appliance entry"),
        (edited(running="yes"), "'running' is not true or false"),
        (edited(cycles=-1), "'cycles' is not a count"),
        (edited(cycles=True), "'cycles' is not a count"),
        (edited(plug=None), "'plug' is not a string"),
        (edited(cycle=[]), "'cycle' is not an object"),
        (edited(cycle={"started": "now"}), "'started' is not a finite number"),
        (edited(last_cycle={"started": 1, "duration": 1e999, "peak_mw": 1}), "'duration' is not"),
        (edited(last_cycle={"started": 1, "duration": 1, "peak_mw": None}), "'peak_mw' is not"),
        (edited(cycle={**asdict(OPEN), "last_at": float("nan")}), "'last_at' is not"),
    ],
)  # fmt: skip
def test_a_bad_file_is_ignored_with_a_warning(text: str, warning: str) -> None:
    loaded = state.loads(text)
    assert loaded.appliances == {}
    assert len(loaded.warnings) == 1 and warning in loaded.warnings[0]


def test_an_entry_for_another_plug_is_dropped() -> None:
    text = state.dumps({"WASHER": WASHER, "DRYER": DRYER})
    loaded = state.loads(text, {"WASHER": "10.0.0.9:9999", "DRYER": "10.0.0.2:9999"})
    assert set(loaded.appliances) == {"DRYER"}
    assert loaded.warnings == (
        "has WASHER on plug 10.0.0.1:9999, now 10.0.0.9:9999; its entry ignored",
    )


def test_a_stopped_appliance_keeps_its_high_run() -> None:
    loaded = state.loads(edited(running=False))
    assert loaded.appliances["WASHER"].cycle == OPEN
    assert state.loads(edited(running=False, cycle=None)).appliances["WASHER"].cycle is None


def test_load_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = state.load(str(tmp_path / "nothing.json"))
    assert missing.appliances == {}
    assert missing.warnings == (
        f"State file {tmp_path}/nothing.json not found; every appliance starts stopped.",
    )
    directory = state.load(str(tmp_path))
    assert directory.appliances == {} and "cannot be read" in directory.warnings[0]
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "cannot be read" in state.load(str(binary)).warnings[0]
    other = tmp_path / "other.json"
    other.write_text('{"version": 99}')
    assert state.load(str(other)).warnings == (
        f"State file {other} is of version 99, newer than this daemon's 1; "
        "left untouched, running without it.",
    )
    assert not state.load(str(other)).writable


def test_save_replaces_atomically_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    before = os.stat(path).st_ino
    state.save(str(path), state.dumps({"WASHER": WASHER}))
    assert os.stat(path).st_ino != before  # a new file renamed over, not rewritten in place
    assert state.load(str(path)).appliances == {"WASHER": WASHER}
    assert os.listdir(tmp_path) == ["state.json"]


def test_save_into_a_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        state.save(str(tmp_path / "no" / "state.json"), "{}")


def test_save_failing_midway_removes_its_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(IsADirectoryError):
        state.save(str(target), "{}")
    assert os.listdir(tmp_path) == ["state.json"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_loads_without_raising(text: str) -> None:
    state.loads(text)


@settings(max_examples=300)
@given(json_values, st.sampled_from(["running", "cycles", "plug", "cycle", "last_cycle"]))
def test_any_json_in_any_field_loads_without_raising(value: object, field: str) -> None:
    loaded = state.loads(edited(**{field: value}))
    assert loaded.appliances or loaded.warnings
