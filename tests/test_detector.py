"""The detector: the original's ring semantics, table by table, and a model check."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whitegoodsd.detector import Detector, EventKind, Sample, Settings, State

R, F = EventKind.RUNNING, EventKind.FINISHED


def run(detector: Detector, powers: list[int | None]) -> list[EventKind | None]:
    """Feed powers (None: a failed poll, which records nothing)."""
    out: list[EventKind | None] = []
    for at, power in enumerate(powers):
        if power is None:
            out.append(None)
            continue
        event = detector.sample(Sample(power, float(at)))
        out.append(event.kind if event else None)
    return out


@pytest.mark.parametrize(
    ("minsamples", "powers", "expected"),
    [
        # minsamples highs in a row start a cycle; minsamples lows end it.
        (3, [5000, 5000, 5000, 0, 0, 0], [None, None, R, None, None, F]),
        # >= threshold counts as high.
        (1, [4000, 3999], [R, F]),
        # A mixed ring keeps the state: the hysteresis.
        (3, [5000, 5000, 0, 5000, 5000, 5000, 0, 5000, 0, 0, 0],
         [None, None, None, None, None, R, None, None, None, None, F]),
        # Failed polls neither break nor extend a streak.
        (3, [5000, None, 5000, None, 5000], [None, None, None, None, R]),
        (2, [5000, 5000, 0, None, 0], [None, R, None, None, F]),
        # An idle appliance at start logs nothing.
        (3, [0, 0, 0, 0], [None, None, None, None]),
        # One already running at start gets RUNNING after minsamples polls.
        (2, [9000, 9000, 9000], [None, R, None]),
    ],
)  # fmt: skip
def test_original_semantics(
    minsamples: int, powers: list[int | None], expected: list[EventKind | None]
) -> None:
    detector = Detector(Settings.original(4000, minsamples))
    assert run(detector, powers) == expected


@pytest.mark.parametrize(
    ("settings", "powers", "expected"),
    [
        # A finished threshold below the running one: a dead band.
        (Settings(4000, 2, 1000, 2), [5000, 5000, 2000, 2000, 2000, 500, 500],
         [None, R, None, None, None, None, F]),
        # More samples to finish than to start: rides out a short pause.
        (Settings(4000, 1, 4000, 3), [5000, 0, 0, 5000, 0, 0, 0],
         [R, None, None, None, None, None, F]),
        # Fewer samples to finish than to start.
        (Settings(4000, 3, 4000, 1), [5000, 5000, 5000, 0], [None, None, R, F]),
    ],
)  # fmt: skip
def test_hysteresis(
    settings: Settings, powers: list[int | None], expected: list[EventKind | None]
) -> None:
    assert run(Detector(settings), powers) == expected


def test_reconfigured_keeps_state() -> None:
    detector = Detector(Settings.original(4000, 1))
    run(detector, [5000])
    assert detector.reconfigured(detector.settings) is detector
    changed = detector.reconfigured(Settings.original(2000, 2))
    assert changed.state is State.RUNNING
    assert run(changed, [0, 0]) == [None, F]  # two lows needed, not one


class OriginalModel:
    """The original daemon's ring, written as plainly as possible."""

    def __init__(self, threshold: int, minsamples: int) -> None:
        self.threshold = threshold
        self.ring = deque([False] * minsamples, maxlen=minsamples)
        self.running = False

    def poll(self, power: int) -> list[str]:
        self.ring.append(power >= self.threshold)
        said = []
        if not self.running and all(self.ring):
            self.running = True
            said.append("RUNNING")
        if self.running and not any(self.ring):
            self.running = False
            said.append("FINISHED")
        return said


@settings(max_examples=500)
@given(
    threshold=st.integers(0, 10_000),
    minsamples=st.integers(1, 6),
    powers=st.lists(st.one_of(st.none(), st.integers(0, 12_000)), max_size=80),
)
def test_matches_the_original(threshold: int, minsamples: int, powers: list[int | None]) -> None:
    model = OriginalModel(threshold, minsamples)
    detector = Detector(Settings.original(threshold, minsamples))
    for at, power in enumerate(powers):
        if power is None:
            continue
        event = detector.sample(Sample(power, float(at)))
        assert ([event.kind.value] if event else []) == model.poll(power)
        assert (detector.state is State.RUNNING) == model.running
