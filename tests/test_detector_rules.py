"""The detector's rules for real machines: blips (max_dip, max_burst) and the energy counter.

Table-driven like test_detector_features: timed polls in, timed events out.
Without the keys set, test_detector's model check holds; here each row shows
what a key changes, and the control beside it shows the same input without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_detector import OriginalModel
from test_detector_features import MISS, Step, Timed, every, feed

from whitegoodsd.detector import Detector, EventKind, Sample, Settings, State

R, F = EventKind.RUNNING, EventKind.FINISHED
ON, OFF, BAND = 2_000_000, 1000, 7000  # running 10 W, finished 5 W: 7 W is between
BASE = dict(threshold_running_mw=10_000, minsamples=1, threshold_finished_mw=5000,
            minsamples_finished=1)  # fmt: skip


def with_(**keys: object) -> Settings:
    return Settings(**{**BASE, **keys})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "steps", "expected"),
    [
        pytest.param(
            with_(start_delay=60), every(10, ON, ON, OFF, ON, ON, ON, ON, ON, ON, ON),
            [(100, R)],  # the dip restarts the 60 s at 40 s
            id="control: a dip restarts start_delay",
        ),
        pytest.param(
            with_(start_delay=60, max_dip=30), every(10, ON, ON, OFF, ON, ON, ON, ON),
            [(70, R)],  # time runs on through the dip: 60 s from 10 s
            id="a dip shorter than max_dip does not",
        ),
        pytest.param(
            with_(start_delay=60, max_dip=30), every(10, ON, OFF, OFF, OFF, ON, ON, ON),
            [(70, R)],  # OFF from 20 to 40 s lasts 20 s (< 30): a blip
            id="a dip of three samples within max_dip is a blip",
        ),
        pytest.param(
            with_(start_delay=60, max_dip=30),
            every(10, ON, OFF, OFF, OFF, OFF, ON, ON, ON, ON, ON, ON, ON),
            [(120, R)],  # OFF from 20 to 50 s lasts 30 s: the run breaks; ON again from 60 s
            id="a dip of max_dip or longer breaks the run",
        ),
        pytest.param(
            with_(start_delay=20, max_dip=30), every(10, ON, OFF, OFF, ON),
            [(40, R)],  # 20 s had passed at 30 s, but on a dip
            id="a run completes only on a sample of its own side",
        ),
        pytest.param(
            with_(finish_delay=120), every(5, ON, *[OFF] * 10, ON, *[OFF] * 30),
            [(5, R), (185, F)],  # the burst at 60 s restarts the 120 s at 65 s
            id="control: a burst restarts finish_delay",
        ),
        pytest.param(
            with_(finish_delay=120, max_burst=20), every(5, ON, *[OFF] * 10, ON, *[OFF] * 30),
            [(5, R), (130, F)],  # an anti-crease burst: the low run from 10 s goes on
            id="a burst shorter than max_burst does not",
        ),
        pytest.param(
            with_(finish_delay=120, max_burst=20),
            every(5, ON, *[OFF] * 10, *[ON] * 5, *[OFF] * 30),
            [(5, R), (205, F)],  # ON from 60 to 80 s lasts 20 s: it runs again
            id="a burst of max_burst or longer breaks the low run",
        ),
        pytest.param(
            with_(finish_delay=120, max_burst=20), every(60, ON, OFF, ON, OFF, OFF),
            [(60, R), (240, F)],  # at 60 s a burst is one sample: a blip
            id="a single sample is always a blip",
        ),
        pytest.param(
            with_(finish_delay=120, max_burst=20), every(60, ON, OFF, ON, ON, OFF, OFF, OFF),
            [(60, R), (420, F)],  # ON at 180 and 240 s: lasted 60 s
            id="two samples a poll apart are no blip at 60 s",
        ),
        pytest.param(
            with_(finish_delay=60, max_burst=20), every(5, ON, OFF, BAND, *[OFF] * 13),
            [(5, R), (70, F)],  # the dead band is the other side of a low run too
            id="a dead-band sample is a blip of a low run",
        ),
        pytest.param(
            with_(finish_delay=60, max_burst=20),
            [Step(5, ON), Step(5, OFF), Step(5, ON), Step(3600, MISS), *every(5, *[OFF] * 13)],
            [(5, R), (3675, F)],  # 5 s before the outage, 55 s after: nothing in it
            id="an outage adds nothing to a run, blip or not",
        ),
        pytest.param(
            with_(finish_delay=60, max_burst=20), every(5, ON, *[OFF] * 13),
            [(5, R), (70, F)],  # the RUNNING sample does not continue the low run before it
            id="a transition ends the other run",
        ),
    ],
)  # fmt: skip
def test_blips(settings: Settings, steps: list[Step], expected: list[Timed]) -> None:
    assert feed(Detector(settings), steps) == expected


def counted(interval: float, powers: list[int], watts_between: Sequence[float]) -> list[Step]:
    """Polls ``interval`` apart; the counter grows by ``watts_between[i]`` on average."""
    steps, total = [], 1000.0
    for power, average in zip(powers, watts_between, strict=True):
        total += average * interval / 3600
        steps.append(Step(interval, power, float(int(total))))
    return steps


# A drum turning 20 s of every 30 at 135 W, polled every 60 s in its pauses:
# the readings say 4 W, the counter says 90 W.
ALIASED = counted(60, [ON] * 3 + [4000] * 20 + [1000] * 12, [2000] * 3 + [90] * 20 + [2] * 12)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(with_(finish_delay=300), [(60, R), (540, F)], id="control: readings only"),
        pytest.param(
            with_(finish_delay=300, energy_counter=True), [(60, R), (1680, F)],
            # Low from 1380 s, the last pause where a 1 Wh step says nothing.
            id="the counter shows the drum turning",
        ),
    ],
)  # fmt: skip
def test_the_energy_counter(settings: Settings, expected: list[Timed]) -> None:
    assert feed(Detector(settings), ALIASED) == expected


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([Step(60, ON, 10.0), Step(60, OFF, None), Step(60, OFF, 13.0)], id="no total"),
        pytest.param([Step(60, ON, 10.0), Step(60, MISS), Step(60, OFF, 20.0)], id="after a miss"),
        pytest.param([Step(60, ON, 10.0), Step(60, OFF, 5.0)], id="counter went back"),
        pytest.param([Step(60, ON, 10.0), Step(60, OFF, 11.0)], id="one Wh is uncertain"),
    ],
)
def test_the_counter_says_nothing_when_it_cannot_tell(steps: list[Step]) -> None:
    settings = with_(energy_counter=True)
    assert [kind for _, kind in feed(Detector(settings), steps)] == [R, F]


def test_two_watt_hours_in_a_minute_are_power() -> None:
    steps = [Step(60, ON, 10.0), Step(60, OFF, 12.0), Step(60, OFF, 12.0)]
    assert feed(Detector(with_(energy_counter=True)), steps) == [(60, R), (180, F)]


def test_a_blip_does_not_start_the_cycle_statistics_over() -> None:
    detector = Detector(with_(start_delay=60, max_dip=30))
    events = feed(detector, every(10, ON, OFF, ON, ON, ON, ON, ON, OFF, *[OFF] * 3))
    assert [kind for _, kind in events] == [R, F]
    assert detector.state is State.STOPPED


@given(
    threshold=st.integers(0, 10_000),
    minsamples=st.integers(1, 6),
    powers=st.lists(st.integers(0, 12_000), max_size=60),
    totals=st.lists(st.integers(0, 100), min_size=60, max_size=60),
)
def test_keys_off_the_counter_changes_nothing(
    threshold: int, minsamples: int, powers: list[int], totals: list[int]
) -> None:
    """Counters in the samples, no new key set: still the original."""
    model = OriginalModel(threshold, minsamples)
    detector = Detector(Settings.original(threshold, minsamples))
    total = 0.0
    for at, (power, grow) in enumerate(zip(powers, totals, strict=False)):
        total += grow
        event = detector.sample(Sample(power, float(at), total))
        assert ([event.kind.value] if event else []) == model.poll(power)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(with_(start_delay=20, finish_delay=20, max_dip=30), [(30, R), (100, F)]),
        pytest.param(with_(start_delay=20, finish_delay=20, max_burst=30), [(50, R), (80, F)]),
    ],
)
def test_dips_and_bursts_are_separate_keys(settings: Settings, expected: list[Timed]) -> None:
    # ON 10, OFF 20, ON 30..50, OFF 60, ON 70, OFF 80..
    steps = every(10, ON, OFF, ON, ON, ON, OFF, ON, OFF, OFF, OFF, OFF)
    assert feed(Detector(settings), steps) == expected
