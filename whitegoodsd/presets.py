"""Detection presets by kind of appliance: ``kind = washer | dryer | dishwasher | generic``.

Every preset is in time, not in samples: ``minsamples`` and
``minsamples_finished`` are 1, and the debounce is ``start_delay`` and
``finish_delay`` seconds, with ``max_dip`` and ``max_burst`` for the short
stretches that must not break a run, so a preset means the same at any poll
interval.  Keys written in an appliance's section override its preset's.

The values were chosen on recorded cycles of real machines (tracebase and
ECO: 19 washer, 30 dryer and 18 dishwasher cycles from many households),
replayed at 60, 10 and 5 s and four poll phases; ``python -m benchmarks
detection`` prints how they do.  Why each is what it is:

* washer: a 4-6 W standby with spikes to 15 W, fill phases at 11-13 W,
  tumbling 10-20 s on and off, pauses inside a cycle of up to 3 minutes,
  back-to-back loads 13 minutes apart: RUNNING at 15 W held for 60 s (dips
  of under 2 minutes do not count), FINISHED after 4 minutes below 7 W.
* dryer: heating at 0.8-3 kW with the drum turning, a cool-down at
  120-250 W, then anti-crease bursts of 120-500 W, a few seconds every
  30-60 s, for up to half an hour; loads 2 minutes apart: RUNNING at 450 W
  (above the bursts) held for 60 s, FINISHED after 3 minutes below 30 W,
  where bursts of under 30 s do not count: the drum has stopped and the
  laundry is dry.
* dishwasher: starts at 13-15 W (drain, fill), heats at 2 kW, dries for
  15-70 minutes near 1-3 W with pump and fan blips, and pumps out at 13-15 W
  at the very end: RUNNING at 15 W held for 60 s, FINISHED after 5 minutes
  below 8 W, which falls in the drying phase (the dishes are clean; the
  final pump-out does not start a cycle).
* generic: anything else that draws tens of watts when it works.

All presets use the plug's energy counter (``energy_counter``): polled
every 60 s, a washer's 30-s tumbling rhythm can read as rest for 20 minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

from whitegoodsd.detector import Settings

# The intervals the presets were chosen for (monitor_interval and
# monitor_interval_nothing_running); they hold at shorter ones too.  A 60 s
# idle poll costs a LAN plug one request a minute and the daemon about 0.4 ms
# of CPU (23 ms an hour per plug); 900 s would put RUNNING 8-12 minutes late.
INTERVAL: Final = 60.0
IDLE_INTERVAL: Final = 60.0


@dataclass(frozen=True)
class Preset:
    """The detection keys of one kind, as the INI spells them."""

    threshold_running_mw: int
    threshold_finished_mw: int
    start_delay: float
    finish_delay: float
    max_dip: float
    max_burst: float
    minsamples: int = 1
    minsamples_finished: int = 1
    energy_counter: bool = True

    def keys(self) -> dict[str, object]:
        """Key name -> value, for every key the preset sets."""
        return asdict(self)


PRESETS: Final[dict[str, Preset]] = {
    "washer": Preset(15_000, 7_000, start_delay=60, finish_delay=240, max_dip=120, max_burst=0),
    "dryer": Preset(450_000, 30_000, start_delay=60, finish_delay=180, max_dip=20, max_burst=30),
    "dishwasher": Preset(15_000, 8_000, start_delay=60, finish_delay=300, max_dip=120, max_burst=0),
    "generic": Preset(15_000, 7_000, start_delay=60, finish_delay=300, max_dip=60, max_burst=0),
}

KINDS: Final = tuple(PRESETS)


def settings(kind: str, max_plausible_mw: int | None = 4_000_000) -> Settings:
    """The detector settings of a kind's preset."""
    p = PRESETS[kind]
    return Settings(
        threshold_running_mw=p.threshold_running_mw,
        minsamples=p.minsamples,
        threshold_finished_mw=p.threshold_finished_mw,
        minsamples_finished=p.minsamples_finished,
        start_delay=p.start_delay,
        finish_delay=p.finish_delay,
        max_plausible_mw=max_plausible_mw,
        max_dip=p.max_dip,
        max_burst=p.max_burst,
        energy_counter=p.energy_counter,
    )
