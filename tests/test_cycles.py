"""Cycle statistics: the running totals and the words on the FINISHED line."""

from __future__ import annotations

import pytest

from whitegoodsd.cycle import OpenCycle, duration_text, summary
from whitegoodsd.status import CycleRecord


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (59.4, "0:00:59"),
        (59.6, "0:01:00"),
        (5525, "1:32:05"),
        (26 * 3600, "26:00:00"),
        (-5, "0:00:00"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (CycleRecord(0, 5525, 850.0, 2_150_000), "Ran 1:32:05, used 0.850 kWh, peak 2,150 W."),
        (CycleRecord(0, 60, 0.4, 4_499), "Ran 0:01:00, used 0.000 kWh, peak 4 W."),
        (CycleRecord(0, 7200, 12_345.6, 3_680_000), "Ran 2:00:00, used 12.346 kWh, peak 3,680 W."),
        (CycleRecord(0, 90, None, 1_000_000), "Ran 0:01:30, peak 1,000 W."),
    ],
)
def test_summary(record: CycleRecord, text: str) -> None:
    assert summary(record) == text


def test_open_cycle_remembers_where_the_last_low_run_began() -> None:
    cycle = OpenCycle.begin(2_000_000, 0.0, 1.0)
    cycle = cycle.add(0, 60.0, 1.05, low=True)
    assert (cycle.end_at, cycle.end_total_wh) == (60.0, 1.05)
    cycle = cycle.add(0, 120.0, 1.05, low=True)
    assert cycle.end_at == 60.0  # still the first of the run
    cycle = cycle.add(3_000_000, 180.0, 1.06, low=False)
    assert cycle.end_at is None and cycle.peak_mw == 3_000_000
    cycle = cycle.add(0, 240.0, 1.2, low=True)
    record = cycle.close()
    assert record.duration == 240.0
    assert record.energy_wh == pytest.approx(0.2)


def test_closing_without_a_low_run_ends_at_the_last_sample() -> None:
    cycle = OpenCycle.begin(1_000_000, 0.0, None).add(1_000_000, 3600.0, None, low=False)
    record = cycle.close()
    assert record.duration == 3600.0
    assert record.energy_wh == pytest.approx(1000.0)  # 1 kW for an hour


def test_integration_is_the_trapezoid_rule() -> None:
    cycle = OpenCycle.begin(0, 0.0, None).add(3_600_000, 3600.0, None, low=False)
    assert cycle.integrated_wh == pytest.approx(1800.0)
