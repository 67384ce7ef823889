"""The detector beyond the original: delays, spike filter, cycle statistics, resuming.

Each table row feeds timed samples through a fake clock and lists the events
expected, with their times.  The detector reads no clock: time only comes in
with each sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_detector import OriginalModel

from whitegoodsd import config as configuration
from whitegoodsd.cycle import OpenCycle
from whitegoodsd.detector import Detector, EventKind, Sample, Settings, State
from whitegoodsd.status import CycleRecord

from conftest import FakeClock

R, F = EventKind.RUNNING, EventKind.FINISHED
MISS = None  # a poll that gave nothing
SPIKE = 25_000_000  # tens of MW: what HS110s report now and then
LIMIT = 4_000_000

Timed = tuple[float, EventKind]  # an event, at seconds since the first poll


@dataclass(frozen=True)
class Step:
    """One poll: after ``wait`` seconds, a reading of ``power`` mW (None: missed)."""

    wait: float
    power: int | None
    total_wh: float | None = None


def every(seconds: float, *powers: int | None) -> list[Step]:
    """Polls ``seconds`` apart."""
    return [Step(seconds, p) for p in powers]


def feed(detector: Detector, steps: list[Step], clock: FakeClock | None = None) -> list[Timed]:
    """Run the steps; the events as (seconds since the start, kind)."""
    clock = clock or FakeClock()
    start = clock.now
    events: list[Timed] = []
    for step in steps:
        at = clock.advance(step.wait)
        if step.power is None:
            detector.missed()
            continue
        event = detector.sample(Sample(step.power, at, step.total_wh))
        if event is not None:
            events.append((at - start, event.kind))
    return events


# -- start_delay and finish_delay ---------------------------------------------

ONE: dict[str, Any] = dict(threshold_running_mw=4000, minsamples=1, threshold_finished_mw=4000)


@pytest.mark.parametrize(
    ("settings", "steps", "expected"),
    [
        pytest.param(
            Settings(**ONE, minsamples_finished=1, start_delay=120),
            every(60, 5000, 5000, 5000, 5000),
            [(180, R)],  # high from 60 s; lasted 120 s at 180 s
            id="start_delay waits for time at or above",
        ),
        pytest.param(
            Settings(**ONE, minsamples_finished=1, start_delay=120),
            every(60, 5000, 5000, 0, 5000, 5000, 5000),
            [(360, R)],
            id="a low sample restarts the start_delay",
        ),
        pytest.param(
            Settings(4000, 5, 4000, 1, start_delay=60),
            every(30, 5000, 5000, 5000, 5000, 5000),
            [(150, R)],  # the time was there at 90 s, the count only at 150 s
            id="the count still applies beside start_delay",
        ),
        pytest.param(
            Settings(4000, 2, 4000, 1, start_delay=60),
            every(10, *[5000] * 8),
            [(70, R)],  # the count was there at 20 s, the time only at 70 s
            id="start_delay beside a count already met",
        ),
        pytest.param(
            Settings(**ONE, minsamples_finished=1, finish_delay=600),
            every(60, 5000, *[0] * 5, 5000, *[0] * 11),
            [(60, R), (1080, F)],  # a 5-minute pause rides through; the end waits 600 s
            id="finish_delay rides out a soak pause",
        ),
        pytest.param(
            Settings(4000, 1, 4000, 3, finish_delay=60),
            every(60, 5000, 0, 0, 0),
            [(60, R), (240, F)],  # 3 lows from 120 s: 120 s of low time, 3 samples
            id="the count still applies beside finish_delay",
        ),
        pytest.param(
            Settings(**ONE, minsamples_finished=1, finish_delay=600),
            [Step(60, 5000), Step(60, 0), *every(60, MISS, MISS), *[Step(600, MISS)] * 6,
             *every(60, 0, 0, 0)],
            [(60, R)],  # an hour of silence after one low sample is not an hour below
            id="an outage does not count as time below",
        ),
        pytest.param(
            Settings(**ONE, minsamples_finished=1, finish_delay=120),
            [Step(60, 5000), Step(60, 0), Step(60, 0), Step(3600, MISS), Step(60, 0),
             Step(60, 0)],
            [(60, R), (3900, F)],  # 60 s before the outage + 60 s after = 120 s
            id="an outage neither breaks nor extends the time below",
        ),
        pytest.param(
            Settings(**ONE, minsamples_finished=1, start_delay=60),
            [Step(60, 5000), Step(60, MISS), Step(3600, 5000), Step(60, 5000)],
            [(3780, R)],
            id="an outage does not count as time above",
        ),
        pytest.param(
            Settings(4000, 1, 1000, 1, finish_delay=60),
            every(60, 5000, 500, 2000, 500, 500),
            [(60, R), (300, F)],  # the dead band breaks the run below
            id="a dead-band sample restarts the finish_delay",
        ),
    ],
)  # fmt: skip
def test_delays(settings: Settings, steps: list[Step], expected: list[Timed]) -> None:
    assert feed(Detector(settings), steps) == expected


def washer(interval: float) -> list[Step]:
    """30 min on, a 5-minute soak at 2 W, 30 min on, then off, polled every ``interval``."""
    powers = [2_000_000] * 1800 + [2000] * 300 + [500_000] * 1800 + [1000] * 4000

    def power_at(t: float) -> int:
        return powers[min(int(t), len(powers) - 1)]

    return [Step(interval, power_at(interval * k)) for k in range(1, int(7900 // interval))]


@pytest.mark.parametrize("interval", [1, 7, 30, 60, 120, 299, 300, 301, 450, 599, 600, 900])
@pytest.mark.parametrize("minsamples_finished", [1, 3])
def test_a_soak_pause_never_ends_the_cycle(interval: float, minsamples_finished: int) -> None:
    settings = Settings(4000, 1, 4000, minsamples_finished, finish_delay=600)
    events = feed(Detector(settings), washer(interval))
    assert [kind for _, kind in events] == [R, F]
    finished_at = events[1][0]
    # Not before the real end (3,900 s) plus the delay; at most a few polls after.
    assert 3900 + 600 <= finished_at <= 3900 + 600 + (minsamples_finished + 1) * interval


def test_without_finish_delay_the_soak_pause_does_end_it() -> None:
    """The problem finish_delay solves (and the control for the test above)."""
    events = feed(Detector(Settings(4000, 1, 4000, 3)), washer(60))
    assert [kind for _, kind in events] == [R, F, R, F]


# -- the spike filter ---------------------------------------------------------


@pytest.mark.parametrize(
    ("minsamples", "powers", "expected"),
    [
        # Spikes alone never start a cycle.
        (3, [SPIKE, SPIKE, SPIKE, 0], []),
        # A spike neither breaks nor extends a run: it is recorded as no sample.
        (3, [5000, SPIKE, 5000, 5000], [(4, R)]),
        (2, [5000, 5000, 0, SPIKE, 0], [(2, R), (5, F)]),
        # The limit itself is plausible.
        (1, [LIMIT, 0], [(1, R), (2, F)]),
        (1, [LIMIT + 1, 0], []),
    ],
)  # fmt: skip
def test_spikes_are_no_sample(minsamples: int, powers: list[int], expected: list[Timed]) -> None:
    settings = Settings(4000, minsamples, 4000, minsamples, max_plausible_mw=LIMIT)
    assert feed(Detector(settings), every(1, *powers)) == expected


def test_a_spike_is_not_the_peak() -> None:
    detector = Detector(Settings(4000, 1, 4000, 1, max_plausible_mw=LIMIT))
    clock = FakeClock()
    for power in (2_150_000, SPIKE, 1_000_000, 0):
        event = detector.sample(Sample(power, clock.advance(60)))
    assert event is not None and event.cycle is not None
    assert event.cycle.peak_mw == 2_150_000


def test_no_filter_by_default_in_the_core() -> None:
    assert Settings.original(4000, 1).max_plausible_mw is None
    assert feed(Detector(Settings.original(4000, 1)), every(1, SPIKE, 0)) == [(1, R), (2, F)]


# -- cycle statistics ---------------------------------------------------------


def finished(detector: Detector, steps: list[Step]) -> CycleRecord:
    clock = FakeClock(0.0)
    records = []
    for step in steps:
        at = clock.advance(step.wait)
        if step.power is None:
            detector.missed()
            continue
        event = detector.sample(Sample(step.power, at, step.total_wh))
        if event is not None and event.kind is F:
            records.append(event.cycle)
    assert len(records) == 1 and records[0] is not None
    return records[0]


@pytest.mark.parametrize(
    ("settings", "steps", "expected"),
    [
        pytest.param(
            Settings(4000, 2, 4000, 3),
            # first high at 60 s, first low at 300 s; trapezoids: 60 s each
            [Step(60, 1_000_000, 10.0), Step(60, 2_000_000, 10.1), Step(60, 2_000_000, 10.2),
             Step(60, 1_000_000, 10.3), Step(60, 0, 10.35), Step(60, 0, 10.4),
             Step(60, 0, 10.4)],
            CycleRecord(started=60, duration=240, energy_wh=0.35, peak_mw=2_000_000),
            id="energy from the plug's counter, first high to first low",
        ),
        pytest.param(
            Settings(4000, 2, 4000, 3),
            every(60, 1_000_000, 2_000_000, 2_000_000, 1_000_000, 0, 0, 0),
            # (1+2)/2 + (2+2)/2 + (2+1)/2 + (1+0)/2 kW x 60 s = 5.5 kW min = 91.67 Wh
            CycleRecord(started=60, duration=240, energy_wh=5.5 * 1000 / 60, peak_mw=2_000_000),
            id="energy integrated when the plug has no counter",
        ),
        pytest.param(
            Settings(4000, 1, 4000, 1),
            [Step(60, 1_000_000, 500.0), Step(60, 1_000_000, 0.5), Step(60, 0, 0.6)],
            CycleRecord(started=60, duration=120, energy_wh=1500 / 60, peak_mw=1_000_000),
            id="a counter that went backwards: integrated instead",
        ),
        pytest.param(
            Settings(4000, 1, 4000, 2),
            every(60, 1_000_000, 0, 1_000_000, 0, 0),
            CycleRecord(started=60, duration=180, energy_wh=1500 / 60, peak_mw=1_000_000),
            id="a pause that does not end the cycle is part of it",
        ),
        pytest.param(
            Settings(4000, 1, 4000, 1, finish_delay=600),
            every(60, 1_000_000, *[0] * 11),
            CycleRecord(started=60, duration=60, energy_wh=500 / 60, peak_mw=1_000_000),
            id="the finish_delay tail is not running time",
        ),
        pytest.param(
            Settings(4000, 3, 4000, 1, start_delay=120),
            every(60, 0, 1_000_000, 1_000_000, 1_000_000, 0),
            CycleRecord(started=120, duration=180, energy_wh=2500 / 60, peak_mw=1_000_000),
            id="the start debounce is running time",
        ),
        pytest.param(
            Settings(4000, 1, 1000, 1),
            every(60, 1_000_000, 2000, 500),
            # (1,000 + 2) / 2 W for 60 s, then (2 + 0.5) / 2 W for 60 s
            CycleRecord(started=60, duration=120, energy_wh=(501 + 1.25) * 60 / 3600,
                        peak_mw=1_000_000),
            id="the dead band is running time",
        ),
    ],
)  # fmt: skip
def test_cycle_statistics(settings: Settings, steps: list[Step], expected: CycleRecord) -> None:
    record = finished(Detector(settings), steps)
    assert record.started == expected.started
    assert record.duration == expected.duration
    assert record.peak_mw == expected.peak_mw
    assert record.energy_wh == pytest.approx(expected.energy_wh)


def test_a_high_run_that_starts_nothing_is_forgotten() -> None:
    detector = Detector(Settings(4000, 3, 4000, 1))
    record = finished(detector, every(60, 9_000_000, 9_000_000, 0, *[1_000_000] * 3, 0))
    assert record.started == 240 and record.peak_mw == 1_000_000


# -- resuming -----------------------------------------------------------------


def test_resumed_detector_needs_minsamples_finished_lows_and_keeps_the_cycle() -> None:
    open_cycle = OpenCycle.begin(2_000_000, 1000.0, 10.0).add(2_000_000, 1060.0, 10.05, low=False)
    detector = Detector(Settings(4000, 2, 4000, 3), State.RUNNING, open_cycle)
    assert detector.cycle == open_cycle
    clock = FakeClock(2000.0)
    events = feed(detector, [Step(0, 0, 10.5), Step(60, 0, 10.5), Step(60, 0, 10.5)], clock)
    assert events == [(120, F)]


def test_resumed_cycle_statistics_span_the_restart() -> None:
    open_cycle = OpenCycle.begin(2_000_000, 1000.0, 10.0).add(2_500_000, 1060.0, 10.05, low=False)
    detector = Detector(Settings(4000, 2, 4000, 2), State.RUNNING, open_cycle)
    steps = [Step(0, 1_000_000, 10.2), Step(60, 0, 10.3), Step(60, 0, 10.3)]
    clock = FakeClock(1500.0)
    for step in steps:
        assert step.power is not None
        event = detector.sample(Sample(step.power, clock.advance(step.wait), step.total_wh))
    assert event is not None and event.cycle is not None
    assert event.cycle.started == 1000.0
    assert event.cycle.duration == 560.0  # to the first low sample, at 1560 s
    assert event.cycle.energy_wh == pytest.approx(0.3)
    assert event.cycle.peak_mw == 2_500_000


def test_resumed_without_statistics_counts_from_the_first_sample() -> None:
    detector = Detector(Settings(4000, 1, 4000, 1), State.RUNNING)
    assert detector.cycle is None
    record = finished(detector, every(60, 1_000_000, 1_000_000, 0))
    assert (record.started, record.duration) == (60, 120)


def test_reconfigured_keeps_the_open_cycle() -> None:
    clock = FakeClock(0.0)
    detector = Detector(Settings(4000, 1, 4000, 1))
    assert feed(detector, every(60, 1_000_000), clock) == [(60, R)]
    changed = detector.reconfigured(Settings(4000, 1, 4000, 2, finish_delay=60))
    assert changed.state is State.RUNNING and changed.cycle == detector.cycle
    assert feed(changed, every(60, 0, 0), clock) == [(120, F)]  # two lows now, 60 s of them


def test_a_stopped_detector_tracks_the_high_run_that_may_start_a_cycle() -> None:
    clock = FakeClock(0.0)
    detector = Detector(Settings(4000, 3, 4000, 3))
    feed(detector, every(60, 5000, 5000), clock)
    assert detector.state is State.STOPPED
    assert detector.cycle is not None and detector.cycle.started == 60
    feed(detector, every(60, 0), clock)
    assert detector.cycle is None


def test_a_restored_high_run_goes_on_if_the_next_sample_is_high() -> None:
    """A restart in the start debounce: the counts start afresh, the cycle's start stays."""
    clock = FakeClock(0.0)
    first = Detector(Settings(4000, 2, 4000, 1))
    feed(first, every(60, 5000), clock)
    second = Detector(first.settings, State.STOPPED, first.cycle)
    assert feed(second, every(60, 5000, 5000, 0), clock) == [(120, R), (180, F)]
    third = Detector(first.settings, State.STOPPED, first.cycle)
    feed(third, every(60, 0, 5000), clock)
    assert third.cycle is not None and third.cycle.started == clock.now


def test_a_wall_clock_set_back_adds_no_time() -> None:
    detector = Detector(Settings(4000, 1, 4000, 1, finish_delay=60))
    steps = [Step(60, 1_000_000), Step(60, 0), Step(-3600, 0), Step(60, 0)]
    assert feed(detector, steps) == [(60, R), (-3420, F)]


# -- with none of the new keys set, the original ------------------------------


def default_settings(threshold: int, minsamples: int) -> Settings:
    config = configuration.parse(
        "[whitegoodsd]\nappliances = A\n[A]\nsmartplug = 127.0.0.1\n"
        f"threshold_running_mw = {threshold}\nminsamples = {minsamples}\n",
        "test.ini",
    )
    return config.appliances[0].settings


def test_defaults_from_a_file_are_the_original_plus_the_spike_filter() -> None:
    settings = default_settings(4000, 3)
    assert settings == Settings(4000, 3, 4000, 3, 0.0, 0.0, configuration.DEFAULT_MAX_PLAUSIBLE_MW)


@settings(max_examples=300)
@given(
    threshold=st.integers(0, 3_999_999),
    minsamples=st.integers(1, 6),
    polls=st.lists(
        st.tuples(st.floats(0, 10_000), st.one_of(st.none(), st.integers(0, LIMIT))),
        max_size=80,
    ),
)
def test_a_file_without_new_keys_matches_the_original(
    threshold: int, minsamples: int, polls: list[tuple[float, int | None]]
) -> None:
    """Any poll times, any readings a mains plug can give: the original's events."""
    model = OriginalModel(threshold, minsamples)
    detector = Detector(default_settings(threshold, minsamples))
    at = 0.0
    for wait, power in polls:
        at += wait
        if power is None:
            detector.missed()
            continue
        event = detector.sample(Sample(power, at))
        assert ([event.kind.value] if event else []) == model.poll(power)
        assert (detector.state is State.RUNNING) == model.running
