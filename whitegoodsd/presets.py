"""Detection presets by kind of appliance: ``kind = washer | dryer | dishwasher | generic``.

Every preset is in time, not in samples: ``minsamples`` and
``minsamples_finished`` are 1 and the debounce is ``start_delay`` and
``finish_delay`` seconds, so a preset means the same at any poll interval.
Keys written in an appliance's section override its preset's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from whitegoodsd.detector import Settings

# The intervals the presets are tuned for (monitor_interval and
# monitor_interval_nothing_running); they hold at shorter ones too.
INTERVAL: Final = 60.0
IDLE_INTERVAL: Final = 60.0


@dataclass(frozen=True)
class Preset:
    """The detection keys of one kind, as the INI would spell them."""

    threshold_running_mw: int
    threshold_finished_mw: int
    start_delay: float
    finish_delay: float

    def keys(self) -> dict[str, int | float]:
        return {
            "threshold_running_mw": self.threshold_running_mw,
            "minsamples": 1,
            "threshold_finished_mw": self.threshold_finished_mw,
            "minsamples_finished": 1,
            "start_delay": self.start_delay,
            "finish_delay": self.finish_delay,
        }


PRESETS: Final[dict[str, Preset]] = {
    "washer": Preset(15_000, 10_000, 60.0, 480.0),
    "dryer": Preset(30_000, 20_000, 60.0, 300.0),
    "dishwasher": Preset(15_000, 8_000, 60.0, 600.0),
    "generic": Preset(10_000, 5_000, 60.0, 600.0),
}

KINDS: Final = tuple(PRESETS)


def settings(kind: str, max_plausible_mw: int | None = 4_000_000) -> Settings:
    """The detector settings of a kind's preset."""
    keys = PRESETS[kind].keys()
    return Settings(
        threshold_running_mw=int(keys["threshold_running_mw"]),
        minsamples=1,
        threshold_finished_mw=int(keys["threshold_finished_mw"]),
        minsamples_finished=1,
        start_delay=float(keys["start_delay"]),
        finish_delay=float(keys["finish_delay"]),
        max_plausible_mw=max_plausible_mw,
    )
