"""The per-appliance tracker, table by table: outcomes in, notices out."""

from __future__ import annotations

import pytest

from whitegoodsd import notices
from whitegoodsd.detector import Detector, Settings
from whitegoodsd.errors import PlugError, Reading
from whitegoodsd.tracker import Tracker

HIGH, LOW, SPIKE = Reading(5_000), Reading(1_000), Reading(40_000_000)
FAIL = PlugError("connection refused")
SETTINGS = Settings(4_000, 2, 4_000, 2, max_plausible_mw=4_000_000)


def tracker(unreachable_after: int = 3) -> Tracker:
    return Tracker("WASHER", Detector(SETTINGS), unreachable_after)


def run(steps: list[Reading | PlugError | None], unreachable_after: int = 3) -> list[list[str]]:
    """Feed outcomes one a second (None: a pass reading the held value)."""
    t = tracker(unreachable_after)
    said = []
    for at, outcome in enumerate(steps):
        if outcome is None:
            got = t.held(float(at))
        elif isinstance(outcome, PlugError):
            got = t.failed(outcome, float(at))
        else:
            got = t.sampled(outcome, float(at))
        said.append([n.kind + ("(quiet)" if n.quiet else "") for n in got])
    return said


F, R, U, RE, D = (
    notices.FAILED,
    notices.RUNNING,
    notices.UNREACHABLE,
    notices.REACHABLE,
    notices.DISCARDED,
)

TABLE = [
    ("two high samples start a cycle", [HIGH, HIGH], [[], [R]]),
    ("two low samples end it", [HIGH, HIGH, LOW, LOW], [[], [R], [], ["FINISHED"]]),
    ("a failure is one FAILED", [FAIL], [[F]]),
    ("the third failure in a row is UNREACHABLE", [FAIL, FAIL, FAIL], [[F], [F], [F, U]]),
    (
        "failures after UNREACHABLE are quiet",
        [FAIL, FAIL, FAIL, FAIL],
        [[F], [F], [F, U], [F + "(quiet)"]],
    ),
    ("an answer after UNREACHABLE is REACHABLE", [FAIL, FAIL, FAIL, LOW], [[F], [F], [F, U], [RE]]),
    ("an answer resets the count", [FAIL, FAIL, LOW, FAIL, FAIL], [[F], [F], [], [F], [F]]),
    ("a spike is DISCARDED and no sample", [HIGH, SPIKE, HIGH], [[], [D], [R]]),
    ("a held value counts as a reading", [HIGH, None], [[], [R]]),
    ("nothing held after a failure", [FAIL, None, None], [[F], [], []]),
]


@pytest.mark.parametrize(("steps", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_outcomes_give_these_notices(
    steps: list[Reading | PlugError | None], expected: list[list[str]]
) -> None:
    assert run(steps) == expected


def test_finished_carries_the_cycle_and_counts_it() -> None:
    t = tracker()
    for at, reading in enumerate([HIGH, HIGH, LOW, LOW]):
        said = t.sampled(reading, float(at))
    (finished,) = said
    assert finished.kind == notices.FINISHED and finished.is_event
    assert finished.cycle is not None and finished.cycle.peak_mw == 5_000
    assert (t.cycles, t.last_cycle) == (1, finished.cycle)


@pytest.mark.parametrize(
    ("outcomes", "active"),
    [
        ([LOW], False),
        ([HIGH], True),  # high before it counts as running
        ([FAIL], True),
        ([SPIKE], False),  # a discarded spike is not activity
        ([HIGH, HIGH, LOW], True),  # running
    ],
)
def test_what_asks_for_the_short_interval(
    outcomes: list[Reading | PlugError], active: bool
) -> None:
    t = tracker()
    for at, outcome in enumerate(outcomes):
        if isinstance(outcome, PlugError):
            t.failed(outcome, float(at))
        else:
            t.sampled(outcome, float(at))
    assert t.is_active() is active


def test_status_reports_the_last_outcome() -> None:
    t = tracker()
    t.sampled(HIGH, 10.0)
    up = t.status("kasa", "10.0.0.1:9999")
    assert (up.up, up.reading, up.error, up.last_poll) == (True, HIGH, None, 10.0)
    t.failed(FAIL, 11.0)
    down = t.status("kasa", "10.0.0.1:9999")
    assert (down.up, down.reading, down.error) == (False, None, "connection refused")
