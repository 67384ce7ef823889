"""Cycle statistics: what a cycle took, added up sample by sample, and how it reads.

Pure like the detector it serves: an :class:`OpenCycle` is an immutable
running total that each sample replaces with a new one, so the detector can
hand it to the state file and take it back after a restart.  ``summary`` is
the one place that turns a finished cycle into words.

The figures
-----------
* **Start**: the first sample of the run of high samples that started the
  cycle (so the minsamples / start_delay debounce counts as running time).
* **End**: the first sample of the run of low samples that finished it (the
  tail spent confirming the end, minsamples_finished / finish_delay, does
  not).  Both ends are therefore within one poll interval of the truth.
* **Energy**: the plug's own counter (``total_wh``) at the end minus at the
  start, when the plug reports one at both and it did not go backwards;
  otherwise the samples integrated by the trapezoid rule over the same span.
* **Peak**: the highest sample seen while the cycle was open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from whitegoodsd.status import CycleRecord

_MW_SECONDS_PER_WH = 1000 * 3600


@dataclass(frozen=True)
class OpenCycle:
    """The statistics of a cycle in progress."""

    started: float  # time of the first high sample
    start_total_wh: float | None  # the plug's counter then, if it has one
    peak_mw: int
    integrated_wh: float  # the samples integrated up to the last one
    last_at: float  # the last sample, for the next integration step
    last_power_mw: int
    # Where the current run of low samples began (None while not in one):
    end_at: float | None = None
    end_total_wh: float | None = None
    end_integrated_wh: float = 0.0

    @classmethod
    def begin(cls, power_mw: int, at: float, total_wh: float | None) -> OpenCycle:
        """A cycle whose first high sample this is."""
        return cls(
            started=at,
            start_total_wh=total_wh,
            peak_mw=power_mw,
            integrated_wh=0.0,
            last_at=at,
            last_power_mw=power_mw,
        )

    def add(self, power_mw: int, at: float, total_wh: float | None, *, low: bool) -> OpenCycle:
        """This cycle with one more sample; ``low``: below the finished threshold."""
        step = max(0.0, at - self.last_at)  # a wall clock set back adds nothing
        integrated = (
            self.integrated_wh + (self.last_power_mw + power_mw) / 2 * step / _MW_SECONDS_PER_WH
        )
        if not low:
            end_at, end_total, end_integrated = None, None, 0.0
        elif self.end_at is None:
            end_at, end_total, end_integrated = at, total_wh, integrated
        else:
            end_at, end_total, end_integrated = (
                self.end_at,
                self.end_total_wh,
                self.end_integrated_wh,
            )
        return dataclasses.replace(
            self,
            peak_mw=max(self.peak_mw, power_mw),
            integrated_wh=integrated,
            last_at=at,
            last_power_mw=power_mw,
            end_at=end_at,
            end_total_wh=end_total,
            end_integrated_wh=end_integrated,
        )

    def close(self) -> CycleRecord:
        """The finished cycle's figures (ending now if no low run has begun)."""
        if self.end_at is None:
            end_at, end_total, integrated = self.last_at, None, self.integrated_wh
        else:
            end_at, end_total, integrated = self.end_at, self.end_total_wh, self.end_integrated_wh
        energy = integrated
        if (
            self.start_total_wh is not None
            and end_total is not None
            and end_total >= self.start_total_wh
        ):
            energy = end_total - self.start_total_wh
        return CycleRecord(
            started=self.started,
            duration=max(0.0, end_at - self.started),
            energy_wh=energy,
            peak_mw=self.peak_mw,
        )


def duration_text(seconds: float) -> str:
    """``H:MM:SS``, hours unbounded: ``1:32:05``, ``26:00:00``."""
    whole = round(max(0.0, seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def summary(record: CycleRecord) -> str:
    """The statistics as they follow ``NAME is FINISHED.`` on the same line.

    ``Ran 1:32:05, used 0.850 kWh, peak 2,150 W.``
    """
    parts = [f"Ran {duration_text(record.duration)}"]
    if record.energy_wh is not None:
        parts.append(f"used {record.energy_wh / 1000:,.3f} kWh")
    parts.append(f"peak {round(record.peak_mw / 1000):,} W")
    return ", ".join(parts) + "."
