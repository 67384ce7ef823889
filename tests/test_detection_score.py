"""The detection benchmark's scoring: detected cycles matched against labelled ones."""

from __future__ import annotations

import pytest

from benchmarks.detection import Labelled, Score, score_file

WASH_1 = Labelled("f", "washer", 1000, None, 5000, partial=False)
WASH_2 = Labelled("f", "washer", 6000, None, 9000, partial=False)
DISH = Labelled("f", "dishwasher", 1000, 4000, 6000, partial=False)
RINSE = Labelled("f", "dishwasher", 100, None, 800, partial=False)  # optional pre-wash
CUT = Labelled("f", "washer", 0, None, 500, partial=True)


def scored(labels: list[Labelled], found: list[tuple[float, float | None]]) -> Score:
    score = Score("k", 60, 60)
    score_file(score, "f", labels, found)
    return score


def counts(score: Score) -> tuple[int, ...]:
    s = score
    return (s.cycles, s.once, s.missed, s.split, s.merged, s.early, s.false)


@pytest.mark.parametrize(
    ("labels", "found", "expected"),
    [
        #  cycles once missed split merged early false
        ([WASH_1, WASH_2], [(1060, 5300), (6060, 9300)], (2, 2, 0, 0, 0, 0, 0)),
        ([WASH_1, WASH_2], [(1060, 9300)], (2, 0, 0, 0, 2, 0, 0)),
        ([WASH_1], [(1060, 3000), (3100, 5300)], (1, 0, 0, 1, 0, 0, 0)),
        ([WASH_1], [], (1, 0, 1, 0, 0, 0, 0)),
        ([WASH_1], [(1060, 5300), (20000, 20600)], (1, 1, 0, 0, 0, 0, 1)),
        ([WASH_1], [(1060, None)], (1, 1, 0, 0, 0, 0, 0)),
        # A dishwasher: FINISHED in the tail is on time, before main_end is early.
        ([DISH], [(1060, 4500)], (1, 1, 0, 0, 0, 0, 0)),
        ([DISH], [(1060, 3900)], (1, 1, 0, 0, 0, 1, 0)),
        # A short rinse: merged into its program, no fault and not counted ...
        ([RINSE, DISH], [(160, 6300)], (1, 1, 0, 0, 0, 0, 0)),
        # ... detected on its own, it counts.
        ([RINSE, DISH], [(160, 900), (1060, 6300)], (2, 2, 0, 0, 0, 0, 0)),
        # A partial cycle is not scored, and what overlaps it is not false.
        ([CUT, WASH_1], [(0, 400), (1060, 5300)], (1, 1, 0, 0, 0, 0, 0)),
    ],
)  # fmt: skip
def test_scoring(
    labels: list[Labelled], found: list[tuple[float, float | None]], expected: tuple[int, ...]
) -> None:
    assert counts(scored(labels, found)) == expected


def test_latencies_are_from_the_start_and_the_real_end() -> None:
    score = scored([DISH], [(1060, 6300)])
    assert (score.running, score.finished) == ([60], [300])
